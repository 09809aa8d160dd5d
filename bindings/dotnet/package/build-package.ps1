# Builds the NuGet package of the .NET bindings on Windows (Windows PowerShell 5.1 or PowerShell 7):
# the native library with cargo, the C# with uniffi-bindgen-csharp, the package with dotnet pack.
#
#   .\bindings\dotnet\package\build-package.ps1                 # win-x64, into .\dist
#   .\bindings\dotnet\package\build-package.ps1 -Rid win-x86 -Target i686-pc-windows-msvc
#
# Needs: Rust (MSVC toolchain, plus the target when cross-building) and the .NET SDK 6 or newer.
param(
    [string] $Rid = 'win-x64',
    [string] $Target = '',
    [string] $OutDir = 'dist'
)
$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '..\..\..')
$package = Join-Path $root 'bindings\dotnet\package'
Push-Location $root
try {
    $targetArgs = @()
    $releaseDir = Join-Path $root 'target\release'
    if ($Target -ne '') {
        $targetArgs = @('--target', $Target)
        $releaseDir = Join-Path $root "target\$Target\release"
    }
    cargo build --release -p dotnet-fixture @targetArgs
    if ($LASTEXITCODE -ne 0) { throw 'cargo build of the native library failed' }
    cargo build --release -p uniffi-bindgen-csharp
    if ($LASTEXITCODE -ne 0) { throw 'cargo build of the generator failed' }

    $library = Join-Path $releaseDir 'dotnet_fixture.dll'
    $generated = Join-Path $package 'generated'
    $native = Join-Path $package "native\$Rid"
    Remove-Item -Recurse -Force $generated -ErrorAction SilentlyContinue
    New-Item -ItemType Directory -Force $generated, $native | Out-Null

    & (Join-Path $root 'target\release\uniffi-bindgen-csharp.exe') $library $generated
    if ($LASTEXITCODE -ne 0) { throw 'generating C# failed' }
    Copy-Item $library $native

    dotnet pack (Join-Path $package 'DotnetFixture.csproj') -c Release -o (Join-Path $root $OutDir)
    if ($LASTEXITCODE -ne 0) { throw 'dotnet pack failed' }
}
finally {
    Pop-Location
}
