// The quickstart from C#: one sync group on the public folder `Company Contacts` with two
// editors (two-way) and two readers (one-way), kept in sync in real time, and a short story:
//
//   1. an edit on the public folder reaches all four members;
//   2. an editor's edit (as made from a phone) reaches the public folder and the others;
//   3. a reader's edit is reverted;
//   4. two editors edit the same contact: merged field by field, with a conflict record;
//   5. a deleted contact disappears everywhere.
//
// By default it starts the embedded EWS emulator (demo tenant contoso.test). To point it at a
// real server, set EXCHANGE_SYNC_URL (the EWS URL), EXCHANGE_SYNC_USER and EXCHANGE_SYNC_PASSWORD
// (an account with the ApplicationImpersonation role and owner rights on the public folder),
// EXCHANGE_SYNC_PUBLIC_FOLDER (default `Company Contacts`), and EXCHANGE_SYNC_EDITORS and
// EXCHANGE_SYNC_READERS (two comma-separated mailbox addresses each).
//
//   csc /r:ExchangeSync.dll Quickstart.cs      (or mcs -langversion:7.2 on Mono)
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using ExchangeSync;
using F = ExchangeSync.ExchangeSyncFunctions;

namespace ExchangeSyncQuickstart
{
    public static class Program
    {
        private const string Target = "contacts/Company Contacts";

        public static int Main()
        {
            Stopwatch started = Stopwatch.StartNew();
            string url = Environment.GetEnvironmentVariable("EXCHANGE_SYNC_URL");
            TestEmulator emulator = null;
            ConnectionSettings connection;
            string publicFolder = Environment.GetEnvironmentVariable("EXCHANGE_SYNC_PUBLIC_FOLDER") ?? "Company Contacts";
            string[] editors, readers;
            if (string.IsNullOrEmpty(url))
            {
                emulator = new TestEmulator(25);
                Console.WriteLine("started the EWS emulator at " + emulator.Url() + " (tenant contoso.test)");
                connection = emulator.Connection();
                editors = new[] { "alice@contoso.test", "bob@contoso.test" };
                readers = new[] { "carol@contoso.test", "dave@contoso.test" };
            }
            else
            {
                connection = new ConnectionSettings("exchange", url, AuthScheme.Ntlm,
                    username: Required("EXCHANGE_SYNC_USER"), password: new SecretSource.Env("EXCHANGE_SYNC_PASSWORD"));
                editors = Pair("EXCHANGE_SYNC_EDITORS");
                readers = Pair("EXCHANGE_SYNC_READERS");
            }

            var members = editors.Select(m => new MemberSettings(m, SyncDirection.TwoWay))
                .Concat(readers.Select(m => new MemberSettings(m, SyncDirection.OneWay))).ToList();
            var group = new GroupSettings("company-contacts", "exchange", publicFolder, members, Target,
                matchKey: new List<string> { "email1.address" });
            using (var config = new Configuration(new List<ConnectionSettings> { connection }, new List<GroupSettings> { group },
                new ServiceOptions("memory", debounceMs: 50, pollIntervalSecs: 2)))
            using (var service = new SyncService(config))
            {
                Console.WriteLine("\n== initial sync: " + publicFolder + " -> 2 editors (two-way) and 2 readers (one-way)");
                var events = new FinishedPasses();
                using (service.Subscribe(events))
                {
                    service.Start();
                    GroupReport first = events.Next();
                    Console.WriteLine("   " + first.Text);
                    if (first.Outcome != PassOutcome.Synced) return 1;
                    Story(service, publicFolder, editors, readers);
                    service.Stop();
                }
            }
            if (emulator != null) emulator.Dispose();
            Console.WriteLine("\ndone in " + started.Elapsed.TotalSeconds.ToString("0.0") + " s");
            return 0;
        }

        private static void Story(SyncService service, string publicFolder, string[] editors, string[] readers)
        {
            Folder hub = service.PublicFolder(publicFolder);
            Folder[] members = editors.Concat(readers).Select(m => service.MailboxFolder(m, Target, true)).ToArray();
            Folder alice = members[0], bob = members[1], carol = members[2];
            Folder[] everyone = new[] { hub }.Concat(members).ToArray();
            List<string> all = hub.Items().Select(i => F.ContactName(i.Item)).ToList();
            List<string> names = all.Where(n => n.Length > 0 && all.Count(m => m == n) == 1).OrderBy(n => n, StringComparer.Ordinal).ToList();
            if (names.Count < 5) throw new InvalidOperationException("the public folder needs five contacts with distinct names");

            Console.WriteLine("\n== 1. someone edits " + names[0] + " in the public folder");
            Stopwatch t = Stopwatch.StartNew();
            hub.Update(IdIn(hub, names[0]), Set("job_title", "Head of Sales"));
            Until(t, "the job title in every mailbox", () => AllHave(members, names[0], "job_title", "Head of Sales"));
            Console.WriteLine("   " + Ms(t) + " the new job title is in all four mailboxes");

            Console.WriteLine("\n== 2. " + editors[0] + " (editor) changes " + names[1] + "'s mobile number on a phone");
            t = Stopwatch.StartNew();
            alice.Update(IdIn(alice, names[1]), Set("phone.mobile", "+1 555 0100"));
            Until(t, "the mobile number everywhere", () => AllHave(everyone, names[1], "phone.mobile", "+1 555 0100"));
            Console.WriteLine("   " + Ms(t) + " the public folder and the three other mailboxes have it");

            Console.WriteLine("\n== 3. " + readers[0] + " (reader) changes " + names[2] + "'s company");
            string original = Value(hub, names[2], "company");
            t = Stopwatch.StartNew();
            carol.Update(IdIn(carol, names[2]), Set("company", "My own company"));
            // Update returned, so the copy holds the reader's edit until the service reverts it.
            Until(t, "the revert", () => AllHave(new[] { carol }, names[2], "company", original));
            Console.WriteLine("   " + Ms(t) + " reverted: the reader's copy says \"" + original + "\" again, like the public folder");

            Console.WriteLine("\n== 4. both editors change " + names[3] + " at the same time");
            t = Stopwatch.StartNew();
            ItemEdit a = Set("phone.mobile", "+1 555 0001");
            a.Set["department"] = new FieldValue.Text("Field sales");
            ItemEdit b = Set("phone.mobile", "+1 555 0002");
            b.Set["office"] = new FieldValue.Text("Building 7");
            string aliceId = IdIn(alice, names[3]), bobId = IdIn(bob, names[3]);
            System.Threading.Tasks.Task.WaitAll(alice.UpdateAsync(aliceId, a), bob.UpdateAsync(bobId, b));
            Until(t, "the merge", () => AllHave(everyone, names[3], "department", "Field sales")
                && AllHave(everyone, names[3], "office", "Building 7") && service.Conflicts().Count > 0);
            string kept = Value(hub, names[3], "phone.mobile");
            Until(t, "the same mobile number everywhere", () => AllHave(everyone, names[3], "phone.mobile", kept));
            Console.WriteLine("   " + Ms(t) + " merged field by field: department from one, office from the other, mobile \"" + kept + "\" kept");
            foreach (ConflictEntry entry in service.Conflicts()) Console.WriteLine("   conflict log: " + entry.Text);

            Console.WriteLine("\n== 5. " + editors[1] + " (editor) deletes " + names[4]);
            t = Stopwatch.StartNew();
            bob.Delete(IdIn(bob, names[4]));
            Until(t, "the deletion everywhere", () => everyone.All(f => Find(f, names[4]) == null));
            Console.WriteLine("   " + Ms(t) + " gone from the public folder and every mailbox");

            foreach (Folder f in everyone) f.Dispose();
        }

        /// <summary>Hands the reports of finished passes over to the story's thread.</summary>
        private sealed class FinishedPasses : IProgressListener
        {
            private readonly System.Collections.Concurrent.BlockingCollection<GroupReport> reports =
                new System.Collections.Concurrent.BlockingCollection<GroupReport>();

            public void OnEvent(ProgressEvent e)
            {
                var finished = e as ProgressEvent.PassFinished;
                if (finished != null) reports.Add(finished.Report);
            }

            public GroupReport Next()
            {
                GroupReport report;
                if (!reports.TryTake(out report, TimeSpan.FromSeconds(60))) throw new TimeoutException("no pass finished");
                return report;
            }
        }

        private static string Required(string name)
        {
            string value = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(value)) throw new InvalidOperationException(name + " must be set with EXCHANGE_SYNC_URL");
            return value;
        }

        private static string[] Pair(string name)
        {
            string[] items = Required(name).Split(',').Select(s => s.Trim()).Where(s => s.Length > 0).ToArray();
            if (items.Length != 2) throw new InvalidOperationException(name + " needs two addresses");
            return items;
        }

        private static ItemEdit Set(string field, string value)
        {
            return F.SetTextFields(new Dictionary<string, string> { { field, value } });
        }

        private static FolderItem Find(Folder folder, string name)
        {
            return folder.Items().FirstOrDefault(i => F.ContactName(i.Item) == name);
        }

        private static string IdIn(Folder folder, string name)
        {
            FolderItem item = Find(folder, name);
            if (item == null) throw new InvalidOperationException(name + " not found in " + folder.Description());
            return item.Id;
        }

        private static string Value(Folder folder, string name, string field)
        {
            FolderItem item = Find(folder, name);
            return item == null ? null : F.TextField(item.Item, field);
        }

        private static bool AllHave(Folder[] folders, string name, string field, string expected)
        {
            return folders.All(f => { FolderItem i = Find(f, name); return i != null && F.TextField(i.Item, field) == expected; });
        }

        private static void Until(Stopwatch since, string what, Func<bool> check)
        {
            while (!check())
            {
                if (since.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("gave up waiting: " + what);
                Thread.Sleep(25);
            }
        }

        private static string Ms(Stopwatch t)
        {
            return t.ElapsedMilliseconds.ToString().PadLeft(5) + " ms";
        }
    }
}
