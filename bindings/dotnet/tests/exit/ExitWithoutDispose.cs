// Returns from Main with the runtime's threads busy and every object left undisposed: an
// emulator serving, a service running in real time, a subscription delivering events, and
// completed async calls whose continuations ran on runtime threads. The process must exit by
// itself (the bindings' AppDomain.ProcessExit handler shuts the runtime down); test.sh runs it
// under `timeout` so that a hang fails.
using System;
using System.Collections.Generic;
using System.Threading;
using ExchangeSync;

namespace ExitCheck
{
    internal sealed class Counter : IProgressListener
    {
        public int Events;
        public void OnEvent(ProgressEvent e) { Interlocked.Increment(ref Events); }
    }

    public static class Program
    {
        public static int Main()
        {
            var emulator = new TestEmulator(5);
            var config = new Configuration(
                new List<ConnectionSettings> { emulator.Connection() },
                new List<GroupSettings> { new GroupSettings("g", "exchange", "Company Contacts", new List<MemberSettings> { new MemberSettings("alice@contoso.test", SyncDirection.TwoWay) }, "contacts/Company Contacts") },
                new ServiceOptions("memory"));
            var service = SyncService.ConnectAsync(config).GetAwaiter().GetResult();
            RunReport report = service.RunOnceAsync(new RunOptions()).GetAwaiter().GetResult();
            int items = service.PublicFolder("Company Contacts").ItemsAsync().GetAwaiter().GetResult().Count;
            var counter = new Counter();
            service.Subscribe(counter);
            service.Start();
            Console.WriteLine("synced " + report.Groups[0].Totals.Created + " copies of " + items + " contacts; returning from Main with the service running");
            return report.IsClean && items == 5 ? 0 : 1;
        }
    }
}
