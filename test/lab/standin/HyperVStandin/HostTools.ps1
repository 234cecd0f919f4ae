# The host around the VMs: switches, virtual disks, the event log, memory and disk figures
# (CIM), the boot configuration (bcdedit) and the driver store (pnputil). Files are not
# real: the stand-in keeps a registry of the host paths it knows (files.clixml).

function Get-VMSwitch {
    [CmdletBinding()]
    param([Parameter(Position = 0)][string[]]$Name = @('*'))
    $c = Get-Config
    foreach ($n in $Name) {
        $found = @($c.Switches | Where-Object { $_ -like $n })
        if ($found.Count -eq 0 -and -not [System.Management.Automation.WildcardPattern]::ContainsWildcardCharacters($n)) {
            $PSCmdlet.WriteError((New-ErrorRecord "Hyper-V was unable to find a virtual switch with name `"$n`"." 'ObjectNotFound' 'ObjectNotFound' $n 'System.ArgumentException'))
        }
        foreach ($s in $found) { [pscustomobject]@{ Name = $s; SwitchType = 'External'; ComputerName = $c.Name } }
    }
}

function New-VHD {
    [CmdletBinding(DefaultParameterSetName = 'DynamicWithoutSource')]
    param(
        [Parameter(Mandatory, Position = 0)][string[]]$Path,
        [Parameter(ParameterSetName = 'Differencing', Mandatory, Position = 1)][string]$ParentPath,
        [Parameter(ParameterSetName = 'Differencing')][switch]$Differencing,
        [Parameter(ParameterSetName = 'DynamicWithoutSource', Mandatory, Position = 1)]
        [Parameter(ParameterSetName = 'FixedWithoutSource', Mandatory, Position = 1)]
        [Parameter(ParameterSetName = 'Differencing')][uint64]$SizeBytes,
        [Parameter(ParameterSetName = 'DynamicWithoutSource')][switch]$Dynamic,
        [Parameter(ParameterSetName = 'FixedWithoutSource', Mandatory)][switch]$Fixed,
        [switch]$AsJob)
    $files = Get-Files
    foreach ($p in $Path) {
        if ($files.ContainsKey($p)) {
            $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Failed to create the virtual hard disk. The file exists. ('$p')" 'InvalidParameter' 'InvalidArgument' $p 'System.IO.IOException'))
        }
        if ($PSCmdlet.ParameterSetName -eq 'Differencing') {
            if (-not $files.ContainsKey($ParentPath)) {
                $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Failed to create the virtual hard disk. The system cannot find the file specified. ('$ParentPath')" 'ObjectNotFound' 'ObjectNotFound' $ParentPath 'System.IO.FileNotFoundException'))
            }
            if ($ParentPath -like '*.avhdx') {
                $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "A checkpoint disk ('$ParentPath') cannot be used as a parent." 'InvalidParameter' 'InvalidArgument' $ParentPath))
            }
            Wait-Operation 'New-VHD' (Get-Config)
            $files[$p] = @{ Kind = 'Differencing'; Size = $files[$ParentPath].Size; Parent = $ParentPath }
        } else {
            $files[$p] = @{ Kind = $(if ($Fixed) { 'Fixed' } else { 'Dynamic' }); Size = $SizeBytes; Parent = $null }
        }
        Save-Files $files
        Get-VHD -Path $p
    }
}

function Get-VHD {
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)][string[]]$Path)
    process {
        $files = Get-Files
        foreach ($p in $Path) {
            if (-not $files.ContainsKey($p)) {
                $PSCmdlet.WriteError((New-ErrorRecord "Getting the mounted storage instance for the path '$p' failed. The system cannot find the file specified." 'ObjectNotFound' 'ObjectNotFound' $p 'System.IO.FileNotFoundException'))
                continue
            }
            $f = $files[$p]
            [pscustomobject]@{ Path = $p; VhdFormat = 'VHDX'; VhdType = $f.Kind; ParentPath = $f.Parent; Size = $f.Size; FileSize = $(if ($f.Kind -eq 'Differencing') { 4MB } else { $f.Size }) }
        }
    }
}

# Hyper-V has no cmdlet to delete a disk file; the bench uses Remove-Item. Here it removes
# a path from the stand-in's file registry and nothing on the real file system.
function Remove-Item {
    [CmdletBinding(DefaultParameterSetName = 'LiteralPath')]
    param(
        [Parameter(ParameterSetName = 'LiteralPath', Mandatory)][string[]]$LiteralPath,
        [Parameter(ParameterSetName = 'Path', Mandatory, Position = 0)][string[]]$Path,
        [switch]$Force)
    $files = Get-Files
    foreach ($p in @($LiteralPath) + @($Path) | Where-Object { $_ }) {
        if (-not $files.ContainsKey($p)) {
            $PSCmdlet.WriteError((New-ErrorRecord "Cannot find path '$p' because it does not exist." 'PathNotFound,Microsoft.PowerShell.Commands.RemoveItemCommand' 'ObjectNotFound' $p 'System.Management.Automation.ItemNotFoundException'))
            continue
        }
        $files.Remove($p)
    }
    Save-Files $files
}

function Get-WinEvent {
    [CmdletBinding(DefaultParameterSetName = 'GetLogSet')]
    param(
        [Parameter(ParameterSetName = 'GetLogSet', Position = 0)][string[]]$LogName,
        [Parameter(ParameterSetName = 'HashQuerySet', Mandatory, Position = 0)][hashtable[]]$FilterHashtable,
        [long]$MaxEvents = -1)
    $events = @(Get-Events)
    $logs = if ($FilterHashtable) { @($FilterHashtable[0]['LogName']) } else { @($LogName) }
    $since = if ($FilterHashtable -and $FilterHashtable[0]['StartTime']) { ([DateTime]$FilterHashtable[0]['StartTime']).ToUniversalTime() } else { [DateTime]::MinValue }
    $ids = if ($FilterHashtable -and $FilterHashtable[0]['Id']) { @($FilterHashtable[0]['Id']) } else { @() }
    $logs = @($logs | Where-Object { $_ })
    $matched = @($events | Where-Object {
        ($logs.Count -eq 0 -or $logs -contains $_.LogName) -and $_.TimeCreated -ge $since -and ($ids.Count -eq 0 -or $ids -contains $_.Id)
    })
    if ($matched.Count -eq 0) {
        $PSCmdlet.WriteError((New-ErrorRecord 'No events were found that match the specified selection criteria.' 'NoMatchingEventsFound' 'ObjectNotFound' $null 'System.Exception'))
        return
    }
    [array]::Reverse($matched)   # newest first, as Get-WinEvent returns them
    if ($MaxEvents -gt 0) { $matched = @($matched | Select-First $MaxEvents) }
    foreach ($e in $matched) {
        [pscustomobject]@{ TimeCreated = $e.TimeCreated.ToLocalTime(); Id = $e.Id; LogName = $e.LogName; ProviderName = $e.ProviderName
                           Level = $e.Level; LevelDisplayName = @{ 1 = 'Critical'; 2 = 'Error'; 3 = 'Warning'; 4 = 'Information' }[[int]$e.Level]; Message = $e.Message }
    }
}

function script:Select-First([int]$Count) { begin { $n = 0 } process { if ($n -lt $Count) { $_; $n++ } } }

function Get-CimInstance {
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)][string]$ClassName, [string]$Filter, [string]$Namespace)
    $c = Get-Config
    switch ($ClassName) {
        'Win32_OperatingSystem' { [pscustomobject]@{ FreePhysicalMemory = [long]($c.FreeMemoryBytes / 1KB); TotalVisibleMemorySize = [long]($c.TotalMemoryBytes / 1KB); Caption = 'Microsoft Windows Server 2025 Datacenter (stand-in)'; BuildNumber = '26100' } }
        'Win32_LogicalDisk' {
            $id = if ($Filter -match "DeviceID\s*=\s*'([A-Za-z]:)'") { $Matches[1].ToUpperInvariant() } else { 'C:' }
            [pscustomobject]@{ DeviceID = $id; FreeSpace = [long]$c.FreeDiskBytes; Size = [long]($c.FreeDiskBytes * 2) }
        }
        'Win32_Process' {
            # One worker process per VM that is not Off or Saved; its command line holds the VM id.
            if ($Filter -and $Filter -notmatch "Name\s*=\s*'vmwp\.exe'") { return }
            foreach ($v in @(All-Vms)) {
                if ($v.State -in 'Off', 'Saved') { continue }
                [pscustomobject]@{ Name = 'vmwp.exe'; ProcessId = 10000 + (Get-StableNumber $v.Id) % 50000; CommandLine = "`"C:\Windows\System32\vmwp.exe`" $($v.Id.ToUpperInvariant()) 0x7b8" }
            }
        }
        default { $PSCmdlet.ThrowTerminatingError((New-ErrorRecord 'Invalid class' 'HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand' 'MetadataError' $ClassName)) }
    }
}

# Killing a VM's worker process: the VM goes Off at once, whatever it was doing, and the
# Worker log records event 14070. Any other process id is "not found".
function Stop-Process {
    [CmdletBinding()]
    param([Parameter(Mandatory)][int[]]$Id, [switch]$Force)
    foreach ($p in $Id) {
        $vm = @(@(All-Vms) | Where-Object { $_.State -notin 'Off', 'Saved' -and (10000 + (Get-StableNumber $_.Id) % 50000) -eq $p })[0]
        if (-not $vm) {
            $PSCmdlet.WriteError((New-ErrorRecord "Cannot find a process with the process identifier $p." 'NoProcessFoundForGivenId,Microsoft.PowerShell.Commands.StopProcessCommand' 'ObjectNotFound' $p))
            continue
        }
        $vm.State = 'Off'; $vm.RunningSince = $null
        Write-Vm $vm
        Add-Event 14070 "The virtual machine '$($vm.Name)' was turned off because its worker process was terminated. (Virtual machine ID $($vm.Id))" -Level 2
    }
}

# bcdedit as a function: `/enum` prints the {current} entry the way bcdedit does; the
# `testsigning` line is there only when it is on.
function bcdedit {
    $c = Get-Config
    if ($args.Count -ge 1 -and $args[0] -eq '/enum') {
        'Windows Boot Loader'
        '-------------------'
        'identifier              {current}'
        'device                  partition=C:'
        'path                    \Windows\system32\winload.efi'
        'description             Windows Server'
        if ($c.TestSigning) { 'testsigning             Yes' }
        'hypervisorlaunchtype    Auto'
        $global:LASTEXITCODE = 0
        return
    }
    'The parameter is incorrect.'
    $global:LASTEXITCODE = 1
}

# pnputil as a function over the stand-in's driver store: /add-driver X.inf /install,
# /enum-drivers, /delete-driver oemN.inf /uninstall /force. Exit codes as pnputil's:
# 0 ok, 3010 ok but reboot needed, 5 (access denied) when test signing is off for an
# unsigned package, 2 file not found.
function pnputil {
    $c = Get-Config
    $drivers = [System.Collections.ArrayList]@($c.Drivers)
    $verb = if ($args.Count -gt 0) { [string]$args[0] } else { '' }
    switch ($verb) {
        '/add-driver' {
            $inf = [string]$args[1]
            'Microsoft PnP Utility'; ''
            "Adding driver package:  $(($inf -split '[\\/]')[-1])"
            if (-not (Get-Files).ContainsKey($inf)) { 'Failed to add driver package: The system cannot find the file specified.'; $global:LASTEXITCODE = 2; return }
            if (-not $c.TestSigning) { 'Failed to add driver package: A certificate chain processed, but terminated in a root certificate which is not trusted by the trust provider.'; $global:LASTEXITCODE = 5; return }
            $original = ($inf -split '[\\/]')[-1]
            # Adding a package already in the store again gives it a new oemNN name; the old one stays.
            $published = "oem$(10 + $drivers.Count).inf"
            [void]$drivers.Add(@{ Published = $published; Original = $original; Installed = ($args -contains '/install') })
            $c.Drivers = @($drivers); Save-Config $c
            $code = if ($args -contains '/install') { Install-StandinDriverFile $inf } else { 0 }
            'Driver package added successfully.'
            "Published Name:         $published"
            if ($code -eq 3010) { 'System reboot is needed to complete install operations!' }
            $global:LASTEXITCODE = $code
        }
        '/enum-drivers' {
            'Microsoft PnP Utility'; ''
            foreach ($d in $drivers) { "Published Name:     $($d.Published)"; "Original Name:      $($d.Original)"; "Provider Name:      vmbus-bench"; "Class Name:         System"; '' }
            $global:LASTEXITCODE = 0
        }
        '/delete-driver' {
            $name = [string]$args[1]
            $left = @($drivers | Where-Object { $_.Published -ne $name })
            'Microsoft PnP Utility'; ''
            if ($left.Count -eq $drivers.Count) { "Failed to delete driver package: The specified driver package $name was not found."; $global:LASTEXITCODE = 2; return }
            $c.Drivers = $left; Save-Config $c
            'Driver package deleted successfully.'
            $global:LASTEXITCODE = 0
        }
        default { 'Microsoft PnP Utility'; 'Invalid arguments.'; $global:LASTEXITCODE = 87 }
    }
}

# ---- set-up and inspection for tests (not Hyper-V cmdlets) ------------------------------

function Initialize-StandinHost {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)][string]$Name,
        [string[]]$Switches = @(), [long]$FreeMemoryBytes = 16GB, [long]$TotalMemoryBytes = 32GB, [long]$FreeDiskBytes = 500GB,
        [bool]$MigrationEnabled = $false, [hashtable]$Peers = @{}, [bool]$TestSigning = $false,
        [string[]]$Files = @(), [int]$BootMilliseconds = 0, [string]$OsBuild = '26100', [int]$Ubr = 2314, [bool]$DriverInUse = $false)
    $dir = StateDir
    foreach ($f in [System.IO.Directory]::GetFiles($dir, '*', 'AllDirectories')) { [System.IO.File]::Delete($f) }
    [void][System.IO.Directory]::CreateDirectory([System.IO.Path]::Combine($dir, 'vms'))
    Save-Config @{ Name = $Name; Switches = $Switches; FreeMemoryBytes = $FreeMemoryBytes; TotalMemoryBytes = $TotalMemoryBytes; FreeDiskBytes = $FreeDiskBytes
                   MigrationEnabled = $MigrationEnabled; Peers = $Peers; Delays = @{}; Faults = @{}; TestSigning = $TestSigning; Drivers = @()
                   BootMilliseconds = $BootMilliseconds; Unreachable = $false; OsBuild = $OsBuild; Ubr = $Ubr; DriverInUse = $DriverInUse }
    $reg = @{}
    foreach ($f in $Files) { $reg[$f] = @{ Kind = $(if ($f -match '\.inf$') { 'File' } else { 'Dynamic' }); Size = [long]30GB; Parent = $null } }
    Save-Files $reg
    Initialize-HostFiles $OsBuild $Ubr
}

function Set-StandinFault {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Operation, [Parameter(Mandatory)][ValidateSet('none', 'hang', 'fail', 'host-gone')][string]$Mode, [string]$Message = 'The operation failed.')
    $c = Get-Config
    if ($Mode -eq 'none') { $c.Faults.Remove($Operation) } else { $c.Faults[$Operation] = @{ Mode = $Mode; Message = $Message } }
    Save-Config $c
}

function Set-StandinDelay {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Operation, [Parameter(Mandatory)][int]$Milliseconds)
    $c = Get-Config
    $c.Delays[$Operation] = $Milliseconds
    Save-Config $c
}

# Puts a VM in any state of Microsoft.HyperV.PowerShell.VMState, the whole enum, so tests
# can show what the bench does from states the stand-in never reaches by itself (a VM
# whose storage went away is RunningCritical; a host being serviced, ComponentServicing).
function Set-StandinVmState {
    [CmdletBinding()]
    param([Parameter(Mandatory)][guid]$Id,
          [Parameter(Mandatory)][ValidateSet('Other', 'Running', 'Off', 'Stopping', 'Saved', 'Paused', 'Starting', 'Reset', 'Saving', 'Pausing',
              'Resuming', 'FastSaved', 'FastSaving', 'ForceShutdown', 'ForceReboot', 'Hibernated', 'ComponentServicing',
              'RunningCritical', 'OffCritical', 'StoppingCritical', 'SavedCritical', 'PausedCritical', 'StartingCritical', 'ResetCritical',
              'SavingCritical', 'PausingCritical', 'ResumingCritical', 'FastSavedCritical', 'FastSavingCritical')][string]$State)
    $r = Read-Vm ([string]$Id)
    if (-not $r) { Throw-NotFound $PSCmdlet 'ID' ([string]$Id) }
    $r.State = $State
    Write-Vm $r
}

function Get-StandinState {
    [CmdletBinding()]
    param()
    $c = Get-Config
    [pscustomobject]@{
        Name = $c.Name
        Vms = @(All-Vms | ForEach-Object { [pscustomobject]@{ Id = $_.Id; Name = $_.Name; State = $_.State; Notes = $_.Notes } })
        Files = @((Get-Files).Keys)
        Drivers = @($c.Drivers | ForEach-Object { $_.Published })
        Unreachable = [bool]$c.Unreachable
        SampleDriversLog = @(if ($c.SampleDrivers) { $c.SampleDrivers.Log })
    }
}
