# Shared-nothing live migration between two stand-in hosts. The destination is another
# state directory, found through this host's `Peers` map (host name -> directory). What is
# checked follows reference/prior-art-lab.md 4.2: migration enabled on both ends, the VM's
# switch present at the destination, storage moved (-IncludeStorage) since nothing is
# shared, and the destination reachable.

function script:Get-PeerDir($Config, [string]$DestinationHost) {
    if (-not $Config.Peers.ContainsKey($DestinationHost)) { return $null }
    $dir = $Config.Peers[$DestinationHost]
    $peer = Get-Config $dir
    if ($peer.Unreachable) { return $null }
    $dir
}

function script:Get-Incompatibilities($r, $Config, [string]$DestinationHost, [bool]$IncludeStorage) {
    $dir = Get-PeerDir $Config $DestinationHost
    if (-not $dir) { return , @(@{ Message = "The Virtual Machine Management Service failed to establish a connection for a Virtual Machine migration with host '$DestinationHost': No connection could be made because the target machine actively refused it. (0x8007274D)."; MessageId = 21024; Source = $DestinationHost }) }
    $peer = Get-Config $dir
    $out = @()
    if (-not $Config.MigrationEnabled) { $out += @{ Message = "Virtual machine migration is not enabled on host '$($Config.Name)'."; MessageId = 21026; Source = $Config.Name } }
    if (-not $peer.MigrationEnabled) { $out += @{ Message = "Virtual machine migration is not enabled on host '$DestinationHost'."; MessageId = 21026; Source = $DestinationHost } }
    if ($r.SwitchName -and $peer.Switches -notcontains $r.SwitchName) { $out += @{ Message = "Could not find Ethernet switch '$($r.SwitchName)'."; MessageId = 33012; Source = 'Network Adapter' } }
    if (-not $IncludeStorage) { $out += @{ Message = "The virtual machine's storage is not accessible from host '$DestinationHost'. Move the storage with the virtual machine (-IncludeStorage)."; MessageId = 40010; Source = $r.Name } }
    if ($r.State -eq 'Running' -and $r.MemoryStartupBytes -gt $peer.FreeMemoryBytes) { $out += @{ Message = "Not enough memory on host '$DestinationHost' to run the virtual machine."; MessageId = 20411; Source = $r.Name } }
    , $out
}

function Compare-VM {
    [CmdletBinding(DefaultParameterSetName = 'NameSingleDestination')]
    param(
        [Parameter(ParameterSetName = 'NameSingleDestination', Mandatory, Position = 0)][string]$Name,
        [Parameter(ParameterSetName = 'VMSingleDestination', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject]$VM,
        [Parameter(Mandatory, Position = 1)][string]$DestinationHost,
        [switch]$IncludeStorage, [string]$DestinationStoragePath)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet @($Name | Where-Object { $_ }) $VM)) {
            $issues = Get-Incompatibilities $r (Get-Config) $DestinationHost $IncludeStorage
            [pscustomobject]@{
                PSTypeName = 'Microsoft.HyperV.PowerShell.VMCompatibilityReport'
                VM = New-VmObject $r; Destination = $DestinationHost
                OperationType = $(if ($IncludeStorage) { 'MoveVirtualMachineAndStorage' } else { 'MoveVirtualMachine' })
                Incompatibilities = @($issues | ForEach-Object { [pscustomobject]@{ Message = $_.Message; MessageId = $_.MessageId; Source = $_.Source } })
            }
        }
    }
}

function Move-VM {
    [CmdletBinding(DefaultParameterSetName = 'NameSingleDestination')]
    param(
        [Parameter(ParameterSetName = 'NameSingleDestination', Mandatory, Position = 0)][string]$Name,
        [Parameter(ParameterSetName = 'VMSingleDestination', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject]$VM,
        [Parameter(Mandatory, Position = 1)][string]$DestinationHost,
        [switch]$IncludeStorage, [string]$DestinationStoragePath, [switch]$AsJob, [switch]$Passthru)
    process {
        $src = StateDir
        $cfg = Get-Config $src
        foreach ($r in @(Resolve-Vm $PSCmdlet @($Name | Where-Object { $_ }) $VM)) {
            if ($r.State -notin 'Running', 'Off', 'Saved', 'Paused') { Throw-InvalidState $PSCmdlet $r }
            $prefix = "Virtual machine migration operation for '$($r.Name)' failed at migration source '$($cfg.Name)'. (Virtual machine ID $($r.Id))"
            $issues = Get-Incompatibilities $r $cfg $DestinationHost $IncludeStorage
            if ($issues.Count -gt 0) {
                Add-Event 21502 "$prefix $($issues[0].Message)" 'Microsoft-Windows-Hyper-V-VMMS-Admin' 2
                $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "$prefix $($issues[0].Message)" 'OperationFailed' 'ConnectionError' $r.Name))
            }
            $fault = Get-Fault 'Move-VM' $cfg
            $ms = [int]$cfg.Delays['Move-VM']
            if ($fault -and $fault.Mode -eq 'hang') { Hang-Forever }
            if ($fault -and $fault.Mode -eq 'host-gone') {
                # The destination disappears half way: the source keeps the VM as it was.
                [System.Threading.Thread]::Sleep([int]($ms / 2))
                $dst = $cfg.Peers[$DestinationHost]
                $peer = Get-Config $dst; $peer.Unreachable = $true; Save-Config $peer $dst
                $msg = "$prefix The Virtual Machine Management Service lost the connection to host '$DestinationHost' during the migration: An existing connection was forcibly closed by the remote host. (0x80072746)."
                Add-Event 21502 $msg 'Microsoft-Windows-Hyper-V-VMMS-Admin' 2
                $PSCmdlet.ThrowTerminatingError((New-ErrorRecord $msg 'OperationFailed' 'ConnectionError' $r.Name))
            }
            [System.Threading.Thread]::Sleep($ms)
            $dst = $cfg.Peers[$DestinationHost]
            $moved = Read-Vm $r.Id $src
            $base = if ($DestinationStoragePath) { $DestinationStoragePath } else { $moved.Path }
            $srcFiles = Get-Files $src; $dstFiles = Get-Files $dst
            $newDisks = @()
            foreach ($d in @($moved.Disks)) {
                $leaf = ($d -split '[\\/]')[-1]
                $nd = "$($base.TrimEnd('\'))\$leaf"
                if ($srcFiles.ContainsKey($d)) { $dstFiles[$nd] = $srcFiles[$d]; $srcFiles.Remove($d) }
                $newDisks += $nd
            }
            $moved.Disks = $newDisks; $moved.Path = $base
            Save-Files $dstFiles $dst; Save-Files $srcFiles $src
            Write-Vm $moved $dst
            Remove-VmRecord $r.Id $src
            Add-Event 20415 "Live migration of '$($r.Name)' to host '$DestinationHost' succeeded. (Virtual machine ID $($r.Id))" 'Microsoft-Windows-Hyper-V-VMMS-Admin' 4 $src
            Add-Event 20417 "Live migration of '$($r.Name)' from host '$($cfg.Name)' succeeded. (Virtual machine ID $($r.Id))" 'Microsoft-Windows-Hyper-V-VMMS-Admin' 4 $dst
            if ($Passthru) { $env:BENCH_HYPERV_STATE = $dst; try { New-VmObject $moved } finally { $env:BENCH_HYPERV_STATE = $src } }
        }
    }
}

function Get-VMHost {
    [CmdletBinding()]
    param([string[]]$ComputerName)
    $c = Get-Config
    [pscustomobject]@{
        PSTypeName = 'Microsoft.HyperV.PowerShell.VMHost'
        Name = $c.Name; ComputerName = $c.Name; LogicalProcessorCount = 16; MemoryCapacity = $c.TotalMemoryBytes
        VirtualMachineMigrationEnabled = [bool]$c.MigrationEnabled; MaximumVirtualMachineMigrations = 2
        # Hyper-V's own default is CredSSP; the stand-in's hosts are set up for Kerberos unless told.
        VirtualMachineMigrationAuthenticationType = $(if ($c.MigrationAuthentication) { $c.MigrationAuthentication } else { 'Kerberos' }); UseAnyNetworkForMigration = $true
        VirtualHardDiskPath = 'C:\ProgramData\Microsoft\Windows\Virtual Hard Disks'; VirtualMachinePath = 'C:\ProgramData\Microsoft\Windows\Hyper-V'
    }
}
