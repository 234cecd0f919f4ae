# Stand-in for the Hyper-V PowerShell module, for tests on machines without Hyper-V.
# See State.ps1 for how state is kept and README.md for what is and is not modelled.
@{
    RootModule        = 'HyperVStandin.psm1'
    ModuleVersion     = '0.1.0'
    GUID              = '6f0b7f0e-3f7c-4d38-9a55-2b7f3f3c1a01'
    Author            = 'vmbus-bench'
    Description       = 'A stand-in for the Hyper-V cmdlets the bench uses, with file-backed state.'
    PowerShellVersion = '5.1'
    FunctionsToExport = @(
        'Get-VM', 'New-VM', 'Set-VM', 'Start-VM', 'Stop-VM', 'Save-VM', 'Suspend-VM', 'Resume-VM', 'Remove-VM',
        'Set-VMProcessor', 'Set-VMFirmware', 'Set-VMComPort', 'Get-VMComPort',
        'Get-VMIntegrationService', 'Enable-VMIntegrationService', 'Get-VMNetworkAdapter', 'Get-VMHardDiskDrive',
        'Checkpoint-VM', 'Get-VMSnapshot', 'Restore-VMSnapshot', 'Remove-VMSnapshot',
        'Compare-VM', 'Move-VM', 'Get-VMHost', 'Get-VMSwitch', 'New-VHD', 'Get-VHD', 'Remove-Item',
        'Get-WinEvent', 'Get-CimInstance', 'Stop-Process', 'bcdedit', 'pnputil',
        'Add-StandinFile',
        'sample-ctl', 'blockq-ctl', 'logman', 'handle-broker', 'Set-StandinSampleDrivers',
        'Initialize-StandinHost', 'Set-StandinFault', 'Set-StandinDelay', 'Set-StandinVmState', 'Get-StandinState'
    )
}
