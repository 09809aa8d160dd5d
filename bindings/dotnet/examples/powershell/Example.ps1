# How Windows PowerShell 5.1 and PowerShell 7 use uniffi-generated bindings, written against the
# fixture library (the exchange-sync facade will follow the same patterns).
#
#   .\Example.ps1 -AssemblyPath C:\path\to\lib\netstandard2.0\DotnetFixture.dll
#
# The native library (dotnet_fixture.dll) must be next to the assembly or under
# runtimes\win-x64\native\ below it: the bindings load it from there.
param(
    [Parameter(Mandatory = $true)]
    [string] $AssemblyPath
)
$ErrorActionPreference = 'Stop'

Add-Type -Path $AssemblyPath

# A PowerShell class implementing a callback interface must be parsed after Add-Type, so it lives
# in its own file, dot-sourced here.
. (Join-Path $PSScriptRoot 'ProgressListener.ps1')

$F = [DotnetFixture.DotnetFixtureFunctions]

# Rust objects hold native memory: Dispose them (try/finally is PowerShell's `using`).
$counter = [DotnetFixture.Counter]::Named('inbox', 40)
try {
    "{0} = {1}" -f $counter.Name(), $counter.Add(2)
    # Async methods return Task objects; GetAwaiter().GetResult() waits and unwraps exceptions.
    "after waiting: {0}" -f $counter.AddLater(1, 10, [System.Threading.CancellationToken]::None).GetAwaiter().GetResult()
}
finally {
    $counter.Dispose()
}

# Rust errors are exceptions with typed fields. PowerShell wraps .NET exceptions thrown by method
# calls in a MethodInvocationException: the Rust error is its InnerException.
try {
    $F::FailWithFields(0, $false) | Out-Null
}
catch {
    $rustError = $_.Exception.InnerException
    if ($rustError -is [DotnetFixture.FieldException+Conflict]) {
        "conflict on {0} in {1}" -f $rustError.Item, $rustError.Mailbox
    }
    else { throw }
}

# Callbacks that Rust makes on the calling thread can be PowerShell methods. (Callbacks from Rust
# threads cannot: PowerShell runs script only on its own runspace thread.)
$steps = $F::RunWithProgress([ConsoleProgressListener]::new(), 3)
"ran $steps steps"
