# A callback interface implemented in PowerShell; dot-sourced by Example.ps1 after Add-Type.
class ConsoleProgressListener : DotnetFixture.IProgressListener {
    [void] OnProgress([uint32] $done, [uint32] $total, [string] $message) {
        Write-Host ("  progress {0}/{1}: {2}" -f $done, $total, $message)
    }

    [bool] ShouldContinue() { return $true }

    [string] Transform([string] $value) { return $value.ToUpperInvariant() }
}
