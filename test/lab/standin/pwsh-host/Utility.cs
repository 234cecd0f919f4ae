// OUR OWN versions of the few Microsoft.PowerShell.Utility cmdlets the bench's scripts use,
// because that module is not in the NuGet copy reachable here. They follow the documented
// behaviour the bench relies on, quirks included:
//   ConvertTo-Json: one input object -> a JSON object, several -> an array, none -> no
//     output; enums as numbers; -Depth cuts deeper levels to their ToString(); -Compress.
//   Write-Output, Start-Sleep, Get-Date (-AsUTC / -Format o only).
// On a real host the built-ins run instead; nothing in src/ depends on these.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Text;
using System.Threading;

static class Utility
{
    public static void Register(InitialSessionState iss)
    {
        iss.Commands.Add(new SessionStateCmdletEntry("ConvertTo-Json", typeof(ConvertToJson), null));
        iss.Commands.Add(new SessionStateCmdletEntry("Write-Output", typeof(WriteOutput), null));
        iss.Commands.Add(new SessionStateCmdletEntry("Start-Sleep", typeof(StartSleep), null));
        iss.Commands.Add(new SessionStateCmdletEntry("Get-Date", typeof(GetDate), null));
    }
}

[Cmdlet("Write", "Output")]
public sealed class WriteOutput : PSCmdlet
{
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true, ValueFromRemainingArguments = true)]
    [AllowNull, AllowEmptyCollection]
    public PSObject[] InputObject { get; set; }
    [Parameter] public SwitchParameter NoEnumerate { get; set; }
    protected override void ProcessRecord()
    {
        if (InputObject == null) return;
        foreach (var o in InputObject) WriteObject(o, !NoEnumerate);
    }
}

[Cmdlet("Start", "Sleep")]
public sealed class StartSleep : PSCmdlet
{
    [Parameter(Position = 0, ParameterSetName = "Seconds")] public double Seconds { get; set; }
    [Parameter(ParameterSetName = "Milliseconds")] public int Milliseconds { get; set; }
    readonly ManualResetEventSlim stop = new ManualResetEventSlim();
    protected override void ProcessRecord()
    {
        var ms = ParameterSetName == "Milliseconds" ? Milliseconds : (int)(Seconds * 1000);
        stop.Wait(ms);
    }
    protected override void StopProcessing() => stop.Set();
}

[Cmdlet("Get", "Date")]
public sealed class GetDate : PSCmdlet
{
    [Parameter] public SwitchParameter AsUTC { get; set; }
    [Parameter] public string Format { get; set; }
    protected override void EndProcessing()
    {
        var now = AsUTC ? DateTime.UtcNow : DateTime.Now;
        if (Format != null) WriteObject(now.ToString(Format, CultureInfo.InvariantCulture));
        else WriteObject(now);
    }
}

[Cmdlet("ConvertTo", "Json")]
public sealed class ConvertToJson : PSCmdlet
{
    [Parameter(Position = 0, Mandatory = true, ValueFromPipeline = true)]
    [AllowNull] public object InputObject { get; set; }
    [Parameter] [ValidateRange(0, 100)] public int Depth { get; set; } = 2;
    [Parameter] public SwitchParameter Compress { get; set; }
    [Parameter] public SwitchParameter AsArray { get; set; }
    readonly List<object> items = new List<object>();

    protected override void ProcessRecord() => items.Add(InputObject);

    protected override void EndProcessing()
    {
        if (items.Count == 0) return;
        var sb = new StringBuilder();
        if (items.Count == 1 && !AsArray) Write(sb, items[0], 0);
        else WriteList(sb, items, 0);
        WriteObject(sb.ToString());
    }

    void WriteList(StringBuilder sb, IEnumerable list, int level)
    {
        sb.Append('[');
        var first = true;
        foreach (var o in list) { if (!first) sb.Append(','); first = false; Write(sb, o, level + 1); }
        sb.Append(']');
    }

    void Write(StringBuilder sb, object value, int level)
    {
        var pso = value as PSObject;
        var baseObj = pso != null ? pso.BaseObject : value;
        if (baseObj == null || baseObj is DBNull || baseObj == System.Management.Automation.Internal.AutomationNull.Value) { sb.Append("null"); return; }
        switch (baseObj)
        {
            case string s: Str(sb, s); return;
            case char c: Str(sb, c.ToString()); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case Enum e: sb.Append(Convert.ToInt64(e, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture)); return;
            case DateTime d: Str(sb, d.ToString("o", CultureInfo.InvariantCulture)); return;
            case DateTimeOffset d: Str(sb, d.ToString("o", CultureInfo.InvariantCulture)); return;
            case Guid g: Str(sb, g.ToString()); return;
            case double d: sb.Append(d.ToString("R", CultureInfo.InvariantCulture)); return;
            case float f: sb.Append(f.ToString("R", CultureInfo.InvariantCulture)); return;
            case decimal m: sb.Append(m.ToString(CultureInfo.InvariantCulture)); return;
            case sbyte or byte or short or ushort or int or uint or long or ulong:
                sb.Append(Convert.ToString(baseObj, CultureInfo.InvariantCulture)); return;
        }
        if (level > Depth) { Str(sb, baseObj.ToString()); return; }
        if (baseObj is IDictionary dict)
        {
            sb.Append('{');
            var first = true;
            foreach (DictionaryEntry kv in dict) { if (!first) sb.Append(','); first = false; Str(sb, kv.Key.ToString()); sb.Append(':'); Write(sb, kv.Value, level + 1); }
            sb.Append('}');
            return;
        }
        if (baseObj is IEnumerable en) { WriteList(sb, en, level); return; }
        var obj = pso ?? PSObject.AsPSObject(baseObj);
        sb.Append('{');
        var firstProp = true;
        foreach (var p in obj.Properties)
        {
            if (!p.IsGettable) continue;
            object v;
            try { v = p.Value; } catch { continue; }
            if (!firstProp) sb.Append(','); firstProp = false;
            Str(sb, p.Name); sb.Append(':'); Write(sb, v, level + 1);
        }
        sb.Append('}');
    }

    static void Str(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var ch in s)
        {
            switch (ch)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (ch < 0x20 || ch == '\'' || ch == '<' || ch == '>' || ch == '&') sb.Append("\\u").Append(((int)ch).ToString("x4"));
                    else sb.Append(ch);
                    break;
            }
        }
        sb.Append('"');
    }
}
