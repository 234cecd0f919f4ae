# Files with content, as far as the bench looks at them: a driver binary's SHA-256 and file
# version, and the registry values that give the OS build. Get-FileHash, Get-Item and
# Get-ItemPropertyValue here shadow the real cmdlets in a session that imports the module,
# and answer from the stand-in's file registry (files.clixml) and config.
#
# Ours, unverified on a real host: that `pnputil /add-driver X.inf /install` puts the
# package's X.sys in System32\drivers at once when no device is using the old one, and only
# at the next reboot (exit 3010) when one is (`Initialize-StandinHost -DriverInUse`).

$script:SystemDrivers = 'C:\Windows\System32\drivers'

# A registered file, else one of the host's own binaries (versions of the host's build),
# which are not in the registry so that tests see only the files the bench made.
function script:Find-StandinFile([string]$Path) {
    $f = (Get-Files)[$Path]
    if ($null -ne $f) { return $f }
    $c = Get-Config
    $own = @{ 'C:\Windows\System32\vmms.exe' = 'A'; 'C:\Windows\System32\drivers\vmbkmcl.sys' = 'B' }
    if ($own.ContainsKey($Path)) { return @{ Kind = 'File'; Size = [long]1MB; Parent = $null; Sha256 = ($own[$Path] * 64); Version = "10.0.$($c.OsBuild).$($c.Ubr)" } }
    $null
}

function Add-StandinFile {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)][string]$Sha256, [string]$Version = '1.0.0.0')
    $files = Get-Files
    $files[$Path] = @{ Kind = 'File'; Size = [long]4096; Parent = $null; Sha256 = $Sha256.ToUpperInvariant(); Version = $Version }
    Save-Files $files
}

function Get-FileHash {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string[]]$LiteralPath, [ValidateSet('SHA1', 'SHA256', 'SHA384', 'SHA512', 'MD5')][string]$Algorithm = 'SHA256')
    foreach ($p in $LiteralPath) {
        $f = Find-StandinFile $p
        if ($null -eq $f -or -not $f.Sha256) {
            $PSCmdlet.WriteError((New-ErrorRecord "Cannot find path '$p' because it does not exist." 'FileNotFound,Microsoft.PowerShell.Commands.GetFileHashCommand' 'ObjectNotFound' $p 'System.IO.FileNotFoundException'))
            continue
        }
        [pscustomobject]@{ Algorithm = $Algorithm; Hash = $f.Sha256; Path = $p }
    }
}

function Get-Item {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string[]]$LiteralPath)
    foreach ($p in $LiteralPath) {
        $f = Find-StandinFile $p
        if ($null -eq $f) {
            $PSCmdlet.WriteError((New-ErrorRecord "Cannot find path '$p' because it does not exist." 'PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand' 'ObjectNotFound' $p 'System.Management.Automation.ItemNotFoundException'))
            continue
        }
        $v = if ($f.Version) { "$($f.Version) (WinBuild.160101.0800)" } else { $null }
        [pscustomobject]@{ FullName = $p; Name = ($p -split '[\\/]')[-1]; Length = $f.Size; VersionInfo = [pscustomobject]@{ FileName = $p; FileVersion = $v; ProductVersion = $f.Version } }
    }
}

# Only the key the bench reads: the OS build and its update revision.
function Get-ItemPropertyValue {
    [CmdletBinding()]
    param([Parameter(Mandatory)][string[]]$LiteralPath, [Parameter(Mandatory)][string[]]$Name)
    $c = Get-Config
    if ($LiteralPath[0] -ne 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion') {
        $PSCmdlet.ThrowTerminatingError((New-ErrorRecord "Cannot find path '$($LiteralPath[0])' because it does not exist." 'PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyValueCommand' 'ObjectNotFound' $LiteralPath[0]))
    }
    foreach ($n in $Name) {
        switch ($n) {
            'CurrentBuildNumber' { [string]$c.OsBuild }
            'UBR' { [int]$c.Ubr }
            default { $PSCmdlet.WriteError((New-ErrorRecord "Property $n does not exist at path HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion." 'System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.GetItemPropertyValueCommand' 'InvalidArgument' $n)) }
        }
    }
}

# pnputil /add-driver ... /install: the package's binary lands in System32\drivers.
function script:Install-StandinDriverFile([string]$Inf) {
    $files = Get-Files
    $sys = ($Inf -replace '\.inf$', '.sys')
    $target = "$script:SystemDrivers\$(($sys -split '[\\/]')[-1])"
    if (-not $files.ContainsKey($sys)) { return 0 }
    $c = Get-Config
    if ($c.DriverInUse -and $files.ContainsKey($target) -and $files[$target].Sha256 -ne $files[$sys].Sha256) { return 3010 }
    $files[$target] = $files[$sys].Clone()
    Save-Files $files
    0
}
