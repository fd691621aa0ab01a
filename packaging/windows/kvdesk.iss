; Inno Setup 6 script for kvdesk (Windows x64). Build with packaging\windows\build.ps1, which first
; freezes the app with PyInstaller (dist\kvdesk\: kvdesk.exe console + kvdeskw.exe windowed, one
; shared _internal\ folder) and sets KVDESK_VERSION. By hand:
;   set KVDESK_VERSION=0.1.0
;   "%ProgramFiles(x86)%\Inno Setup 6\ISCC.exe" packaging\windows\kvdesk.iss
; Relative paths below are relative to this script's folder (Inno Setup's SourceDir default).
; Output: dist\kvdesk-<version>-windows-x64-setup.exe

#define AppVersion GetEnv("KVDESK_VERSION")
#if AppVersion == ""
  #error KVDESK_VERSION is not set: build with packaging\windows\build.ps1
#endif
#define AppExe "kvdeskw.exe"
#define PlanProgId "kvdesk.kvplan"

[Setup]
; AppId names the uninstall registry key and ties upgrades together: never change it.
AppId={{2BC0C431-25DA-4772-8D96-6C67B346BCE4}
AppName=kvdesk
AppVersion={#AppVersion}
AppPublisher=kvdesk developers
AppComments=VRAM planner for running LLMs on your own GPUs
; numeric only (up to four dot-separated numbers), as kvdesk's X.Y.Z versions are
VersionInfoVersion={#AppVersion}
; Per-user install by default (no UAC prompt, {autopf} = %LOCALAPPDATA%\Programs, HKA = HKCU);
; the user may choose an all-users install in a dialog, or with /ALLUSERS on the command line.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\kvdesk
; the Start-menu shortcut goes straight into {autoprograms}: no folder to pick
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; tell Explorer to refresh file associations after install and uninstall
ChangesAssociations=yes
SetupIconFile=..\..\resources\icons\kvdesk.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName=kvdesk {#AppVersion}
OutputDir=..\..\dist
OutputBaseFilename=kvdesk-{#AppVersion}-windows-x64-setup
Compression=lzma2
SolidCompression=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; an upgrade replaces the whole bundle: no library of the previous version may linger
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "..\..\dist\kvdesk\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
; Start-menu entry: the windowed executable (no console window)
Name: "{autoprograms}\kvdesk"; Filename: "{app}\{#AppExe}"; Comment: "VRAM planner for LLMs"
Name: "{autodesktop}\kvdesk"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; .kvplan files open in kvdesk (Inno Setup's own file-association pattern, Examples\Example3.iss):
; the extension lists our ProgID under OpenWithProgids and names it as default, and the ProgID says
; how to open and draw the file. HKA is HKCU for a per-user install, HKLM for an all-users one.
Root: HKA; Subkey: "Software\Classes\.kvplan\OpenWithProgids"; ValueType: string; ValueName: "{#PlanProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.kvplan"; ValueType: string; ValueName: ""; ValueData: "{#PlanProgId}"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.kvplan"; ValueType: string; ValueName: "Content Type"; ValueData: "application/x-kvplan+json"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\{#PlanProgId}"; ValueType: string; ValueName: ""; ValueData: "kvdesk plan"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\{#PlanProgId}\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\{#PlanProgId}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".kvplan"; ValueData: ""

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,kvdesk}"; Flags: nowait postinstall skipifsilent
