# The devices' control tools on a host without their drivers, as functions named like the
# programs: `sample-ctl` (the sample's) and `blockq-ctl` (blockq's), and `logman`. One
# function, Invoke-StandinControlTool, is every tool: it logs the call, answers exit 3
# while the tool's VSP package (its INF) is not installed, and passes the call to a
# test's drivers when a bridge is set (below). Only the sample has a model here, of one
# host's VSP and its loopback clients kept in the stand-in's config: it stands in for our
# own drivers, not for Windows, and answers the probe's open questions the way a test sets
# them (Set-StandinSampleDrivers), so that `bench lab probe` can be run end to end. A tool
# without a model (blockq-ctl) answers only through a bridge.
#
#   -LoopbackOffer ok|refused        does `open N GUID loopback` succeed
#   -ClientBinds $true|$false        does the client driver open a loopback channel in the host
#   -RestoreWithClientOpen ok|fail   can a channel be restored while its client stays open
#   -ForceNewChannel keeps|new-channel|refused
#                                    what `open ... force-new-channel` does: the client keeps
#                                    its channel across a restore, gets a new one (its
#                                    counters start again), or the flagged offer is refused
#
# Channel states follow the VSP's commands: open -> active; pause -> paused; save -> saved;
# detach -> detached; restore (from saved or detached) -> restored, not yet offered, as the
# VSP's restore leaves it; resume (from paused, saved or restored) -> active. Any but an active channel
# refuses `transact` (STATUS_INVALID_DEVICE_STATE, exit 3) as vsp-send.c does. `vsp
# counters` starts with `trace_seq=N`, N counting the commands that would have traced.
#
# Traffic completes at once while a channel is active and bound. Exit codes as sample-ctl's:
# 0 done, 2 a refused or malformed command, 3 the driver could not be reached.
#
# -Bridge URL: the drivers are a test's own (the C drivers on the emulator), not this
# model: each tool call, its arguments as the program received them, is POSTed to URL
# as JSON ({ tool, args }) and the answer ({ output, exitCode, stderr?, file?, content? }) is
# printed, its exit code set, and `content` written to `file` (etl2jsonl's JSON Lines).
#
# `handle-broker` is the lab's handle broker (lab/SETUP.md "Handle broker": our contract,
# not Microsoft's), called like the program a lab names: its arguments are argv, not
# PowerShell parameters, `-VmId <guid> -Channel <n> -InstanceId <guid> -RingPages <p>`.
# It asks Get-VM for the VM (an unknown id or a VM not Running: exit 3 and why on stderr,
# as the contract says for "no handle could be had"), then has the VSP offer the channel
# with a handle, as a real broker does from its own process: `<tool> vsp command
# "open N GUID handle=H ring-pages=P"`, H standing for the handle (a stand-in number), the
# tool being the host's device's (Set-StandinSampleDrivers -Tool, default sample-ctl). Its
# exit code is the tool's. Each call is logged beside the tools' (Get-StandinState's
# SampleDriversLog).

function Set-StandinSampleDrivers {
    [CmdletBinding()]
    param([ValidateSet('ok', 'refused')][string]$LoopbackOffer = 'ok', [bool]$ClientBinds = $true, [ValidateSet('ok', 'fail')][string]$RestoreWithClientOpen = 'ok',
          [ValidateSet('keeps', 'new-channel', 'refused')][string]$ForceNewChannel = 'keeps', [string]$Bridge = '',
          [string]$Tool = 'sample-ctl')
    if (-not $script:StandinTools.ContainsKey($Tool)) { throw "no control tool $Tool in the stand-in (StandinTools): $($script:StandinTools.Keys -join ', ')" }
    $c = Get-Config
    $c.SampleDrivers = @{ LoopbackOffer = $LoopbackOffer; ClientBinds = $ClientBinds; RestoreWithClientOpen = $RestoreWithClientOpen; ForceNewChannel = $ForceNewChannel; Channels = @{}; Log = @(); TraceSeq = 0; Bridge = $Bridge; Tool = $Tool }
    Save-Config $c
}

function script:Get-SampleDrivers($c) {
    if (-not $c.SampleDrivers) { $c.SampleDrivers = @{ LoopbackOffer = 'ok'; ClientBinds = $true; RestoreWithClientOpen = 'ok'; ForceNewChannel = 'keeps'; Channels = @{}; Log = @(); TraceSeq = 0; Tool = 'sample-ctl' } }
    $c.SampleDrivers
}

# Each tool: the INF of its VSP package (lab/drivers/packages.yaml, devices/blockq/c/packages.yaml),
# without which its VSP cannot be reached, and whether the model below answers it. Another
# device's tool is an entry here, a function of its name below, and the name in the
# module's FunctionsToExport (HyperVStandin.psd1).
$script:StandinTools = @{
    'sample-ctl' = @{ Inf = 'vmbus_sample_vsp.inf'; Model = $true }
    'blockq-ctl' = @{ Inf = 'vmbus_blockq_vsp.inf'; Model = $false }
}

function sample-ctl { Invoke-StandinControlTool -Tool 'sample-ctl' -ToolArgs $args }
function blockq-ctl { Invoke-StandinControlTool -Tool 'blockq-ctl' -ToolArgs $args }

function script:Invoke-StandinControlTool([string]$Tool, [object[]]$ToolArgs) {
    $c = Get-Config
    $d = Get-SampleDrivers $c
    $argv = @($ToolArgs | ForEach-Object { [string]$_ })
    $who = [string]$argv[0]; $verb = [string]$argv[1]; $text = [string]$argv[2]
    $fail = { param($code, $msg) [Console]::Error.WriteLine("${Tool}: $msg"); $msg; $global:LASTEXITCODE = $code }
    $d.Log = @($d.Log) + "$who $verb $text"
    $inf = $script:StandinTools[$Tool].Inf
    $loaded = @($c.Drivers | Where-Object { $_.Original -eq $inf }).Count -gt 0
    if (-not $loaded) { Save-Config $c; & $fail 3 "the VSP could not be reached (is $inf installed?)"; return }
    if ($d.Bridge) {
        Save-Config $c
        $body = ConvertTo-Json -Compress -InputObject @{ tool = $Tool; args = $argv }
        $r = Invoke-RestMethod -Uri $d.Bridge -Method Post -Body $body -ContentType 'application/json'
        if ($r.file) { [System.IO.File]::WriteAllText([string]$r.file, [string]$r.content) }
        foreach ($l in @($r.stderr)) { if ($l) { [Console]::Error.WriteLine("${Tool}: $l") } }
        @($r.output) | ForEach-Object { [string]$_ }
        $global:LASTEXITCODE = [int]$r.exitCode
        return
    }
    if (-not $script:StandinTools[$Tool].Model) { Save-Config $c; & $fail 3 "the stand-in has no model of this tool's drivers: set a bridge (Set-StandinSampleDrivers -Bridge)"; return }
    if ($verb -eq 'counters') {
        if ($who -eq 'vsp') { "trace_seq=$([int]$d.TraceSeq)" }
        foreach ($k in @($d.Channels.Keys | Sort-Object)) {
            $ch = $d.Channels[$k]
            if ($who -eq 'guest' -and -not $ch.Bound) { continue }
            if ($who -eq 'vsp') { "ch=$k requests_received=$($ch.Requests) completions=$($ch.HostDone) saved=$($ch.Saved) restored=$($ch.Restored)" }
            else { "ch=$k requests_sent=$($ch.Requests) completions=$($ch.GuestDone) trace_seq=0" }
        }
        Save-Config $c; $global:LASTEXITCODE = 0; return
    }
    if ($verb -ne 'command') { Save-Config $c; & $fail 2 "unknown verb $verb"; return }
    $t = $text -split '\s+'
    $n = if ($text -match 'ch=(\d+)') { [string][int]$Matches[1] } else { $null }
    $ch = if ($n) { $d.Channels[$n] } else { $null }
    $force = $text -match ' force-new-channel'
    switch ($t[0]) {
        'open' {
            if ($d.LoopbackOffer -ne 'ok' -and $text -match ' loopback') { Save-Config $c; & $fail 2 'open: STATUS_NOT_SUPPORTED'; return }
            if ($force -and $d.ForceNewChannel -eq 'refused') { Save-Config $c; & $fail 2 'open: STATUS_INVALID_PARAMETER'; return }
            $d.Channels[[string][int]$t[1]] = @{ Bound = [bool]$d.ClientBinds; State = 'active'; Force = $force; Requests = 0; HostDone = 0; GuestDone = 0; Saved = 0; Restored = 0 }
        }
        'send' {
            if (-not $ch -or -not $ch.Bound) { Save-Config $c; & $fail 3 'no client device for that channel'; return }
            if ($ch.State -eq 'active') { $ch.Requests += [int]$t[1]; $ch.GuestDone += [int]$t[1] }
        }
        'transact' {
            if (-not $ch) { Save-Config $c; & $fail 2 'no such channel'; return }
            if ($ch.State -ne 'active') { Save-Config $c; & $fail 3 "the driver refused `"$text`" (STATUS_INVALID_DEVICE_STATE: the channel is $($ch.State))"; return }
            if ($ch.Bound) { $ch.HostDone += [int]$t[1] }
        }
        'pause' { if (-not $ch) { Save-Config $c; & $fail 2 'no such channel'; return }; if ($ch.State -eq 'active') { $ch.State = 'paused' } }
        'save' { if (-not $ch) { Save-Config $c; & $fail 2 'no such channel'; return }; $ch.State = 'saved'; $ch.Saved++ }
        'detach' {
            if (-not $ch -or ($ch.State -ne 'saved' -and $ch.State -ne 'detached')) { Save-Config $c; & $fail 3 'detach: STATUS_INVALID_DEVICE_STATE (nothing saved)'; return }
            $ch.State = 'detached'
        }
        'restore' {
            if (-not $ch -or ($ch.State -ne 'saved' -and $ch.State -ne 'detached')) { Save-Config $c; & $fail 2 'restore: STATUS_INVALID_DEVICE_STATE'; return }
            if ($ch.Bound -and $d.RestoreWithClientOpen -ne 'ok') { Save-Config $c; & $fail 2 'restore: STATUS_INVALID_DEVICE_STATE (the client is still open)'; return }
            # A flagged channel's client may get a new channel at the restore: its counters start again.
            if ($ch.Force -and $d.ForceNewChannel -eq 'new-channel') { $ch.Requests = 0; $ch.GuestDone = 0 }
            $ch.State = 'restored'; $ch.Restored++
        }
        'resume' {
            if (-not $ch) { Save-Config $c; & $fail 2 'no such channel'; return }
            if ($ch.State -eq 'paused' -or $ch.State -eq 'saved' -or $ch.State -eq 'restored') { $ch.State = 'active' }
        }
        'close' { if ($n) { $d.Channels.Remove($n) } }
        default { }
    }
    $d.TraceSeq = [int]$d.TraceSeq + 1
    Save-Config $c
    $global:LASTEXITCODE = 0
}

function logman { $global:LASTEXITCODE = 0; 'The command completed successfully.' }

function handle-broker {
    $c = Get-Config
    $d = Get-SampleDrivers $c
    $argv = @($args | ForEach-Object { [string]$_ })
    $d.Log = @($d.Log) + "handle-broker $($argv -join ' ')"
    Save-Config $c
    $opt = @{}
    for ($i = 0; $i -lt $argv.Count; $i++) {
        if ($argv[$i] -in '-VmId', '-Channel', '-InstanceId', '-RingPages' -and $i + 1 -lt $argv.Count) { $opt[$argv[$i].Substring(1)] = $argv[$i + 1]; $i++ }
    }
    foreach ($k in 'VmId', 'Channel', 'InstanceId', 'RingPages') {
        if (-not $opt.ContainsKey($k)) { [Console]::Error.WriteLine("handle-broker: missing -$k"); $global:LASTEXITCODE = 2; return }
    }
    try { $vm = Get-VM -Id $opt.VmId -ErrorAction Stop }
    catch { [Console]::Error.WriteLine("handle-broker: no VM has id $($opt.VmId): $($_.Exception.Message)"); $global:LASTEXITCODE = 3; return }
    if ([string]$vm.State -ne 'Running') { [Console]::Error.WriteLine("handle-broker: VM $($opt.VmId) is $($vm.State): its VMBus handle can be had only while it runs"); $global:LASTEXITCODE = 3; return }
    $handle = 0x400 + 4 * [int]$opt.Channel
    & ([string]$(if ($d.Tool) { $d.Tool } else { 'sample-ctl' })) vsp command "open $([int]$opt.Channel) $($opt.InstanceId) handle=$handle ring-pages=$([int]$opt.RingPages)"
}
