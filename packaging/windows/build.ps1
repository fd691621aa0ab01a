# Build the kvdesk Windows installer: PyInstaller bundle, a --smoke start of it, then Inno Setup.
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1 [-Python python] [-Iscc path\to\ISCC.exe]
#
# Needs: Python 3.11+ with kvdesk and PyInstaller (python -m pip install -e .[packaging]) and
# Inno Setup 6 (https://jrsoftware.org/isinfo.php, or: choco install innosetup).
# Output: dist\kvdesk\ (the bundle) and dist\kvdesk-<version>-windows-x64-setup.exe
[CmdletBinding()]
param(
    [string]$Python = "python",
    [string]$Iscc = ""
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
Push-Location $Root
try {
    # 1. freeze: dist\kvdesk\kvdesk.exe (console) and kvdeskw.exe (windowed)
    & $Python -m PyInstaller --noconfirm --clean --log-level WARN `
        --distpath dist --workpath build\pyinstaller packaging\kvdesk.spec
    if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed ($LASTEXITCODE)" }

    # 2. the frozen app must start: open the main window offscreen, paint once, exit 0
    $env:QT_QPA_PLATFORM = "offscreen"
    try {
        & dist\kvdesk\kvdesk.exe --smoke
        if ($LASTEXITCODE -ne 0) { throw "bundled kvdesk.exe --smoke failed ($LASTEXITCODE)" }
    } finally {
        Remove-Item Env:QT_QPA_PLATFORM -ErrorAction SilentlyContinue
    }

    # 3. installer: kvdesk.iss reads the version from KVDESK_VERSION
    $Version = (& $Python -c "import sys; sys.path.insert(0, 'packaging'); import app_metadata; print(app_metadata.version())").Trim()
    if ($LASTEXITCODE -ne 0 -or -not $Version) { throw "could not read the kvdesk version" }
    if (-not $Iscc) {
        $found = Get-Command ISCC.exe -ErrorAction SilentlyContinue
        if ($found) { $Iscc = $found.Source }
        else { $Iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
    }
    if (-not (Test-Path $Iscc)) { throw "ISCC.exe not found: install Inno Setup 6 or pass -Iscc" }
    $env:KVDESK_VERSION = $Version
    & $Iscc packaging\windows\kvdesk.iss
    if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed ($LASTEXITCODE)" }
    Get-Item "dist\kvdesk-$Version-windows-x64-setup.exe"
} finally {
    Pop-Location
}
