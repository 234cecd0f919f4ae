# Loads the stand-in's parts. Each file holds one concern; all share the module scope.
# Only the PowerShell language and .NET are used here (no Management cmdlets; of Utility,
# Update-TypeData alone, DriverFiles.ps1), so the module needs nothing beyond what pwsh ships;
# it runs on pwsh 7 (File.Move with overwrite is .NET Core, PersistedAssemblyBuilder .NET 9).
$ErrorActionPreference = 'Stop'
foreach ($part in 'State', 'Vm', 'VmSettings', 'Checkpoints', 'Migration', 'HostTools', 'DriverFiles', 'ControlTools') {
    . ([System.IO.Path]::Combine($PSScriptRoot, "$part.ps1"))
}
