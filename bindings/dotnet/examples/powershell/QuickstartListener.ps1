# Progress events of RunOnceWithProgress, printed as they come (on the script's own thread, so a
# PowerShell class can receive them). Dot-sourced by Quickstart.ps1 after Add-Type.
class ConsoleProgress : ExchangeSync.IProgressListener {
    [void] OnEvent([ExchangeSync.ProgressEvent] $e) {
        if ($e -is [ExchangeSync.ProgressEvent+PassFinished]) {
            Write-Host ("   {0}" -f $e.Report.Text)
        }
    }
}
