// The smallest PSHost that lets Out-Default print and `exit N` end the process.
// Nothing here is interactive: prompts fail, as they do under pwsh -NonInteractive.
using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;

sealed class Host : PSHost
{
    public static int? ShouldExit;
    readonly UI ui = new UI();
    public override string Name => "bench-pwsh";
    public override Version Version => new Version(7, 6, 9);
    public override Guid InstanceId { get; } = Guid.NewGuid();
    public override PSHostUserInterface UI => ui;
    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
    public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;
    public override void SetShouldExit(int exitCode) { ShouldExit = exitCode; }
    public override void EnterNestedPrompt() => throw new NotSupportedException();
    public override void ExitNestedPrompt() => throw new NotSupportedException();
    public override void NotifyBeginApplication() { }
    public override void NotifyEndApplication() { }
}

sealed class UI : PSHostUserInterface
{
    public override PSHostRawUserInterface RawUI => null;
    static Exception NonInteractive() => new PSInvalidOperationException("bench-pwsh is non-interactive: nothing can be read from the user.");
    public override string ReadLine() => throw NonInteractive();
    public override SecureString ReadLineAsSecureString() => throw NonInteractive();
    public override void Write(string value) => Console.Out.Write(value);
    public override void Write(ConsoleColor f, ConsoleColor b, string value) => Console.Out.Write(value);
    public override void WriteLine(string value) => Console.Out.WriteLine(value);
    public override void WriteErrorLine(string value) => Console.Error.WriteLine(value);
    public override void WriteDebugLine(string message) { }
    public override void WriteProgress(long sourceId, ProgressRecord record) { }
    public override void WriteVerboseLine(string message) { }
    public override void WriteWarningLine(string message) => Console.Error.WriteLine("WARNING: " + message);
    public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions) => throw NonInteractive();
    public override PSCredential PromptForCredential(string c, string m, string u, string t) => throw NonInteractive();
    public override PSCredential PromptForCredential(string c, string m, string u, string t, PSCredentialTypes a, PSCredentialUIOptions o) => throw NonInteractive();
    public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice) => throw NonInteractive();
}
