# Checkpoints (the cmdlets keep their old "Snapshot" names). What a restore leaves behind:
# a standard checkpoint returns the VM to the state it was taken in (a running VM's
# comes back Running), a production checkpoint (taken through the guest's VSS/fsfreeze)
# to Off. Parameter names and aliases follow Microsoft's Hyper-V module reference for
# Windows Server 2025 (Checkpoint-VM -SnapshotName alias -CheckpointName, -Name alias
# -VMName, -WhatIf/-Confirm).

function script:New-SnapshotObject($vm, $s) {
    [pscustomobject]@{
        PSTypeName = 'Microsoft.HyperV.PowerShell.VMSnapshot'
        Id = [guid]$s.Id; Name = $s.Name; VMName = $vm.Name; VMId = [guid]$vm.Id
        SnapshotType = $s.SnapshotType; CreationTime = $s.CreationTime; State = $s.VMState
    }
}

function Checkpoint-VM {
    [CmdletBinding(DefaultParameterSetName = 'Name', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'Name', Mandatory, Position = 0)][Alias('VMName')][string[]]$Name,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [Parameter(Position = 1)][Alias('CheckpointName')][string]$SnapshotName, [switch]$AsJob, [switch]$Passthru)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $Name $VM)) {
            if ($r.State -notin 'Running', 'Off', 'Saved', 'Paused') { Throw-InvalidState $PSCmdlet $r }
            if (-not $PSCmdlet.ShouldProcess($r.Name, 'Checkpoint-VM')) { continue }
            if ($r.CheckpointType -eq 'Disabled') {
                $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Checkpoint operation failed for '$($r.Name)'. Checkpoints are disabled for this virtual machine." 'OperationFailed' 'InvalidOperation' $r.Name))
            }
            $booted = Test-Booted $r
            $type = 'Standard'
            if ($r.CheckpointType -in 'Production', 'ProductionOnly') {
                if ($r.State -ne 'Running' -or $booted) { $type = 'Production' }
                elseif ($r.CheckpointType -eq 'ProductionOnly') {
                    $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Production checkpoint of '$($r.Name)' failed: the guest did not respond to the backup (VSS) request." 'OperationFailed' 'InvalidOperation' $r.Name))
                }
            }
            $cfg = Get-Config
            $fault = Get-Fault 'Checkpoint-VM' $cfg
            if ($fault -and $fault.Mode -eq 'hang') { Hang-Forever }
            Wait-Operation 'Checkpoint-VM' $cfg
            $snap = @{ Id = [guid]::NewGuid().ToString(); Name = $(if ($SnapshotName) { $SnapshotName } else { "$($r.Name) - ($([DateTime]::Now.ToString('M/d/yyyy - h:mm:ss tt')))" })
                       VMState = $r.State; SnapshotType = $type; CreationTime = [DateTime]::UtcNow }
            $r = Read-Vm $r.Id
            $r.Snapshots = @(@($r.Snapshots) + $snap)
            Write-Vm $r
            Add-Event 18012 "Checkpoint '$($snap.Name)' of '$($r.Name)' was created. (Virtual machine ID $($r.Id))"
            if ($Passthru) { New-SnapshotObject $r $snap }
        }
    }
}

function Get-VMSnapshot {
    [CmdletBinding(DefaultParameterSetName = 'VMName')]
    param(
        [Parameter(ParameterSetName = 'VMName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [Parameter(Position = 1)][string]$Name = '*',
        [ValidateSet('Standard', 'Recovery', 'Planned', 'Missing', 'Replica', 'AppConsistentReplica', 'SyncedReplica')][string]$SnapshotType)
    process {
        foreach ($r in @(Resolve-Vm $PSCmdlet $VMName $VM)) {
            $found = @(@($r.Snapshots) | Where-Object { $_.Name -like $Name })
            # A -Name that matches no checkpoint is an ObjectNotFound error, not an empty
            # result (issue 12); a wildcard that matches none returns nothing (inferred).
            if ($found.Count -eq 0 -and $PSBoundParameters.ContainsKey('Name') -and -not [System.Management.Automation.WildcardPattern]::ContainsWildcardCharacters($Name)) {
                $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Hyper-V was unable to find a checkpoint named `"$Name`" for virtual machine '$($r.Name)'." 'ObjectNotFound' 'ObjectNotFound' $Name))
            }
            foreach ($s in $found) { New-SnapshotObject $r $s }
        }
    }
}

# Finds the checkpoints a Restore-/Remove-VMSnapshot call means, by object or by VM + name.
function script:Resolve-Snapshot($Cmdlet, $VMSnapshot, [string[]]$VMName, $VM, [string]$Name) {
    if ($VMSnapshot) {
        foreach ($o in $VMSnapshot) {
            $r = Read-Vm ([string]$o.VMId)
            if (-not $r) { Throw-NotFound $Cmdlet 'ID' ([string]$o.VMId) }
            $s = @($r.Snapshots) | Where-Object { $_.Id -eq [string]$o.Id }
            if (-not $s) { $Cmdlet.ThrowTerminatingError((New-ErrorRecord "Unable to find a snapshot matching the given criteria." 'ObjectNotFound' 'ObjectNotFound' $o.Name)) }
            , @($r, $s)
        }
        return
    }
    foreach ($r in @(Resolve-Vm $Cmdlet $VMName $VM)) {
        $found = @(@($r.Snapshots) | Where-Object { $_.Name -like $Name })
        if ($found.Count -eq 0) { $Cmdlet.ThrowTerminatingError((New-ErrorRecord "Unable to find a snapshot matching the given criteria." 'ObjectNotFound' 'ObjectNotFound' $Name)) }
        foreach ($s in $found) { , @($r, $s) }
    }
}

function Restore-VMSnapshot {
    [CmdletBinding(DefaultParameterSetName = 'SnapshotName', SupportsShouldProcess, ConfirmImpact = 'High')]
    param(
        [Parameter(ParameterSetName = 'SnapshotName', Mandatory)][string[]]$VMName,
        [Parameter(ParameterSetName = 'SnapshotName', Mandatory, Position = 0)]
        [Parameter(ParameterSetName = 'VMObject', Mandatory)][string]$Name,
        [Parameter(ParameterSetName = 'SnapshotObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VMSnapshot')][psobject[]]$VMSnapshot,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$AsJob, [switch]$Passthru)
    process {
        foreach ($pair in @(Resolve-Snapshot $PSCmdlet $VMSnapshot $VMName $VM $Name)) {
            $r, $s = $pair
            if ($r.State -notin 'Running', 'Off', 'Saved', 'Paused') { Throw-InvalidState $PSCmdlet $r }
            if (-not $PSCmdlet.ShouldProcess($r.Name, "Apply checkpoint '$($s.Name)'")) { continue }
            # Production checkpoints hold no memory: Off. A standard checkpoint returns the VM
            # to the state it was taken in: a running VM's comes back Running (issue 12),
            # a paused or saved one's Paused or Saved (inferred by analogy).
            $to = if ($s.SnapshotType -eq 'Production') { 'Off' } elseif ($s.VMState -in 'Running', 'Paused', 'Saved') { $s.VMState } else { 'Off' }
            $from = @('Running', 'Off', 'Saved', 'Paused')
            $done = Invoke-Transition $PSCmdlet $r 'Restore-VMSnapshot' $from 'Stopping' $to { param($v) $v.RunningSince = $(if ($v.State -eq 'Running') { [DateTime]::UtcNow } else { $null }) } 18598 "was restored to checkpoint '$($s.Name)'."
            if ($Passthru) { New-SnapshotObject $done $s }
        }
    }
}

function Remove-VMSnapshot {
    [CmdletBinding(DefaultParameterSetName = 'SnapshotName', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'SnapshotName', Mandatory, Position = 0)][string[]]$VMName,
        [Parameter(ParameterSetName = 'SnapshotName', Position = 1)]
        [Parameter(ParameterSetName = 'VMObject')][string]$Name = '*',
        [Parameter(ParameterSetName = 'SnapshotObject', Mandatory, ValueFromPipeline, Position = 0)][PSTypeName('Microsoft.HyperV.PowerShell.VMSnapshot')][psobject[]]$VMSnapshot,
        [Parameter(ParameterSetName = 'VMObject', Mandatory, ValueFromPipeline)][PSTypeName('Microsoft.HyperV.PowerShell.VirtualMachine')][psobject[]]$VM,
        [switch]$IncludeAllChildSnapshots, [switch]$AsJob, [switch]$Passthru)
    process {
        foreach ($pair in @(Resolve-Snapshot $PSCmdlet $VMSnapshot $VMName $VM $Name)) {
            $r, $s = $pair
            if ($r.State -notin 'Running', 'Off', 'Saved', 'Paused') { Throw-InvalidState $PSCmdlet $r }
            if (-not $PSCmdlet.ShouldProcess($r.Name, "Remove checkpoint '$($s.Name)'")) { continue }
            Wait-Operation 'Remove-VMSnapshot' (Get-Config)
            $r = Read-Vm $r.Id
            $r.Snapshots = @(@($r.Snapshots) | Where-Object { $_.Id -ne $s.Id })
            Write-Vm $r
            if ($Passthru) { New-SnapshotObject $r $s }
        }
    }
}
