# Per-VM settings and devices: processor, firmware, COM ports, integration services,
# network adapters (with the KVP-reported addresses) and disks. Settings that Hyper-V only
# changes on a VM that is off refuse other states with InvalidState.

function Set-VMProcessor {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(ParameterSetName = 'VMName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [long]$Count, [bool]$CompatibilityForMigrationEnabled, [bool]$ExposeVirtualizationExtensions, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) {
            if ($r.State -ne 'Off') { Throw-InvalidState $PSCmdlet $r }
            if ($PSBoundParameters.ContainsKey('Count')) { $r.ProcessorCount = $Count }
            if ($PSBoundParameters.ContainsKey('CompatibilityForMigrationEnabled')) { $r.CompatibilityForMigrationEnabled = $CompatibilityForMigrationEnabled }
            Write-Vm $r
        }
    }
}

function Set-VMFirmware {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(ParameterSetName = 'VMName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [ValidateSet('On', 'Off')][string]$EnableSecureBoot,
        [string]$SecureBootTemplate, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) {
            if ($r.Generation -ne 2) {
                $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Firmware settings apply to generation 2 virtual machines only; '$($r.Name)' is generation $($r.Generation)." 'InvalidParameter' 'InvalidArgument' $r.Name))
            }
            if ($r.State -ne 'Off') { Throw-InvalidState $PSCmdlet $r }
            if ($EnableSecureBoot) { $r.SecureBoot = $EnableSecureBoot }
            if ($SecureBootTemplate) { $r.SecureBootTemplate = $SecureBootTemplate }
            Write-Vm $r
        }
    }
}

function Set-VMComPort {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(ParameterSetName = 'VMName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [Parameter(Mandatory)][ValidateRange(1, 2)][int]$Number,
        [string]$Path, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) { $r.ComPorts[$Number] = [string]$Path; Write-Vm $r }
    }
}

function Get-VMComPort {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(ParameterSetName = 'VMName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [int]$Number)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) {
            foreach ($n in 1, 2) {
                if ($Number -and $Number -ne $n) { continue }
                [pscustomobject]@{ Name = "COM $n"; Path = $r.ComPorts[$n]; VMName = $r.Name; VMId = [guid]$r.Id }
            }
        }
    }
}

function Get-VMIntegrationService {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(ParameterSetName = 'VMName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [string[]]$Name = @('*'))
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) {
            $booted = Test-Booted $r
            foreach ($svc in $r.Integration.Keys) {
                if (-not @($Name | Where-Object { $svc -like $_ })) { continue }
                $on = [bool]$r.Integration[$svc]
                [pscustomobject]@{
                    Name = $svc; Enabled = $on; VMName = $r.Name; VMId = [guid]$r.Id
                    PrimaryStatusDescription = $(if (-not $on -or $r.State -ne 'Running') { $null } elseif ($booted) { 'OK' } else { 'No Contact' })
                }
            }
        }
    }
}

function Enable-VMIntegrationService {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(Mandatory, Position = 0)][string[]]$Name,
        [Parameter(ParameterSetName = 'VMName', Position = 1)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) {
            foreach ($n in $Name) {
                if (-not $r.Integration.ContainsKey($n)) {
                    $PSCmdlet.WriteError((New-ErrorRecord "No integration service named '$n' was found for virtual machine '$($r.Name)'." 'ObjectNotFound' 'ObjectNotFound' $n))
                    continue
                }
                $r.Integration[$n] = $true
            }
            Write-Vm $r
        }
    }
}

function Get-VMNetworkAdapter {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(ParameterSetName = 'VMName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [string]$Name)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) {
            # KVP reports addresses once the guest is up: IPv6 link-local first, like real guests.
            $n = (Get-StableNumber $r.Id) % 250 + 2
            $ips = if ((Test-Booted $r) -and $r.Integration['Key-Value Pair Exchange']) { @("fe80::215:5dff:fe00:$('{0:x}' -f $n)", "192.168.77.$n") } else { @() }
            [pscustomobject]@{ Name = 'Network Adapter'; SwitchName = $r.SwitchName; IPAddresses = $ips; VMName = $r.Name; VMId = [guid]$r.Id; MacAddress = ('00155D00{0:X4}' -f $n) }
        }
    }
}

function Get-VMHardDiskDrive {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(ParameterSetName = 'VMName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) {
            foreach ($d in @($r.Disks)) { [pscustomobject]@{ Path = $d; VMName = $r.Name; VMId = [guid]$r.Id; ControllerType = $(if ($r.Generation -eq 2) { 'SCSI' } else { 'IDE' }) } }
        }
    }
}
