# The host's driver binaries and its OS build, as real files, so that the REAL cmdlets the
# bench calls answer: Get-FileHash and Get-Item (VersionInfo) on the binaries, and
# Get-ItemPropertyValue on the registry key with the OS build. The stand-in models Hyper-V
# only; it does not shadow these cmdlets.
#
#   C:\...    a global PSDrive `C` over <state dir>/C (FileSystem provider), so a Windows
#             path the bench sends names a real file: C:\Windows\System32\drivers\x.sys is
#             <state dir>/C/Windows/System32/drivers/x.sys.
#   D:\...    the same over <state dir>/D: the host's data volume, where an inventory's
#             vmRoot (D:\bench\vms) is. The bench makes folders there with New-Item, the
#             tools (ControlTools.ps1) write traces there, and the bench reads them back
#             through .NET with the path resolved by the session (readHostFile): all three
#             see one file, as on a host. Ours: a host's D: is a real volume, not a PSDrive;
#             only the session's view of it is modelled. Disks and parents under D: stay a
#             registry (files.clixml), not files.
#   versions  a binary is a small PE file: a .NET assembly whose AssemblyFileVersion is the
#             file version, since FileVersionInfo reads no native version resource off
#             Windows but does read a managed one. Bytes after it (a build tag) make each
#             build's SHA-256 its own.
#   HKLM:\    a global PSDrive `HKLM` over <state dir>/HKLM; a key is a folder and its values
#             are files in it. Get-ItemPropertyValue reads an item's properties, which for a
#             folder are DirectoryInfo's: the two values the bench reads (CurrentBuildNumber,
#             UBR) are added to DirectoryInfo as script properties that read those files, so
#             every folder in a session with this module has them ($null where no such file).
#
# Ours, unverified on a real host: that `pnputil /add-driver X.inf /install` puts the
# package's X.sys in System32\drivers at once when no device is using the old one, and only
# at the next reboot (exit 3010) when one is (`Initialize-StandinHost -DriverInUse`).

$script:SystemDrivers = 'C:\Windows\System32\drivers'
$script:CurrentVersionKey = 'SOFTWARE\Microsoft\Windows NT\CurrentVersion'

# A Windows path (C:\a\b) as the real path under this host's state directory.
function script:Resolve-HostPath([string]$Path, [string]$Dir = (StateDir)) {
    if ($Path -notmatch '^([A-Za-z]):\\(.*)$') { throw [System.ArgumentException]::new("not a drive path: $Path") }
    [System.IO.Path]::Combine([string[]](@($Dir, $Matches[1].ToUpperInvariant()) + @($Matches[2] -split '\\' | Where-Object { $_ })))
}

# The C:, D: and HKLM: drives of this session, over the current state directory (made again
# when another directory is named: each directory is another host).
function script:Use-HostDrives {
    $dir = StateDir
    $fs = $ExecutionContext.SessionState.Provider.GetOne('FileSystem')
    foreach ($name in 'C', 'D', 'HKLM') {
        $root = [System.IO.Path]::Combine($dir, $name)
        [void][System.IO.Directory]::CreateDirectory($root)
        $have = $ExecutionContext.SessionState.Drive.GetAllForProvider('FileSystem') | Where-Object { $_.Name -eq $name }
        if ($have -and $have.Root.TrimEnd('/') -eq $root.TrimEnd('/')) { continue }
        if ($have) { $ExecutionContext.SessionState.Drive.Remove($name, $true, 'Global') }
        [void]$ExecutionContext.SessionState.Drive.New([System.Management.Automation.PSDriveInfo]::new($name, $fs, $root, "stand-in $name", $null), 'Global')
    }
}

# The registry values the bench reads, as properties of the key's folder (see the top).
foreach ($value in 'CurrentBuildNumber', 'UBR') {
    $read = [scriptblock]::Create("`$f = [System.IO.Path]::Combine(`$this.FullName, '$value'); if ([System.IO.File]::Exists(`$f)) { `$t = [System.IO.File]::ReadAllText(`$f).Trim(); if ('$value' -eq 'UBR') { [int]`$t } else { `$t } }")
    Update-TypeData -TypeName System.IO.DirectoryInfo -MemberType ScriptProperty -MemberName $value -Value $read -Force
}

# A PE file whose FileVersionInfo.FileVersion is $Version, followed by $Tag's bytes.
function script:New-VersionedBinary([string]$Path, [string]$Version, [string]$Tag) {
    $name = [System.Reflection.AssemblyName]::new((($Path -split '\\')[-1] -replace '\.[^.]*$', '' -replace '[^A-Za-z0-9_]', '_'))
    $ab = [System.Reflection.Emit.PersistedAssemblyBuilder]::new($name, [object].Assembly)
    $ctor = [System.Reflection.AssemblyFileVersionAttribute].GetConstructor([type[]]@([string]))
    $ab.SetCustomAttribute([System.Reflection.Emit.CustomAttributeBuilder]::new($ctor, [object[]]@($Version)))
    [void]$ab.DefineDynamicModule($name.Name)
    $ms = [System.IO.MemoryStream]::new()
    $ab.Save($ms)
    $tail = [System.Text.Encoding]::UTF8.GetBytes("`nstand-in build: $Tag`n")
    $ms.Write($tail, 0, $tail.Length)
    $real = Resolve-HostPath $Path
    [void][System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($real))
    [System.IO.File]::WriteAllBytes($real, $ms.ToArray())
}

# Called by Initialize-StandinHost: the host's own binaries at its build, and its registry key.
function script:Initialize-HostFiles([string]$OsBuild, [int]$Ubr) {
    Use-HostDrives
    $v = "10.0.$OsBuild.$Ubr"
    New-VersionedBinary 'C:\Windows\System32\vmms.exe' $v 'vmms'
    New-VersionedBinary "$script:SystemDrivers\vmbkmcl.sys" $v 'vmbkmcl'
    $key = [System.IO.Path]::Combine([string[]](@((StateDir), 'HKLM') + ($script:CurrentVersionKey -split '\\')))
    [void][System.IO.Directory]::CreateDirectory($key)
    [System.IO.File]::WriteAllText([System.IO.Path]::Combine($key, 'CurrentBuildNumber'), $OsBuild)
    [System.IO.File]::WriteAllText([System.IO.Path]::Combine($key, 'UBR'), [string]$Ubr)
}

# A staged driver binary (a test's build): a real file at $Path; $Build tells builds apart.
function Add-StandinFile {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path, [string]$Version = '1.0.0.0', [string]$Build = $Version)
    Use-HostDrives
    New-VersionedBinary $Path $Version $Build
}

# pnputil /add-driver ... /install: the package's binary lands in System32\drivers.
function script:Install-StandinDriverFile([string]$Inf) {
    $sys = Resolve-HostPath ($Inf -replace '\.inf$', '.sys')
    $target = Resolve-HostPath "$script:SystemDrivers\$(($sys -split '[\\/]')[-1])"
    if (-not [System.IO.File]::Exists($sys)) { return 0 }
    $c = Get-Config
    $hash = { param($f) [System.Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData([System.IO.File]::ReadAllBytes($f))) }
    $same = [System.IO.File]::Exists($target) -and (& $hash $target) -eq (& $hash $sys)
    if ($c.DriverInUse -and [System.IO.File]::Exists($target) -and -not $same) { return 3010 }
    [void][System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($target))
    [System.IO.File]::Copy($sys, $target, $true)
    0
}

# A session that imports the module with a state directory has the drives at once.
if ($env:BENCH_HYPERV_STATE) { Use-HostDrives }
