# VM lifecycle cmdlets with Hyper-V's parameter names and parameter sets, and the state
# machine of reference/prior-art-lab.md 4.1. Every state change goes through
# Invoke-Transition: check the state it starts from, write the transient state (so other
# sessions see Saving, Starting, ...), wait the configured delay, write the final state.

function script:New-VmObject($r) {
    $booted = Test-Booted $r
    [pscustomobject]@{
        PSTypeName = 'Microsoft.HyperV.PowerShell.VirtualMachine'
        Name = $r.Name; Id = [guid]$r.Id; VMId = [guid]$r.Id; VMName = $r.Name; State = $r.State
        Status = 'Operating normally'
        Heartbeat = $(if ($booted -and $r.Integration['Heartbeat']) { 'OkApplicationsUnknown' } elseif ($r.State -eq 'Running') { 'NoContact' } else { $null })
        Uptime = $(if ($r.State -eq 'Running' -and $r.RunningSince) { [DateTime]::UtcNow - $r.RunningSince } else { [TimeSpan]::Zero })
        MemoryAssigned = $(if ($r.State -in 'Running', 'Paused') { $r.MemoryStartupBytes } else { 0 })
        MemoryStartup = $r.MemoryStartupBytes; ProcessorCount = $r.ProcessorCount; Generation = $r.Generation
        Notes = $r.Notes; Path = $r.Path; ComputerName = (Get-Config).Name; CheckpointType = $r.CheckpointType
        AutomaticCheckpointsEnabled = $r.AutomaticCheckpointsEnabled; AutomaticStopAction = $r.AutomaticStopAction
    }
}

# String.GetHashCode is randomised per process; sessions must agree on a VM's address.
function script:Get-StableNumber([string]$Text) {
    $sum = 0
    foreach ($c in $Text.ToCharArray()) { $sum = ($sum * 31 + [int]$c) % 1000003 }
    $sum
}

# The guest has booted far enough for heartbeat and KVP (IP addresses) to report.
function script:Test-Booted($r) {
    if ($r.State -ne 'Running' -or -not $r.RunningSince) { return $false }
    $boot = (Get-Config).BootMilliseconds
    if ($boot -lt 0) { return $false }
    ([DateTime]::UtcNow - $r.RunningSince).TotalMilliseconds -ge $boot
}

function script:Resolve-Vm($Cmdlet, [string[]]$Name, $VM, $Id) {
    $all = @(All-Vms)
    if ($VM) {
        foreach ($v in $VM) {
            $rec = $all | Where-Object { $_.Id -eq [string]$v.Id }
            if (-not $rec) { Throw-NotFound $Cmdlet 'ID' ([string]$v.Id) }
            $rec
        }
    } elseif ($Id) {
        $rec = $all | Where-Object { $_.Id -eq [string]$Id }
        if (-not $rec) { Throw-NotFound $Cmdlet 'ID' ([string]$Id) }
        $rec
    } else {
        foreach ($n in $Name) {
            $found = @($all | Where-Object { $_.Name -like $n })
            if ($found.Count -eq 0) { Throw-NotFound $Cmdlet 'name' $n }
            $found
        }
    }
}

# An unknown VM: by id it is ObjectNotFound (issue 12; what the real module reports), by
# name InvalidParameter / InvalidArgument. The message text is ours (inferred).
function script:Throw-NotFound($Cmdlet, [string]$By, [string]$What) {
    if ($By -eq 'ID') {
        $Cmdlet.ThrowTerminatingError((New-ErrorRecord "Hyper-V was unable to find a virtual machine with $By `"$What`"." 'ObjectNotFound' 'ObjectNotFound' $What 'System.ArgumentException'))
    }
    $Cmdlet.ThrowTerminatingError((New-ErrorRecord "Hyper-V was unable to find a virtual machine with $By `"$What`"." 'InvalidParameter' 'InvalidArgument' $What 'System.ArgumentException'))
}

function script:Invoke-Transition($Cmdlet, $Rec, [string]$Operation, [string[]]$From, [string]$Transient, [string]$To, [scriptblock]$OnDone, [int]$EventId, [string]$EventText) {
    $dir = StateDir
    $cfg = Get-Config $dir
    $box = @{}   # the lock's script block runs in its own scope; results come back in here
    Use-Lock $dir {
        $cur = Read-Vm $Rec.Id $dir
        if (-not $cur) { Throw-NotFound $Cmdlet 'ID' $Rec.Id }
        if ($From -notcontains $cur.State) { Throw-InvalidState $Cmdlet $cur }
        $box.before = $cur.State
        $cur.State = $Transient
        Write-Vm $cur $dir
    }
    $fault = Get-Fault $Operation $cfg
    if ($fault -and $fault.Mode -eq 'hang') { Hang-Forever }
    if ($fault -and $fault.Mode -eq 'fail') {
        Use-Lock $dir { $cur = Read-Vm $Rec.Id $dir; $cur.State = $box.before; Write-Vm $cur $dir }
        Add-Event 18560 "'$($Rec.Name)' failed: $($fault.Message) (Virtual machine ID $($Rec.Id))" -Level 2
        $Cmdlet.ThrowTerminatingError((New-ErrorRecord $fault.Message 'OperationFailed' 'NotSpecified' $Rec.Name))
    }
    Wait-Operation $Operation $cfg
    Use-Lock $dir {
        $cur = Read-Vm $Rec.Id $dir
        $cur.State = $To
        if ($OnDone) { & $OnDone $cur }
        Write-Vm $cur $dir
        $box.result = $cur
    }
    if ($EventId) { Add-Event $EventId "'$($Rec.Name)' $EventText (Virtual machine ID $($Rec.Id))" }
    $box.result
}

# Hyper-V writes a warning, not an error, when the VM is already where it was asked to go
# (Start-VM on Running, Save-VM on Saved, Suspend-VM on Paused, Resume-VM on Running,
# Stop-VM on Off). The warning text is ours (inferred).
function script:Write-AlreadyThere($Cmdlet, $Rec) {
    $Cmdlet.WriteWarning("The virtual machine '$($Rec.Name)' is already in the specified state.")
}

function Get-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name')]
    param(
        [Parameter(ParameterSetName = 'Name', Position = 0)][string[]]$Name = @('*'),
        [Parameter(ParameterSetName = 'Id', Mandatory)][guid]$Id,
        [string[]]$ComputerName)
    if ($PSCmdlet.ParameterSetName -eq 'Id') { return New-VmObject (Resolve-Vm $PSCmdlet -Id $Id) }
    $all = @(All-Vms)
    foreach ($n in $Name) {
        $found = @($all | Where-Object { $_.Name -like $n })
        if ($found.Count -eq 0 -and -not [System.Management.Automation.WildcardPattern]::ContainsWildcardCharacters($n)) {
            # Non-terminating, as Hyper-V's: -ErrorAction SilentlyContinue hides it.
            $PSCmdlet.WriteError((New-ErrorRecord "Hyper-V was unable to find a virtual machine with name `"$n`"." 'InvalidParameter' 'InvalidArgument' $n 'System.ArgumentException'))
            continue
        }
        foreach ($r in $found) { New-VmObject $r }
    }
}

function New-VM {
    [CmdletBinding(DefaultParameterSetName = 'No VHD')]
    param(
        [Parameter(Position = 0)][string]$Name = 'New Virtual Machine',
        [long]$MemoryStartupBytes = 1GB,
        [ValidateSet('CD', 'Floppy', 'LegacyNetworkAdapter', 'IDE', 'NetworkAdapter', 'VHD')][string]$BootDevice,
        [string]$SwitchName,
        [string]$Path = 'C:\ProgramData\Microsoft\Windows\Hyper-V',
        [ValidateSet(1, 2)][int16]$Generation = 1,
        [Parameter(ParameterSetName = 'No VHD')][switch]$NoVHD,
        [Parameter(ParameterSetName = 'New VHD', Mandatory)][string]$NewVHDPath,
        [Parameter(ParameterSetName = 'New VHD', Mandatory)][uint64]$NewVHDSizeBytes,
        [Parameter(ParameterSetName = 'Existing VHD', Mandatory)][string]$VHDPath,
        [switch]$Force, [switch]$AsJob)
    $cfg = Get-Config
    if ($SwitchName -and $cfg.Switches -notcontains $SwitchName) {
        $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Hyper-V was unable to find a virtual switch with name `"$SwitchName`"." 'InvalidParameter' 'InvalidArgument' $SwitchName 'System.ArgumentException'))
    }
    $disk = $null
    if ($PSCmdlet.ParameterSetName -eq 'Existing VHD') {
        if (-not (Get-Files).ContainsKey($VHDPath)) {
            $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Failed to add device 'Virtual Hard Disk'. The system cannot find the file specified. ('$VHDPath')" 'ObjectNotFound' 'ObjectNotFound' $VHDPath 'System.IO.FileNotFoundException'))
        }
        $disk = $VHDPath
    } elseif ($PSCmdlet.ParameterSetName -eq 'New VHD') {
        $disk = $NewVHDPath
        $files = Get-Files; $files[$NewVHDPath] = @{ Kind = 'Dynamic'; Size = $NewVHDSizeBytes; Parent = $null }; Save-Files $files
    }
    $rec = @{
        Id = [guid]::NewGuid().ToString(); Name = $Name; State = 'Off'; Generation = [int]$Generation
        MemoryStartupBytes = $MemoryStartupBytes; ProcessorCount = 1; Path = $Path; SwitchName = $SwitchName
        Disks = @($disk | Where-Object { $_ }); Notes = ''; CheckpointType = 'Production'; AutomaticCheckpointsEnabled = $true
        AutomaticStopAction = 'Save'; SecureBoot = $(if ($Generation -eq 2) { 'On' } else { $null }); SecureBootTemplate = 'MicrosoftWindows'
        ComPorts = @{ 1 = ''; 2 = '' }; RunningSince = $null; Snapshots = @(); CompatibilityForMigrationEnabled = $false
        Integration = @{ 'Guest Service Interface' = $false; 'Heartbeat' = $true; 'Key-Value Pair Exchange' = $true; 'Shutdown' = $true; 'Time Synchronization' = $true; 'VSS' = $true }
    }
    Write-Vm $rec
    # A New-VM that made the VM and then failed or hung (a WMI job that never finishes).
    $fault = Get-Fault 'New-VM' $cfg
    if ($fault -and $fault.Mode -eq 'hang') { Hang-Forever }
    if ($fault -and $fault.Mode -eq 'fail') { $PSCmdlet.ThrowTerminatingError((New-ErrorRecord $fault.Message 'OperationFailed' 'NotSpecified' $Name)) }
    Add-Event 13002 "A new virtual machine '$Name' was created. (Virtual machine ID $($rec.Id))" 'Microsoft-Windows-Hyper-V-VMMS-Admin'
    New-VmObject $rec
}

function Set-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name')]
    param(
        [Parameter(ParameterSetName = 'Name', Mandatory, Position = 0)][Alias('VMName')][string[]]$Name,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [string]$Notes, [long]$ProcessorCount, [long]$MemoryStartupBytes, [switch]$StaticMemory,
        [ValidateSet('Disabled', 'Production', 'ProductionOnly', 'Standard')][string]$CheckpointType,
        [bool]$AutomaticCheckpointsEnabled,
        [ValidateSet('TurnOff', 'Save', 'ShutDown')][string]$AutomaticStopAction,
        [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $Name $VM)) {
            if (($PSBoundParameters.ContainsKey('ProcessorCount') -or $PSBoundParameters.ContainsKey('MemoryStartupBytes')) -and $r.State -ne 'Off') { Throw-InvalidState $PSCmdlet $r }
            foreach ($p in 'Notes', 'ProcessorCount', 'MemoryStartupBytes', 'CheckpointType', 'AutomaticCheckpointsEnabled', 'AutomaticStopAction') {
                if ($PSBoundParameters.ContainsKey($p)) { $r[$p] = $PSBoundParameters[$p] }
            }
            Write-Vm $r
            if ($Passthru) { New-VmObject $r }
        }
    }
}

function Start-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'Name', Mandatory, Position = 0)][Alias('VMName')][string[]]$Name,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$AsJob, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $Name $VM)) {
            if ($r.State -eq 'Running') { Write-AlreadyThere $PSCmdlet $r; continue }
            if (-not $PSCmdlet.ShouldProcess($r.Name, 'Start-VM')) { continue }
            if ($r.State -eq 'Paused') {
                # Start-VM on a paused VM resumes it (issue 12; Hyper-V Manager's Start does
                # the same). Inferred: the cmdlet page does not say so.
                $done = Invoke-Transition $PSCmdlet $r 'Start-VM' @('Paused') 'Resuming' 'Running' $null 18518 'was resumed.'
                if ($Passthru) { New-VmObject $done }
                continue
            }
            $cfg = Get-Config
            if ($r.State -eq 'Off' -and $r.MemoryStartupBytes -gt $cfg.FreeMemoryBytes) {
                $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "'$($r.Name)' could not initialize. Not enough memory in the system to start the virtual machine $($r.Name). (Virtual machine ID $($r.Id))" 'OutOfMemory' 'ResourceUnavailable' $r.Name))
            }
            $fromSaved = $r.State -eq 'Saved'
            $done = Invoke-Transition $PSCmdlet $r 'Start-VM' @('Off', 'Saved') 'Starting' 'Running' { param($v) $v.RunningSince = [DateTime]::UtcNow } `
                $(if ($fromSaved) { 18596 } else { 18500 }) $(if ($fromSaved) { 'was restored successfully.' } else { 'started successfully.' })
            if ($Passthru) { New-VmObject $done }
        }
    }
}

function Stop-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'Name', Mandatory, Position = 0)][Alias('VMName')][string[]]$Name,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$Save, [switch]$TurnOff, [switch]$Force, [switch]$AsJob, [switch]$Passthru)
    process {
        if ($Save -and $TurnOff) {
            $PSCmdlet.ThrowTerminatingError((New-ErrorRecord 'Parameter set cannot be resolved using the specified named parameters. -Save and -TurnOff cannot be used together.' 'AmbiguousParameterSet' 'InvalidArgument' $null 'System.Management.Automation.ParameterBindingException'))
        }
        foreach ($r in @(Resolve-Vm $PSCmdlet $Name $VM)) {
            if (-not $PSCmdlet.ShouldProcess($r.Name, 'Stop-VM')) { continue }
            if ($Save -and $r.State -eq 'Saved') { Write-AlreadyThere $PSCmdlet $r; continue }
            if ($Save) { $done = Invoke-Transition $PSCmdlet $r 'Save-VM' @('Running', 'Paused') 'Saving' 'Saved' { param($v) $v.RunningSince = $null } 18510 'was saved successfully.' }
            elseif ($r.State -eq 'Off') { Write-AlreadyThere $PSCmdlet $r; continue }
            elseif ($TurnOff) {
                # A hard power-off, but not in the middle of another transition: a VM stuck
                # in Saving refuses it, and only killing its worker process (vmwp.exe, see
                # Stop-Process in HostTools.ps1) gets it Off. A Saved VM turned off loses its
                # saved state (issue 12).
                $done = Invoke-Transition $PSCmdlet $r 'Stop-VM' @('Running', 'Paused', 'Saved') 'Stopping' 'Off' { param($v) $v.RunningSince = $null } 18502 'was turned off.'
            } else {
                if (-not ((Test-Booted $r) -and $r.Integration['Shutdown'])) {
                    $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "The virtual machine '$($r.Name)' could not be shut down: the Shutdown integration service is not available. Use -TurnOff." 'OperationFailed' 'InvalidOperation' $r.Name))
                }
                $done = Invoke-Transition $PSCmdlet $r 'Stop-VM' @('Running') 'Stopping' 'Off' { param($v) $v.RunningSince = $null } 18504 'was shut down.'
            }
            if ($Passthru) { New-VmObject $done }
        }
    }
}

function Save-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'Name', Mandatory, Position = 0)][Alias('VMName')][string[]]$Name,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$AsJob, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $Name $VM)) {
            # Asked for the state it is in: a warning, and success (issue 12).
            if ($r.State -eq 'Saved') { Write-AlreadyThere $PSCmdlet $r; continue }
            if (-not $PSCmdlet.ShouldProcess($r.Name, 'Save-VM')) { continue }
            $done = Invoke-Transition $PSCmdlet $r 'Save-VM' @('Running', 'Paused') 'Saving' 'Saved' { param($v) $v.RunningSince = $null } 18510 'was saved successfully.'
            if ($Passthru) { New-VmObject $done }
        }
    }
}

function Suspend-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'Name', Mandatory, Position = 0)][Alias('VMName')][string[]]$Name,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$AsJob, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $Name $VM)) {
            if ($r.State -eq 'Paused') { Write-AlreadyThere $PSCmdlet $r; continue }
            if (-not $PSCmdlet.ShouldProcess($r.Name, 'Suspend-VM')) { continue }
            $done = Invoke-Transition $PSCmdlet $r 'Suspend-VM' @('Running') 'Pausing' 'Paused' $null 18516 'was paused.'
            if ($Passthru) { New-VmObject $done }
        }
    }
}

function Resume-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'Name', Mandatory, Position = 0)][Alias('VMName')][string[]]$Name,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$AsJob, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $Name $VM)) {
            if ($r.State -eq 'Running') { Write-AlreadyThere $PSCmdlet $r; continue }
            if (-not $PSCmdlet.ShouldProcess($r.Name, 'Resume-VM')) { continue }
            $done = Invoke-Transition $PSCmdlet $r 'Resume-VM' @('Paused') 'Resuming' 'Running' $null 18518 'was resumed.'
            if ($Passthru) { New-VmObject $done }
        }
    }
}

function Remove-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess, ConfirmImpact = 'High')]
    param(
        [Parameter(ParameterSetName = 'Name', Mandatory, Position = 0)][Alias('VMName')][string[]]$Name,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$Force, [switch]$AsJob, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $Name $VM)) {
            if ($r.State -notin 'Off', 'Saved') { Throw-InvalidState $PSCmdlet $r }
            # Without -Force this asks, and a non-interactive session cannot answer.
            if (-not ($Force -or $PSCmdlet.ShouldProcess($r.Name, 'Remove virtual machine'))) { continue }
            Remove-VmRecord $r.Id
            Add-Event 13003 "The virtual machine '$($r.Name)' was deleted. (Virtual machine ID $($r.Id))" 'Microsoft-Windows-Hyper-V-VMMS-Admin'
            if ($Passthru) { New-VmObject $r }
        }
    }
}
