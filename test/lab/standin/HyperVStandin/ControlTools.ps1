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
#   -RescindTeardown removal-first|kmcl-first
#                                    how the host tears down the client of a rescinded offer
#                                    (Microsoft does not document the order; the probe's
#                                    rescind-order asks it): PnP removes the client's device at
#                                    once and the driver's own disable closes the client inside
#                                    the removal (the bench's default order), or KMCL suspends
#                                    and closes the client on the rescind itself and PnP removes
#                                    the device later (below, at the second counters read)
#
# Channel states follow the VSP's commands: open -> active; pause -> paused; save -> saved;
# detach -> detached; restore (from saved or detached) -> restored, not yet offered, as the
# VSP's restore leaves it; resume (from paused, saved or restored) -> active; rescind ->
# rescinded (vsp-channel.c: the object disabled and cleaned up, the channel kept for a new
# `open`). Any but an active channel refuses `transact` (STATUS_INVALID_DEVICE_STATE, exit 3)
# as vsp-send.c does.
#
# The client is one PnP device per bound offer behind the driver's one control device
# (guest-control.c), which exists while any device does: with none, every `guest` verb
# exits 3 as sample-ctl does when it cannot open it. A `send` for a channel no device has is
# refused STATUS_NOT_FOUND (Win32 error 1168), on a suspended client's device
# STATUS_INVALID_DEVICE_STATE (error 22), printed as sample-ctl prints a refusal. `guest
# counters` prints a line per device with the driver-wide trace_seq and
# closed_outside_removal (EvtVmbChannelClosed outside the device's removal).
#
# Both drivers keep a trace of their channel states and cancels (Add-DriverTrace): `guest
# trace OUT` writes the client's, and the VSP's is had as on a host, an ETW capture
# (`logman start ... -o X.etl`, `logman stop`) that `etl2jsonl X.etl OUT` converts. `vsp
# counters` starts with the VSP trace's `trace_seq=N`.
#
# Traffic completes at once while a channel is active and bound, unless it asks to be held
# (a send's or transact's hold): held packets wait (the model completes none by itself) until
# a rescind or close cancels them. Exit codes as sample-ctl's: 0 done, 2 a refused or
# malformed command, 3 the driver could not be reached or refused a request.
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
          [string]$Tool = 'sample-ctl', [ValidateSet('removal-first', 'kmcl-first')][string]$RescindTeardown = 'removal-first')
    if (-not $script:StandinTools.ContainsKey($Tool)) { throw "no control tool $Tool in the stand-in (StandinTools): $($script:StandinTools.Keys -join ', ')" }
    $c = Get-Config
    $c.SampleDrivers = @{ LoopbackOffer = $LoopbackOffer; ClientBinds = $ClientBinds; RestoreWithClientOpen = $RestoreWithClientOpen; ForceNewChannel = $ForceNewChannel; Channels = @{}; Log = @(); Bridge = $Bridge; Tool = $Tool
                         RescindTeardown = $RescindTeardown; VspTrace = @(); GuestTrace = @(); ClosedOutsideRemoval = 0; Sessions = @{} }
    Save-Config $c
}

function script:Get-SampleDrivers($c) {
    if (-not $c.SampleDrivers) {
        $c.SampleDrivers = @{ LoopbackOffer = 'ok'; ClientBinds = $true; RestoreWithClientOpen = 'ok'; ForceNewChannel = 'keeps'; Channels = @{}; Log = @(); Tool = 'sample-ctl'
                              RescindTeardown = 'removal-first'; VspTrace = @(); GuestTrace = @(); ClosedOutsideRemoval = 0; Sessions = @{} }
    }
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

# The file a native tool opens for a path it is given, as on a host: a drive path is on
# the host's drive, here a folder of the stand-in's drives (DriverFiles.ps1: C:, D:), and a
# drive the host lacks is ERROR_PATH_NOT_FOUND; any other path is relative to the folder
# the tool was started in, which PowerShell makes the session's location ($PWD), not the
# process's .NET current directory. The bench reads the file back through the session
# (readHostFile resolves the path with the session's drives and location): both name the
# same file, as on a real host where D: is one volume for everyone.
function script:Resolve-ToolPath([string]$Path) {
    if ($Path -match '^([A-Za-z]):\\') {
        if (-not [System.IO.Directory]::Exists([System.IO.Path]::Combine((StateDir), $Matches[1].ToUpperInvariant()))) { throw [System.IO.DirectoryNotFoundException]::new($Path) }
        return Resolve-HostPath $Path
    }
    $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Path)
}

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
        if ($r.file) { [System.IO.File]::WriteAllText((Resolve-ToolPath ([string]$r.file)), [string]$r.content) }
        foreach ($l in @($r.stderr)) { if ($l) { [Console]::Error.WriteLine("${Tool}: $l") } }
        @($r.output) | ForEach-Object { [string]$_ }
        $global:LASTEXITCODE = [int]$r.exitCode
        return
    }
    if (-not $script:StandinTools[$Tool].Model) { Save-Config $c; & $fail 3 "the stand-in has no model of this tool's drivers: set a bridge (Set-StandinSampleDrivers -Bridge)"; return }
    # A file the tool is given is opened as sample-ctl opens it (CreateFile: no folder made,
    # ERROR_PATH_NOT_FOUND (3) for a missing one), at Resolve-ToolPath's file.
    $writeFile = { param($path, $lines)
        try { [System.IO.File]::WriteAllText((Resolve-ToolPath $path), ((@($lines) | ForEach-Object { "$_`n" }) -join '')); $global:LASTEXITCODE = 0 }
        catch { & $fail 3 "cannot create $path (error 3)" }
    }
    if ($who -eq 'etl2jsonl') {
        # etl2jsonl IN OUT: the VSP's events that IN's capture holds (logman, below).
        $s = @($d.Sessions.Values | Where-Object { $_.Etl -eq $verb })[0]
        if (-not $s) { Save-Config $c; & $fail 3 "cannot open $verb (error 2)"; return }
        $to = if ($null -ne $s.To) { [int]$s.To } else { @($d.VspTrace).Count }
        & $writeFile $text @($d.VspTrace | Select-Object -Skip ([int]$s.From) -First ($to - [int]$s.From))
        Save-Config $c; return
    }
    if ($who -eq 'guest') {
        # PnP removes a device KMCL already closed (rescind, kmcl-first) in its own time: here,
        # before the second counters read after the rescind (the stand-in's choice, as
        # test/run/real/support/c-loopback-host.ts has it), so that the command sent at once
        # and the first read reach the device in between.
        if ($verb -eq 'counters') {
            foreach ($k in @($d.Channels.Keys)) {
                $x = $d.Channels[$k]
                if (-not $x.Listed -or $null -eq $x.RemovalIn) { continue }
                if ([int]$x.RemovalIn -le 0) { Remove-ClientDevice $d $k } else { $x.RemovalIn = [int]$x.RemovalIn - 1 }
            }
        }
        # The control device goes with the driver's last device (guest-control.c).
        $listed = @($d.Channels.Keys | Where-Object { $d.Channels[$_].Listed } | Sort-Object { [int]$_ })
        if ($listed.Count -eq 0) { Save-Config $c; & $fail 3 'cannot open \\.\VmbusSampleGuest (error 2): is the driver installed?'; return }
        if ($verb -eq 'counters') {
            # guest-control.c GuestWriteCounters: trace_seq and closed_outside_removal are the driver's, on every line.
            foreach ($k in $listed) {
                $x = $d.Channels[$k]
                "ch=$k requests_sent=$($x.Requests) completions=$($x.GuestDone) held=$(@($x.HostHeld).Count) trace_seq=$(@($d.GuestTrace).Count) closed_outside_removal=$([int]$d.ClosedOutsideRemoval)"
            }
            Save-Config $c; $global:LASTEXITCODE = 0; return
        }
        if ($verb -eq 'trace') {
            # The driver's trace buffer, allocated in DriverEntry: every device's events, the removed ones' too.
            & $writeFile $text @($d.GuestTrace)
            Save-Config $c; return
        }
    }
    if ($verb -eq 'counters') {
        "trace_seq=$(@($d.VspTrace).Count)"
        foreach ($k in @($d.Channels.Keys | Sort-Object { [int]$_ })) {
            $ch = $d.Channels[$k]
            "ch=$k requests_received=$($ch.Requests) completions=$($ch.HostDone) saved=$($ch.Saved) restored=$($ch.Restored)"
        }
        Save-Config $c; $global:LASTEXITCODE = 0; return
    }
    if ($verb -ne 'command') { Save-Config $c; & $fail 2 "unknown verb $verb"; return }
    $t = $text -split '\s+'
    $n = if ($text -match 'ch=(\d+)') { [string][int]$Matches[1] } else { $null }
    $ch = if ($n) { $d.Channels[$n] } else { $null }
    $force = $text -match ' force-new-channel'
    # A driver's refusal as sample-ctl prints it: the Win32 error DeviceIoControl gave the NTSTATUS.
    $refused = { param($win32) & $fail 3 "the driver refused `"$text`" (error $win32)" }
    # The next transaction ids on channel $ch, one per packet (ids only tell its packets apart here).
    $newTx = { param($count) for ($i = 0; $i -lt $count; $i++) { [int]$ch.NextTx; $ch.NextTx = [int]$ch.NextTx + 1 } }
    switch ($t[0]) {
        'open' {
            if ($d.LoopbackOffer -ne 'ok' -and $text -match ' loopback') { Save-Config $c; & $fail 2 'open: STATUS_NOT_SUPPORTED'; return }
            if ($force -and $d.ForceNewChannel -eq 'refused') { Save-Config $c; & $fail 2 'open: STATUS_INVALID_PARAMETER'; return }
            $k = [string][int]$t[1]
            $bound = [bool]$d.ClientBinds
            $d.Channels[$k] = @{ Bound = $bound; State = 'active'; Force = $force; Requests = 0; HostDone = 0; GuestDone = 0; Saved = 0; Restored = 0
                                 Listed = $bound; Suspended = $false; ClientClosed = $false; RemovalIn = $null; HostHeld = @(); VspHeld = @(); NextTx = 1 }
            # The client opens the offer (PnP added its device): both ends trace their callbacks.
            if ($bound) { foreach ($side in 'host', 'guest') { foreach ($s in 'Opened', 'Started', 'Active') { Add-DriverTrace $d $side ([ordered]@{ ev = 'ch.state'; ch = [int]$k; state = $s }) } } }
        }
        'send' {
            # guest-control.c: a command for a channel no linked device has is STATUS_NOT_FOUND
            # (1168); guest-io.c: a suspended client's device refuses with
            # STATUS_INVALID_DEVICE_STATE (22), the host is taking the channel away.
            if (-not $ch -or -not $ch.Listed) { Save-Config $c; & $refused 1168; return }
            if ($ch.Suspended) { Save-Config $c; & $refused 22; return }
            if ($ch.State -eq 'active') {
                $ch.Requests += [int]$t[1]
                # A request's hold (its 5th field) is how long the VSP keeps it before completing.
                if ([int]$t[4] -gt 0) { $ch.VspHeld = @($ch.VspHeld) + @(& $newTx ([int]$t[1])) }
                else { $ch.GuestDone += [int]$t[1] }
            }
        }
        'transact' {
            if (-not $ch) { Save-Config $c; & $fail 2 'no such channel'; return }
            if ($ch.State -ne 'active') { Save-Config $c; & $fail 3 "the driver refused `"$text`" (STATUS_INVALID_DEVICE_STATE: the channel is $($ch.State))"; return }
            if ($ch.Bound) {
                # A transaction's hold (its 4th field) is how long the client keeps it: the model
                # completes none of those by itself (the probe's last 60 s); a rescind cancels them.
                if ([int]$t[3] -gt 0) { $ch.HostHeld = @($ch.HostHeld) + @(& $newTx ([int]$t[1])) }
                else { $ch.HostDone += [int]$t[1] }
            }
        }
        'pause' {
            if (-not $ch) { Save-Config $c; & $fail 2 'no such channel'; return }
            if ($ch.State -eq 'active') { $ch.State = 'paused'; if ($ch.Bound) { Add-DriverTrace $d 'host' ([ordered]@{ ev = 'ch.state'; ch = [int]$n; state = 'Paused' }) } }
        }
        'save' {
            if (-not $ch) { Save-Config $c; & $fail 2 'no such channel'; return }
            if ($ch.State -eq 'active' -and $ch.Bound) { Add-DriverTrace $d 'host' ([ordered]@{ ev = 'ch.state'; ch = [int]$n; state = 'Paused' }) }
            $ch.State = 'saved'; $ch.Saved++
        }
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
            if ($ch.State -eq 'paused' -or $ch.State -eq 'saved' -or $ch.State -eq 'restored') {
                $ch.State = 'active'
                if ($ch.Bound) { foreach ($s in 'Started', 'Active') { Add-DriverTrace $d 'host' ([ordered]@{ ev = 'ch.state'; ch = [int]$n; state = $s }) } }
            }
        }
        'rescind' {
            # vsp-channel.c VspChannelRescind: the VSP disables its object (KMCL cancels what
            # the client had not completed) and cleans it up; the channel stays, rescinded.
            if (-not $ch) { Save-Config $c; & $fail 2 'no such channel'; return }
            Disable-VspObject $d $n
            $ch.State = 'rescinded'
            # The client's end, in the order the stand-in was given (Set-StandinSampleDrivers -RescindTeardown).
            if ($ch.Listed -and -not $ch.ClientClosed) {
                if ($d.RescindTeardown -eq 'kmcl-first') { Close-Client $d $n $false; $ch.RemovalIn = 1 }
                else { Remove-ClientDevice $d $n }
            }
        }
        'close' {
            # vsp-channel.c VspChannelClose: an offered object is disabled ("Disabled"); PnP then
            # removes the client's device, whose removal closes the client.
            if ($ch) {
                $offered = $ch.State -in 'active', 'paused', 'saved'
                Disable-VspObject $d $n
                if ($offered -and $ch.Bound) { Add-DriverTrace $d 'host' ([ordered]@{ ev = 'ch.state'; ch = [int]$n; state = 'Disabled' }) }
                if ($ch.Listed) { Remove-ClientDevice $d $n }
                $d.Channels.Remove($n)
            }
        }
        default { }
    }
    Save-Config $c
    $global:LASTEXITCODE = 0
}

# One event in a driver's trace (the VSP's, side host; the client's, side guest), as the
# drivers write them (trace-lib/vmbus_bench_trace.h): seq counts the driver's events. The
# model traces channel states, and cancels at a rescind or close; not the packets of
# traffic that completed (it has no rings).
function script:Add-DriverTrace($d, [string]$Side, [System.Collections.IDictionary]$Fields) {
    $list = if ($Side -eq 'host') { 'VspTrace' } else { 'GuestTrace' }
    $e = [ordered]@{ v = 1; seq = @($d[$list]).Count + 1; src = 'hyperv'; side = $Side }
    foreach ($k in $Fields.Keys) { $e[$k] = $Fields[$k] }
    $d[$list] = @($d[$list]) + (ConvertTo-Json -Compress -InputObject $e)
}

# VmbChannelDisable of the VSP's object on channel $n, if it has one: its Suspend callback
# (Paused, when it ran), KMCL's cancel of each host transaction still awaiting its
# completion (STATUS_CANCELLED, lab/drivers/PROTOCOL.md "Rescind"), then Closed when the
# client had opened it. A restored object never offered has only its cancels; a detached
# or rescinded channel has no object.
function script:Disable-VspObject($d, [string]$n) {
    $ch = $d.Channels[$n]
    if ($ch.State -notin 'active', 'paused', 'saved', 'restored') { return }
    if ($ch.State -eq 'active' -and $ch.Bound) { Add-DriverTrace $d 'host' ([ordered]@{ ev = 'ch.state'; ch = [int]$n; state = 'Paused' }) }
    foreach ($tx in @($ch.HostHeld)) { Add-DriverTrace $d 'host' ([ordered]@{ ev = 'pkt.cancel'; ch = [int]$n; tx = [long]$tx; dir = 'h2g'; status = 'c0000120' }) }
    $ch.HostHeld = @()
    if ($ch.State -ne 'restored' -and $ch.Bound) { Add-DriverTrace $d 'host' ([ordered]@{ ev = 'ch.state'; ch = [int]$n; state = 'Closed' }) }
}

# KMCL suspends and closes the client of channel $n (guest-channel.c): Paused (sends refused
# from here), its requests still awaiting a completion cancelled (PROTOCOL.md "Rescind"),
# the host transactions it held dropped, Closed. A close outside its device's removal
# counts in the driver's closed_outside_removal. (The driver then re-enables the device to
# wait for a new offer; the model leaves it suspended until PnP removes it.)
function script:Close-Client($d, [string]$n, [bool]$InRemoval) {
    $ch = $d.Channels[$n]
    $ch.Suspended = $true
    Add-DriverTrace $d 'guest' ([ordered]@{ ev = 'ch.state'; ch = [int]$n; state = 'Paused' })
    foreach ($tx in @($ch.VspHeld)) { Add-DriverTrace $d 'guest' ([ordered]@{ ev = 'pkt.cancel'; ch = [int]$n; tx = [long]$tx; dir = 'g2h'; status = 'c0000120' }) }
    $ch.VspHeld = @()
    Add-DriverTrace $d 'guest' ([ordered]@{ ev = 'ch.state'; ch = [int]$n; state = 'Closed' })
    $ch.ClientClosed = $true
    if (-not $InRemoval) { $d.ClosedOutsideRemoval = [int]$d.ClosedOutsideRemoval + 1 }
}

# PnP removes the client's device for channel $n: the driver unlinks it (from here a command
# for its channel finds no device), and its own VmbChannelDisable closes the client inside
# the removal unless KMCL closed it already.
function script:Remove-ClientDevice($d, [string]$n) {
    $ch = $d.Channels[$n]
    $ch.Listed = $false
    $ch.RemovalIn = $null
    if (-not $ch.ClientClosed) { Close-Client $d $n $true }
}

# logman, for the VSP's ETW capture: `start NAME -p PROVIDER -o FILE -ets` begins a session
# capturing the VSP's events from now, `stop NAME -ets` ends it; etl2jsonl converts FILE
# (above). The capture is kept in the stand-in's state, not written as an .etl file (ours).
# As logman does, a session is started once and stopped once: otherwise it exits with the
# ETW error (0x800700B7 "already exists", 0x80300002 "not found").
function logman {
    $c = Get-Config
    $d = Get-SampleDrivers $c
    $argv = @($args | ForEach-Object { [string]$_ })
    $name = [string]$argv[1]
    $running = $d.Sessions.ContainsKey($name) -and $null -eq $d.Sessions[$name].To
    switch ($argv[0]) {
        'start' {
            if ($running) { $global:LASTEXITCODE = -2147024713; 'Cannot create a file when that file already exists.'; return }
            $o = [array]::IndexOf($argv, '-o')
            $d.Sessions[$name] = @{ Etl = $(if ($o -ge 0) { $argv[$o + 1] } else { '' }); From = @($d.VspTrace).Count; To = $null }
        }
        'stop' {
            if (-not $running) { $global:LASTEXITCODE = -2144337918; 'Data Collector Set was not found.'; return }
            $d.Sessions[$name].To = @($d.VspTrace).Count
        }
    }
    Save-Config $c
    $global:LASTEXITCODE = 0; 'The command completed successfully.'
}

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
