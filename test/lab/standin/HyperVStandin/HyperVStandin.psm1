# Loads the stand-in's parts. Each file holds one concern; all share the module scope.
# Only the PowerShell language and .NET are used here (no Utility/Management cmdlets), so
# the module runs on any PowerShell engine, the bare one the tests may have included.
$ErrorActionPreference = 'Stop'
foreach ($part in 'State', 'Vm', 'VmSettings', 'Checkpoints', 'Migration', 'HostTools', 'DriverFiles') {
    . ([System.IO.Path]::Combine($PSScriptRoot, "$part.ps1"))
}
