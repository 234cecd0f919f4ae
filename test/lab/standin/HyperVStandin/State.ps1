# How the stand-in keeps state: one directory per Hyper-V host, named by the environment
# variable BENCH_HYPERV_STATE. Every PowerShell session pointed at the same directory sees
# the same host; a second directory is a second host (Move-VM finds it through the
# `Peers` map in the first one's config). Records are hashtables stored as CLIXML
# (PSSerializer), one file per VM, so concurrent sessions only contend per VM.
#
#   config.clixml         host name, switches, memory, disks, peers, delays, faults
#   vms/<id>.clixml       one VM (state, settings, checkpoints)
#   events.clixml         the Hyper-V-Worker / VMMS event log
#   files.clixml          the host's files the stand-in knows of (VHDX parents, disks)
#   lock                  held while a record is read-modified-written

function script:StateDir {
    $dir = $env:BENCH_HYPERV_STATE
    if (-not $dir) { throw [System.InvalidOperationException]::new('BENCH_HYPERV_STATE is not set: the Hyper-V stand-in has no host state directory') }
    [void][System.IO.Directory]::CreateDirectory([System.IO.Path]::Combine($dir, 'vms'))
    $dir
}

function script:Read-Record([string]$Path, $Default) {
    if (-not [System.IO.File]::Exists($Path)) { return $Default }
    [System.Management.Automation.PSSerializer]::Deserialize([System.IO.File]::ReadAllText($Path))
}

function script:Write-Record([string]$Path, $Value) {
    # Write then rename, so a reader never sees half a file.
    $tmp = "$Path.$([System.Guid]::NewGuid().ToString('N')).tmp"
    [System.IO.File]::WriteAllText($tmp, [System.Management.Automation.PSSerializer]::Serialize($Value, 8))
    [System.IO.File]::Move($tmp, $Path, $true)
}

function script:Use-Lock([string]$Dir, [scriptblock]$Body) {
    $path = [System.IO.Path]::Combine($Dir, 'lock')
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    while ($true) {
        try { $fs = [System.IO.File]::Open($path, 'OpenOrCreate', 'ReadWrite', 'None'); break }
        catch {
            if ([DateTime]::UtcNow -gt $deadline) { throw }
            [System.Threading.Thread]::Sleep(10)
        }
    }
    try { & $Body } finally { $fs.Dispose() }
}

function script:Get-Config([string]$Dir = (StateDir)) {
    $c = Read-Record ([System.IO.Path]::Combine($Dir, 'config.clixml')) $null
    if ($null -eq $c) {
        $c = @{ Name = 'STANDIN'; Switches = @(); FreeMemoryBytes = [long]16GB; TotalMemoryBytes = [long]32GB;
                FreeDiskBytes = [long]500GB; MigrationEnabled = $false; Peers = @{}; Delays = @{}; Faults = @{};
                TestSigning = $false; Drivers = @(); BootMilliseconds = 0; Unreachable = $false }
    }
    $c
}

function script:Save-Config($Config, [string]$Dir = (StateDir)) {
    Write-Record ([System.IO.Path]::Combine($Dir, 'config.clixml')) $Config
}

function script:VmPath([string]$Dir, [string]$Id) { [System.IO.Path]::Combine($Dir, 'vms', "$Id.clixml") }

function script:Read-Vm([string]$Id, [string]$Dir = (StateDir)) { Read-Record (VmPath $Dir $Id) $null }
function script:Write-Vm($Vm, [string]$Dir = (StateDir)) { Write-Record (VmPath $Dir $Vm.Id) $Vm }
function script:Remove-VmRecord([string]$Id, [string]$Dir = (StateDir)) { [System.IO.File]::Delete((VmPath $Dir $Id)) }

function script:All-Vms([string]$Dir = (StateDir)) {
    foreach ($f in [System.IO.Directory]::GetFiles([System.IO.Path]::Combine($Dir, 'vms'), '*.clixml')) {
        Read-Record $f $null
    }
}

function script:Get-Files([string]$Dir = (StateDir)) {
    $f = Read-Record ([System.IO.Path]::Combine($Dir, 'files.clixml')) $null
    if ($null -eq $f) { $f = @{} }
    $f
}
function script:Save-Files($Files, [string]$Dir = (StateDir)) { Write-Record ([System.IO.Path]::Combine($Dir, 'files.clixml')) $Files }

function script:Add-Event([int]$EventId, [string]$Message, [string]$Log = 'Microsoft-Windows-Hyper-V-Worker-Admin', [int]$Level = 4, [string]$Dir = (StateDir)) {
    Use-Lock $Dir {
        $path = [System.IO.Path]::Combine($Dir, 'events.clixml')
        $events = [System.Collections.ArrayList]@(Read-Record $path @())
        [void]$events.Add(@{ TimeCreated = [DateTime]::UtcNow; Id = $EventId; LogName = $Log; ProviderName = ($Log -replace '/.*$', '' -replace '-(Admin|Operational)$', '');
                             Level = $Level; Message = $Message })
        Write-Record $path @($events)
    }
}

function script:Get-Events([string]$Dir = (StateDir)) {
    @(Read-Record ([System.IO.Path]::Combine($Dir, 'events.clixml')) @())
}

# ---- errors, the way Hyper-V's cmdlets report them -------------------------------------

function script:New-ErrorRecord([string]$Message, [string]$ErrorId, [System.Management.Automation.ErrorCategory]$Category, $Target, [string]$ExceptionType = 'System.InvalidOperationException') {
    $ex = [System.Activator]::CreateInstance([type]$ExceptionType, [object[]]@($Message))
    [System.Management.Automation.ErrorRecord]::new($ex, $ErrorId, $Category, $Target)
}

# Wrong state for the operation: what Hyper-V says (VirtualizationException, InvalidState).
function script:Throw-InvalidState($Cmdlet, $Vm) {
    $msg = "The operation cannot be performed while the object is in its current state. (Virtual machine '$($Vm.Name)' ID $($Vm.Id) is $($Vm.State).)"
    $Cmdlet.ThrowTerminatingError((New-ErrorRecord $msg 'InvalidState' 'InvalidOperation' $Vm.Name))
}

# ---- delays and faults injected by tests ----------------------------------------------

function script:Wait-Operation([string]$Operation, $Config) {
    $ms = $Config.Delays[$Operation]
    if ($ms) { [System.Threading.Thread]::Sleep([int]$ms) }
}

function script:Get-Fault([string]$Operation, $Config) { $Config.Faults[$Operation] }

# A hang that Ctrl-C / pipeline stop and process kill can end, like a stuck WMI job.
function script:Hang-Forever { while ($true) { [System.Threading.Thread]::Sleep(50) } }
