// bench-pwsh: the real PowerShell engine behind the command line the lab uses,
// `pwsh -NoLogo -NoProfile -NonInteractive [-NoExit] -Command -` (and -EncodedCommand).
//
// Why it exists: the NuGet copy reachable here has System.Management.Automation (the
// PowerShell language, parser and runspace) but not the "PowerShell" global tool nor
// Microsoft.PowerShell.Commands.Utility. This host reads script text from stdin the way
// pwsh does (a line at a time, gathering lines while a statement is incomplete), runs it
// in one runspace that lives as long as the process, writes uncaught errors to stderr and
// honours `exit N`. The few Utility cmdlets the bench's scripts use are in Utility.cs,
// marked as ours.
using System;
using System.Collections.ObjectModel;
using System.IO;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;
using System.Text;

static class Program
{
    static int Main(string[] args)
    {
        var stdin = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
        var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = true };
        var stderr = new StreamWriter(Console.OpenStandardError(), new UTF8Encoding(false)) { AutoFlush = true };
        Console.SetOut(stdout);
        Console.SetError(stderr);

        string command = null;
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i].ToLowerInvariant();
            if (a == "-command" || a == "-c") { command = i + 1 < args.Length ? args[++i] : "-"; }
            // As pwsh: base64 of the script's UTF-16LE bytes (how detached helpers are started).
            else if (a == "-encodedcommand" || a == "-e" || a == "-ec") { command = Encoding.Unicode.GetString(Convert.FromBase64String(args[++i])); }
            else if (a == "-nologo" || a == "-noprofile" || a == "-noninteractive" || a == "-noexit") { }
            else { stderr.WriteLine($"bench-pwsh: unsupported argument {args[i]}"); return 64; }
        }

        var iss = InitialSessionState.CreateDefault2();
        Utility.Register(iss);
        using var rs = RunspaceFactory.CreateRunspace(new Host(), iss);
        rs.Open();

        if (command != null && command != "-") return Run(rs, command, stdout, stderr) ?? 0;

        var pending = new StringBuilder();
        string line;
        while ((line = stdin.ReadLine()) != null)
        {
            pending.Append(line).Append('\n');
            var text = pending.ToString();
            Parser.ParseInput(text, out _, out ParseError[] errors);
            if (errors.Length > 0 && Array.Exists(errors, e => e.IncompleteInput)) continue;
            pending.Clear();
            var code = Run(rs, text, stdout, stderr);
            if (code.HasValue) return code.Value;
        }
        return 0;
    }

    /// Runs one piece of script; returns an exit code when the script called `exit`.
    static int? Run(Runspace rs, string script, TextWriter stdout, TextWriter stderr)
    {
        using var ps = PowerShell.Create(rs);
        ps.AddScript(script).AddCommand("Out-Default");
        ps.Commands.Commands[0].MergeMyResults(PipelineResultTypes.Error, PipelineResultTypes.Output);
        try
        {
            ps.Invoke();
        }
        catch (RuntimeException e) when (Host.ShouldExit == null)
        {
            stderr.WriteLine(e.ErrorRecord?.ToString() ?? e.Message);
        }
        catch (RuntimeException)
        {
            // `exit N` unwinds the pipeline; the code is in Host.ShouldExit.
        }
        return Host.ShouldExit;
    }
}
