// How C# code uses uniffi-generated bindings: objects in `using`, Rust errors as exceptions,
// a callback interface, and async calls with cancellation. Written against the fixture library
// (the exchange-sync facade will follow the same patterns); test.sh compiles and runs it.
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using DotnetFixture;

namespace Example
{
    sealed class ConsoleProgress : IProgressListener
    {
        public void OnProgress(uint done, uint total, string message)
        {
            Console.WriteLine("  progress " + done + "/" + total + ": " + message);
        }

        public bool ShouldContinue() { return true; }

        public string Transform(string value) { return value.ToUpperInvariant(); }
    }

    static class Program
    {
        static async Task<int> RunAsync()
        {
            // Rust objects are IDisposable: `using` frees them deterministically.
            using (Counter counter = Counter.Named("inbox", 40))
            {
                Console.WriteLine(counter.Name() + " = " + counter.Add(2));

                // Async Rust functions return Task / Task<T> and take a CancellationToken.
                long later = await counter.AddLater(1, 10);
                Console.WriteLine("after await: " + later);
            }

            // Rust errors are exceptions with typed fields.
            try
            {
                DotnetFixtureFunctions.FailWithFields(0, false);
            }
            catch (FieldException.Conflict e)
            {
                Console.WriteLine("conflict on " + e.Item + " in " + e.Mailbox);
            }

            // Callback interfaces are C# interfaces.
            uint steps = DotnetFixtureFunctions.RunWithProgress(new ConsoleProgress(), 3);
            Console.WriteLine("ran " + steps + " steps");

            // Records are classes with value equality.
            Contact c = new Contact("Ann", "ann@example.com", 41, new List<string> { "team" },
                new Dictionary<string, string>(), new byte[0], 1.0, true, null, Direction.TwoWay);
            Console.WriteLine(DotnetFixtureFunctions.EchoContact(c));

            using (CancellationTokenSource cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(20)))
            {
                try
                {
                    await DotnetFixtureFunctions.AsyncWaitMs(60000, cts.Token);
                }
                catch (OperationCanceledException)
                {
                    Console.WriteLine("long call cancelled");
                }
            }
            return 0;
        }

        static int Main()
        {
            // A console Main of C# 7.2 cannot be async; block on the task once, at the top.
            return RunAsync().GetAwaiter().GetResult();
        }
    }
}
