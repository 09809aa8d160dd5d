# The quickstart from Windows PowerShell 5.1 or PowerShell 7: one sync group on the public folder
# `Company Contacts` with two editors (two-way) and two readers (one-way), and the short story:
# an edit on the public folder reaches everyone, an editor's edit reaches the public folder and
# the others, a reader's edit is reverted, two editors' edits are merged with a conflict record,
# and a deletion propagates. Each step is synced with one pass (RunOnceWithProgress), whose
# progress events are printed by a PowerShell class on this thread.
#
#   .\Quickstart.ps1 -AssemblyPath C:\tools\exsync\lib\netstandard2.0\ExchangeSync.dll
#
# Without EXCHANGE_SYNC_URL it starts the embedded EWS emulator (demo tenant contoso.test). For a
# real server set EXCHANGE_SYNC_URL, EXCHANGE_SYNC_USER, EXCHANGE_SYNC_PASSWORD (read by the
# library, never by this script), EXCHANGE_SYNC_PUBLIC_FOLDER (default `Company Contacts`),
# EXCHANGE_SYNC_EDITORS and EXCHANGE_SYNC_READERS (two comma-separated addresses each).
param(
    [Parameter(Mandatory = $true)]
    [string] $AssemblyPath
)
$ErrorActionPreference = 'Stop'

Add-Type -Path $AssemblyPath
# The listener class derives from a type of the assembly: it is parsed after Add-Type.
. (Join-Path $PSScriptRoot 'QuickstartListener.ps1')

$F = [ExchangeSync.ExchangeSyncFunctions]
$target = 'contacts/Company Contacts'
$publicFolder = $env:EXCHANGE_SYNC_PUBLIC_FOLDER
if (-not $publicFolder) { $publicFolder = 'Company Contacts' }

$emulator = $null
if ($env:EXCHANGE_SYNC_URL) {
    $connection = New-Object ExchangeSync.ConnectionSettings('exchange', $env:EXCHANGE_SYNC_URL,
        [ExchangeSync.AuthScheme]::Ntlm, $env:EXCHANGE_SYNC_USER,
        (New-Object 'ExchangeSync.SecretSource+Env' 'EXCHANGE_SYNC_PASSWORD'), $true, $null, $false)
    $editors = @($env:EXCHANGE_SYNC_EDITORS -split ',' | ForEach-Object { $_.Trim() })
    $readers = @($env:EXCHANGE_SYNC_READERS -split ',' | ForEach-Object { $_.Trim() })
}
else {
    $emulator = New-Object ExchangeSync.TestEmulator([uint32] 25)
    Write-Host ("started the EWS emulator at {0}" -f $emulator.Url())
    $connection = $emulator.Connection('exchange')
    $editors = @('alice@contoso.test', 'bob@contoso.test')
    $readers = @('carol@contoso.test', 'dave@contoso.test')
}

$members = New-Object 'System.Collections.Generic.List[ExchangeSync.MemberSettings]'
foreach ($m in $editors) { $members.Add((New-Object ExchangeSync.MemberSettings($m, [ExchangeSync.SyncDirection]::TwoWay, $null))) }
foreach ($m in $readers) { $members.Add((New-Object ExchangeSync.MemberSettings($m, [ExchangeSync.SyncDirection]::OneWay, $null))) }
$matchKey = New-Object 'System.Collections.Generic.List[string]'
$matchKey.Add('email1.address')
$group = New-Object ExchangeSync.GroupSettings('company-contacts', 'exchange', $publicFolder, $members, $target,
    $matchKey, $null, 0.25, [uint32] 10)
$connections = New-Object 'System.Collections.Generic.List[ExchangeSync.ConnectionSettings]'
$connections.Add($connection)
$groups = New-Object 'System.Collections.Generic.List[ExchangeSync.GroupSettings]'
$groups.Add($group)
$options = New-Object ExchangeSync.ServiceOptions('memory', [uint64] 200, [uint64] 60, [uint32] 5, [uint64] 500, [uint64] 10)
$runOptions = New-Object ExchangeSync.RunOptions($null, $false)
$listener = [ConsoleProgress]::new()

function Set-Fields([hashtable] $fields) {
    $d = New-Object 'System.Collections.Generic.Dictionary[string,string]'
    foreach ($k in $fields.Keys) { $d[$k] = $fields[$k] }
    return $F::SetTextFields($d)
}
function Find-Contact($folder, [string] $name) {
    foreach ($i in $folder.Items()) { if ($F::ContactName($i.Item) -eq $name) { return $i } }
    return $null
}
function Get-Field($folder, [string] $name, [string] $field) {
    $i = Find-Contact $folder $name
    if ($null -eq $i) { return $null }
    return $F::TextField($i.Item, $field)
}
function Sync-Once {
    # Rust exceptions arrive wrapped in a MethodInvocationException: the InnerException is the
    # ExchangeSync exception (ExchangeSyncException+Auth, +NotFound, ...).
    $report = $service.RunOnceWithProgress($runOptions, $listener)
    $F::ThrowIfFailed($report)
}

$config = $null
$service = $null
try {
    $config = New-Object ExchangeSync.Configuration($connections, $groups, $options)
    $service = New-Object ExchangeSync.SyncService($config)

    Write-Host "`n== initial sync: $publicFolder -> 2 editors (two-way) and 2 readers (one-way)"
    Sync-Once
    $hub = $service.PublicFolder($publicFolder, $null)
    $folders = @($editors + $readers | ForEach-Object { $service.MailboxFolder($_, $target, $true, $null) })
    $alice = $folders[0]; $bob = $folders[1]; $carol = $folders[2]
    $names = @($hub.Items() | ForEach-Object { $F::ContactName($_.Item) } | Group-Object |
        Where-Object { $_.Count -eq 1 -and $_.Name } | ForEach-Object { $_.Name } | Sort-Object)

    Write-Host "`n== 1. someone edits $($names[0]) in the public folder"
    $hub.Update((Find-Contact $hub $names[0]).Id, (Set-Fields @{ 'job_title' = 'Head of Sales' }))
    Sync-Once
    foreach ($f in $folders) { Write-Host ("   {0}: {1}" -f $f.Description(), (Get-Field $f $names[0] 'job_title')) }

    Write-Host "`n== 2. $($editors[0]) (editor) changes $($names[1])'s mobile number"
    $alice.Update((Find-Contact $alice $names[1]).Id, (Set-Fields @{ 'phone.mobile' = '+1 555 0100' }))
    Sync-Once
    Write-Host ("   public folder: {0}" -f (Get-Field $hub $names[1] 'phone.mobile'))

    Write-Host "`n== 3. $($readers[0]) (reader) changes $($names[2])'s company"
    $carol.Update((Find-Contact $carol $names[2]).Id, (Set-Fields @{ 'company' = 'My own company' }))
    Sync-Once
    Write-Host ("   reverted: {0}" -f (Get-Field $carol $names[2] 'company'))

    Write-Host "`n== 4. both editors change $($names[3])"
    $alice.Update((Find-Contact $alice $names[3]).Id, (Set-Fields @{ 'phone.mobile' = '+1 555 0001'; 'department' = 'Field sales' }))
    $bob.Update((Find-Contact $bob $names[3]).Id, (Set-Fields @{ 'phone.mobile' = '+1 555 0002'; 'office' = 'Building 7' }))
    Sync-Once
    Write-Host ("   department {0}, office {1}, mobile {2}" -f (Get-Field $hub $names[3] 'department'),
        (Get-Field $hub $names[3] 'office'), (Get-Field $hub $names[3] 'phone.mobile'))
    foreach ($entry in $service.Conflicts($null)) { Write-Host "   conflict log: $($entry.Text)" }

    Write-Host "`n== 5. $($editors[1]) (editor) deletes $($names[4])"
    $bob.Delete((Find-Contact $bob $names[4]).Id)
    Sync-Once
    $left = @($folders + $hub | Where-Object { $null -ne (Find-Contact $_ $names[4]) }).Count
    Write-Host "   folders still holding it: $left"

    # Async methods return tasks; GetAwaiter().GetResult() waits and unwraps exceptions.
    $status = $service.StatusAsync([System.Threading.CancellationToken]::None).GetAwaiter().GetResult()
    foreach ($m in $status[0].Members) { Write-Host ("   {0,-40} {1,-8} copies {2}" -f $m.Folder, $m.Direction, $m.Copies) }
}
catch [System.Management.Automation.MethodInvocationException] {
    $e = $_.Exception.InnerException
    if ($e -is [ExchangeSync.ExchangeSyncException]) { Write-Host ("exchange-sync failed: {0}" -f $e.Message) -ForegroundColor Red }
    throw
}
finally {
    # Rust objects hold native resources: dispose them (PowerShell has no `using` statement).
    if ($null -ne $service) { $service.Dispose() }
    if ($null -ne $config) { $config.Dispose() }
    if ($null -ne $emulator) { $emulator.Dispose() }
}
