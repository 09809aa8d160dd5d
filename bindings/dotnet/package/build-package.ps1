# Builds a NuGet package of the .NET bindings on Windows (Windows PowerShell 5.1 or PowerShell 7):
# the native library with cargo, the C# with uniffi-bindgen-csharp, the package with dotnet pack.
#
#   .\bindings\dotnet\package\build-package.ps1                  # ExchangeSync, win-x64, into .\dist
#   .\bindings\dotnet\package\build-package.ps1 -Rid win-x86 -Target i686-pc-windows-msvc
#   .\bindings\dotnet\package\build-package.ps1 -Package fixture # the test fixture's package
#
# Needs: Rust (MSVC toolchain, plus the target when cross-building) and the .NET SDK 6 or newer.
param(
    [ValidateSet('exchange-sync', 'fixture')]
    [string] $Package = 'exchange-sync',
    [string] $Rid = 'win-x64',
    [string] $Target = '',
    [string] $OutDir = 'dist'
)
$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '..\..\..')
if ($Package -eq 'exchange-sync') {
    $crate = 'exchange-sync-dotnet'
    $libraryName = 'exchange_sync_dotnet.dll'
    $project = Join-Path $PSScriptRoot 'ExchangeSync'
    $csproj = Join-Path $project 'ExchangeSync.csproj'
    $generatorArgs = @('--config', (Join-Path $root 'bindings\dotnet\facade\csharp.toml'))
}
else {
    $crate = 'dotnet-fixture'
    $libraryName = 'dotnet_fixture.dll'
    $project = $PSScriptRoot
    $csproj = Join-Path $project 'DotnetFixture.csproj'
    $generatorArgs = @()
}
Push-Location $root
try {
    $targetArgs = @()
    $releaseDir = Join-Path $root 'target\release'
    if ($Target -ne '') {
        $targetArgs = @('--target', $Target)
        $releaseDir = Join-Path $root "target\$Target\release"
    }
    cargo build --release -p $crate @targetArgs
    if ($LASTEXITCODE -ne 0) { throw 'cargo build of the native library failed' }
    cargo build --release -p uniffi-bindgen-csharp
    if ($LASTEXITCODE -ne 0) { throw 'cargo build of the generator failed' }

    $library = Join-Path $releaseDir $libraryName
    $generated = Join-Path $project 'generated'
    $native = Join-Path $project "native\$Rid"
    Remove-Item -Recurse -Force $generated -ErrorAction SilentlyContinue
    New-Item -ItemType Directory -Force $generated, $native | Out-Null

    & (Join-Path $root 'target\release\uniffi-bindgen-csharp.exe') @generatorArgs $library $generated
    if ($LASTEXITCODE -ne 0) { throw 'generating C# failed' }
    Copy-Item $library $native

    dotnet pack $csproj -c Release -o (Join-Path $root $OutDir)
    if ($LASTEXITCODE -ne 0) { throw 'dotnet pack failed' }
}
finally {
    Pop-Location
}
