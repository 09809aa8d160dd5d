// The exchange-sync service from C#, against the EWS emulator in process: the sync scenarios of
// the service (one-way readers, two-way editors, conflicts, deletions, the mass-delete guard),
// exceptions for bad input, progress callbacks, async calls, disposal, logging and a leak check.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ExchangeSync;
using FixtureTests;
using F = ExchangeSync.ExchangeSyncFunctions;

namespace ServiceTests
{
    /// <summary>An emulator, a service over it and the five folders of the quickstart's group.</summary>
    internal sealed class Scene : IDisposable
    {
        public const string Hub = "Company Contacts";
        public const string Target = "contacts/Company Contacts";
        public const string Alice = "alice@contoso.test", Bob = "bob@contoso.test", Carol = "carol@contoso.test", Dave = "dave@contoso.test";

        public readonly TestEmulator Emulator;
        public readonly Configuration Config;
        public readonly SyncService Service;
        private readonly List<IDisposable> owned = new List<IDisposable>();

        public Scene(params MemberSettings[] members)
        {
            Emulator = new TestEmulator(25);
            Config = new Configuration(
                new List<ConnectionSettings> { Emulator.Connection() },
                new List<GroupSettings> { new GroupSettings("contacts", "exchange", Hub, members.ToList(), Target) },
                new ServiceOptions("memory", debounceMs: 20, pollIntervalSecs: 1, retryMaxAttempts: 2, retryInitialDelayMs: 50, shutdownGraceSecs: 5));
            Service = new SyncService(Config);
        }

        public static Scene EditorsAndReaders()
        {
            return new Scene(
                new MemberSettings(Alice, SyncDirection.TwoWay),
                new MemberSettings(Bob, SyncDirection.TwoWay),
                new MemberSettings(Carol, SyncDirection.OneWay),
                new MemberSettings(Dave, SyncDirection.OneWay));
        }

        public Folder Open(string mailbox)
        {
            Folder f = mailbox == null ? Service.PublicFolder(Hub) : Service.MailboxFolder(mailbox, Target, true);
            owned.Add(f);
            return f;
        }

        public RunReport Run(bool allowMassDelete = false)
        {
            RunReport report = Service.RunOnce(new RunOptions(allowMassDelete: allowMassDelete));
            return report;
        }

        public void Dispose()
        {
            foreach (IDisposable d in owned) d.Dispose();
            Service.Dispose();
            Config.Dispose();
            Emulator.Dispose();
        }

        public static FolderItem ByName(Folder folder, string name)
        {
            return folder.Items().FirstOrDefault(fi => F.ContactName(fi.Item) == name);
        }

        /// <summary>Names that occur once in the folder, sorted (the scenarios address contacts by name).</summary>
        public static List<string> UniqueNames(Folder folder)
        {
            List<string> all = folder.Items().Select(fi => F.ContactName(fi.Item)).ToList();
            return all.Where(n => n.Length > 0 && all.Count(m => m == n) == 1).OrderBy(n => n, StringComparer.Ordinal).ToList();
        }

        public static ItemEdit Set(string field, string value)
        {
            return F.SetTextFields(new Dictionary<string, string> { { field, value } });
        }

        public static string Text(FolderItem fi, string field)
        {
            return F.TextField(fi.Item, field);
        }
    }

    [TestClass]
    public static class SyncScenarioTests
    {
        public static void TestInitialSyncCopiesTheHubToEveryMemberThenStaysQuiet()
        {
            using (Scene s = Scene.EditorsAndReaders())
            {
                RunReport report = s.Run();
                Assert.True(report.IsClean, "clean run");
                Assert.Equal(PassOutcome.Synced, report.Groups[0].Outcome, "outcome");
                Assert.Equal(4UL * 25, report.Groups[0].Totals.Created, "copies created");
                foreach (string m in new[] { Scene.Alice, Scene.Bob, Scene.Carol, Scene.Dave })
                {
                    List<FolderItem> items = s.Open(m).Items();
                    Assert.Equal(25, items.Count, m);
                    Assert.True(items.All(fi => fi.Synced), "every copy carries an origin stamp");
                }
                GroupReport again = s.Run().Groups[0];
                Assert.Equal(0UL, again.Totals.Created + again.Totals.Updated + again.Totals.Deleted, "second pass writes nothing");
            }
        }

        public static void TestPublicFolderEditReachesReadersAndEditors()
        {
            using (Scene s = Scene.EditorsAndReaders())
            {
                s.Run();
                Folder hub = s.Open(null);
                string name = Scene.UniqueNames(hub)[0];
                hub.Update(Scene.ByName(hub, name).Id, Scene.Set("job_title", "Head of Sales"));
                Assert.True(s.Run().IsClean, "clean run");
                foreach (string m in new[] { Scene.Alice, Scene.Bob, Scene.Carol, Scene.Dave })
                    Assert.Equal("Head of Sales", Scene.Text(Scene.ByName(s.Open(m), name), "job_title"), m);
            }
        }

        public static void TestEditorEditReachesHubAndOthers()
        {
            using (Scene s = Scene.EditorsAndReaders())
            {
                s.Run();
                Folder hub = s.Open(null), alice = s.Open(Scene.Alice);
                string name = Scene.UniqueNames(hub)[1];
                alice.Update(Scene.ByName(alice, name).Id, Scene.Set("phone.mobile", "+1 555 0100"));
                string zoe = alice.Create(new Item(
                    new Dictionary<string, FieldValue>
                    {
                        { "given_name", new FieldValue.Text("Zoe") },
                        { "surname", new FieldValue.Text("Newcomer") },
                        { "email1.address", new FieldValue.Text("zoe@example.test") },
                    }));
                Assert.True(zoe.Length > 0, "an id for the new contact");
                F.ThrowIfFailed(s.Run());
                foreach (Folder f in new[] { hub, s.Open(Scene.Bob), s.Open(Scene.Carol), s.Open(Scene.Dave) })
                {
                    Assert.Equal("+1 555 0100", Scene.Text(Scene.ByName(f, name), "phone.mobile"), f.Description());
                    Assert.Equal("zoe@example.test", Scene.Text(Scene.ByName(f, "Zoe Newcomer"), "email1.address"), f.Description());
                }
            }
        }

        public static void TestReaderEditIsReverted()
        {
            using (Scene s = Scene.EditorsAndReaders())
            {
                s.Run();
                Folder hub = s.Open(null), carol = s.Open(Scene.Carol);
                string name = Scene.UniqueNames(hub)[2];
                string original = Scene.Text(Scene.ByName(hub, name), "company");
                carol.Update(Scene.ByName(carol, name).Id, Scene.Set("company", "My own company"));
                GroupReport report = s.Run().Groups[0];
                Assert.Equal(1UL, report.Totals.Reverted, "one revert");
                Assert.Equal(original, Scene.Text(Scene.ByName(carol, name), "company"), "the reader's copy again");
                Assert.Equal(original, Scene.Text(Scene.ByName(hub, name), "company"), "the hub unchanged");
            }
        }

        public static void TestConflictingEditsMergeFieldByFieldWithARecord()
        {
            using (Scene s = Scene.EditorsAndReaders())
            {
                s.Run();
                Folder hub = s.Open(null), alice = s.Open(Scene.Alice), bob = s.Open(Scene.Bob);
                string name = Scene.UniqueNames(hub)[3];
                ItemEdit a = Scene.Set("phone.mobile", "+1 555 0001");
                a.Set["department"] = new FieldValue.Text("Field sales");
                ItemEdit b = Scene.Set("phone.mobile", "+1 555 0002");
                b.Set["office"] = new FieldValue.Text("Building 7");
                alice.Update(Scene.ByName(alice, name).Id, a);
                bob.Update(Scene.ByName(bob, name).Id, b);
                GroupReport report = s.Run().Groups[0];
                Assert.Equal(PassOutcome.Synced, report.Outcome, "outcome");
                Assert.SequenceEqual(new List<string> { "phone.mobile" }, report.Conflicts.Select(c => c.Field).ToList(), "conflicting fields");
                List<ConflictEntry> log = s.Service.Conflicts();
                Assert.Equal(1, log.Count, "one conflict record");
                ConflictEntry entry = log[0];
                Assert.Equal("contacts", entry.Group, "group");
                var values = new HashSet<string> { entry.Winner.Value };
                foreach (ConflictSide loser in entry.Losers) values.Add(loser.Value);
                Assert.True(values.SetEquals(new[] { "+1 555 0001", "+1 555 0002" }), "both values recorded: " + entry.Text);
                Assert.Equal(entry.Entity, s.Service.Conflicts("contacts")[0].Entity, "the group's log");
                foreach (Folder f in new[] { hub, alice, bob, s.Open(Scene.Carol) })
                {
                    FolderItem fi = Scene.ByName(f, name);
                    Assert.Equal("Field sales", Scene.Text(fi, "department"), f.Description());
                    Assert.Equal("Building 7", Scene.Text(fi, "office"), f.Description());
                    Assert.Equal(entry.Winner.Value, Scene.Text(fi, "phone.mobile"), f.Description());
                }
            }
        }

        public static void TestDeletionsPropagateFromEditorsAndAreRevertedOnReaders()
        {
            using (Scene s = Scene.EditorsAndReaders())
            {
                s.Run();
                s.Run();
                Folder hub = s.Open(null), bob = s.Open(Scene.Bob), carol = s.Open(Scene.Carol);
                List<string> names = Scene.UniqueNames(hub);
                string gone = names[4], kept = names[5];
                FolderItem b = Scene.ByName(bob, gone);
                bob.Delete(b.Id);
                carol.Delete(Scene.ByName(carol, kept).Id);
                F.ThrowIfFailed(s.Run());
                foreach (Folder f in new[] { hub, s.Open(Scene.Alice), bob, carol, s.Open(Scene.Dave) })
                {
                    Assert.True(Scene.ByName(f, gone) == null, "deleted from " + f.Description());
                    Assert.True(Scene.ByName(f, kept) != null, "kept in " + f.Description());
                }
                var e = Assert.Throws<ExchangeSyncException.NotFound>(() => bob.Get(b.Id), "the deleted item");
                Assert.True(e.Context.Mailbox == Scene.Bob, "the exception names the mailbox: " + e.Context.Mailbox);
            }
        }

        public static void TestTheMassDeleteGuardStopsAGroupUntilAnAdminConfirms()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay), new MemberSettings(Scene.Carol, SyncDirection.OneWay)))
            {
                s.Run();
                Folder hub = s.Open(null);
                foreach (FolderItem fi in hub.Items()) hub.Delete(fi.Id);
                RunReport report = s.Run();
                Assert.True(report.MassDeleteStopped, "stopped");
                Assert.Equal(PassOutcome.StoppedByMassDeleteGuard, report.Groups[0].Outcome, "outcome");
                var e = Assert.Throws<ExchangeSyncException.MassDelete>(() => F.ThrowIfFailed(report), "ThrowIfFailed");
                Assert.Equal("contacts", e.Context.Group, "group");
                Assert.Equal(25, s.Open(Scene.Alice).Items().Count, "nothing deleted in the editor's folder");
                Assert.True(s.Service.Status()[0].StoppedByMassDeleteGuard, "status shows the guard");
                Assert.True(s.Run(allowMassDelete: true).IsClean, "the confirmed run");
                Assert.Equal(0, s.Open(Scene.Alice).Items().Count, "the confirmed deletion");
                Assert.Equal(0, s.Open(Scene.Carol).Items().Count, "the confirmed deletion");
            }
        }

        public static void TestDryRunAndStatus()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
            {
                GroupReport planned = s.Service.Plan(new RunOptions()).Groups[0];
                Assert.Equal(PassOutcome.Planned, planned.Outcome, "outcome");
                Assert.Equal(25UL, planned.Totals.Created, "planned creates");
                Assert.True(planned.Plan != null && planned.Plan.Length > 0, "the plan as text");
                Assert.Equal(0, s.Open(Scene.Alice).Items().Count, "nothing written");
                s.Run();
                GroupStatus status = s.Service.Status()[0];
                Assert.SequenceEqual(new List<string> { "hub", Scene.Alice }, status.Members.Select(m => m.Member).ToList(), "members");
                Assert.True(status.Members.All(m => m.Initialized && m.Copies == 25 && m.LastSync.HasValue), "initialized");
                Assert.Equal(PassOutcome.Synced, status.LastReport.Outcome, "last report");
            }
        }
    }

    [TestClass]
    public static class ErrorTests
    {
        public static void TestBadTomlNamesTheLine()
        {
            var e = Assert.Throws<ExchangeSyncException.Config>(() => Configuration.FromToml("[service]\ndebounce_ms = 200\nstate = [1, 2\n"), "bad TOML");
            Assert.True(e.Diagnostics.Count > 0, "diagnostics");
            Assert.True(e.Diagnostics[0].Line.HasValue && e.Diagnostics[0].Line.Value >= 3, "the line: " + e.Message);
            Assert.True(e.Message.Length > 0, "a message");
            var unknown = Assert.Throws<ExchangeSyncException.Config>(() => Configuration.FromToml("[service]\n\ndebounce = 200\n"), "unknown key");
            Assert.Equal(3U, unknown.Diagnostics[0].Line.Value, "line of the unknown key");
            Assert.Throws<ExchangeSyncException.Config>(() => Configuration.FromFile("/nonexistent/exchange-sync.toml"), "missing file");
        }

        public static void TestATomlFileLoads()
        {
            using (TestEmulator emulator = new TestEmulator(3))
            {
                string path = Path.GetTempFileName();
                File.WriteAllText(path,
                    "[service]\nstate = \"memory\"\n\n[connections.exchange]\nurl = \"" + emulator.Url() + "\"\nauth = \"basic\"\n" +
                    "username = \"" + emulator.Admin() + "\"\npassword_env = \"EXSYNC_TEST_PASSWORD\"\n\n" +
                    "[[groups]]\nid = \"contacts\"\nconnection = \"exchange\"\nhub = { public_folder = \"Company Contacts\" }\n" +
                    "target = \"contacts/Company Contacts\"\n\n[[groups.members]]\nmailbox = \"alice@contoso.test\"\ndirection = \"two_way\"\n");
                try
                {
                    Environment.SetEnvironmentVariable("EXSYNC_TEST_PASSWORD", emulator.Password());
                    using (Configuration config = Configuration.FromFile(path))
                    using (SyncService service = new SyncService(config))
                    {
                        Assert.SequenceEqual(new List<string> { "contacts" }, config.GroupIds(), "groups");
                        Assert.Equal(3UL, service.RunOnce(new RunOptions()).Groups[0].Totals.Created, "synced");
                    }
                }
                finally
                {
                    File.Delete(path);
                }
            }
        }

        public static void TestUnknownGroupIsAConfigurationError()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
            {
                var e = Assert.Throws<ExchangeSyncException.Config>(() => s.Service.RunOnce(new RunOptions(new List<string> { "nope" })), "unknown group");
                Assert.True(e.Message.Contains("nope"), e.Message);
                var bad = Assert.Throws<ExchangeSyncException.Config>(() => s.Service.MailboxFolder(Scene.Alice, "inbox/x"), "unknown folder");
                Assert.True(bad.Message.Contains("inbox"), bad.Message);
            }
        }

        public static void TestCodeBuiltConfigurationsAreValidated()
        {
            var e = Assert.Throws<ExchangeSyncException.Config>(() => new Configuration(
                new List<ConnectionSettings>(),
                new List<GroupSettings> { new GroupSettings("g", "missing", "Company Contacts", new List<MemberSettings>()) }), "no such connection");
            Assert.True(e.Diagnostics.Any(d => d.IsError && d.Path.StartsWith("groups[0]")), "the group's finding: " + e.Message);
        }

        public static void TestAWrongPasswordIsAnAuthError()
        {
            using (TestEmulator emulator = new TestEmulator(3))
            {
                ConnectionSettings c = emulator.Connection();
                c.Password = new SecretSource.Inline("wrong");
                using (Configuration config = new Configuration(
                    new List<ConnectionSettings> { c },
                    new List<GroupSettings> { new GroupSettings("g", "exchange", Scene.Hub, new List<MemberSettings> { new MemberSettings(Scene.Alice, SyncDirection.TwoWay) }) },
                    new ServiceOptions("memory", retryMaxAttempts: 1)))
                {
                    ExchangeSyncException.Auth e = null;
                    try
                    {
                        using (SyncService service = new SyncService(config))
                        {
                            RunReport report = service.RunOnce(new RunOptions());
                            Assert.Equal(PassOutcome.Failed, report.Groups[0].Outcome, "the pass failed");
                            e = Assert.Throws<ExchangeSyncException.Auth>(() => F.ThrowIfFailed(report), "ThrowIfFailed");
                            Assert.Throws<ExchangeSyncException.Auth>(() => service.PublicFolder(Scene.Hub), "opening a folder");
                        }
                    }
                    catch (ExchangeSyncException.Auth connect)
                    {
                        e = connect;
                    }
                    Assert.True(e != null && e.Message.Length > 0 && !e.Message.Contains("wrong"), "an auth error without the password");
                }
            }
        }

        public static void TestABlockingCallFromACallbackIsRefused()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
            {
                var listener = new BlockingListener(s.Service);
                using (s.Service.Subscribe(listener))
                {
                    s.Run();
                    Assert.True(listener.Done.Wait(30000), "an event arrived");
                }
                Assert.True(listener.Refused is ExchangeSyncException.Usage, "a Usage exception: " + listener.Refused);
            }
        }

        private sealed class BlockingListener : IProgressListener
        {
            private readonly SyncService service;
            public Exception Refused;
            public readonly ManualResetEventSlim Done = new ManualResetEventSlim();
            public BlockingListener(SyncService service) { this.service = service; }
            public void OnEvent(ProgressEvent e)
            {
                if (Done.IsSet) return;
                try { service.Status(); } catch (Exception ex) { Refused = ex; }
                Done.Set();
            }
        }
    }

    internal sealed class RecordingListener : IProgressListener
    {
        public readonly List<ProgressEvent> Events = new List<ProgressEvent>();
        public readonly List<int> Threads = new List<int>();
        public void OnEvent(ProgressEvent e)
        {
            lock (Events)
            {
                Events.Add(e);
                Threads.Add(Thread.CurrentThread.ManagedThreadId);
                Monitor.PulseAll(Events);
            }
        }

        /// <summary>Waits (at most 30 s) for an event that satisfies `match`.</summary>
        public T WaitFor<T>(Func<T, bool> match) where T : ProgressEvent
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(30);
            lock (Events)
            {
                while (true)
                {
                    T found = Events.OfType<T>().FirstOrDefault(match);
                    if (found != null) return found;
                    TimeSpan left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero) throw new AssertionException("no " + typeof(T).Name + " event came");
                    Monitor.Wait(Events, left);
                }
            }
        }
    }

    [TestClass]
    public static class ProgressTests
    {
        public static void TestRunOnceWithProgressDeliversEventsOnTheCallingThread()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
            {
                var listener = new RecordingListener();
                RunReport report = s.Service.RunOnceWithProgress(new RunOptions(), listener);
                Assert.True(report.IsClean, "clean");
                Assert.True(listener.Events[0] is ProgressEvent.PassStarted, "first event: " + listener.Events[0]);
                Assert.Equal(Trigger.Manual, ((ProgressEvent.PassStarted)listener.Events[0]).Trigger, "trigger");
                var finished = listener.Events.OfType<ProgressEvent.PassFinished>().Single();
                Assert.Equal(25UL, finished.Report.Totals.Created, "the report in the event");
                Assert.True(listener.Threads.All(t => t == Thread.CurrentThread.ManagedThreadId), "on the calling thread");
            }
        }

        public static void TestAThrowingListenerDoesNotStopTheRun()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
            {
                var listener = new ThrowingListener();
                RunReport report = s.Service.RunOnceWithProgress(new RunOptions(), listener);
                Assert.True(report.IsClean && report.Groups[0].Totals.Created == 25, "the run went on: " + report.Groups[0].Text);
                Assert.True(listener.Calls >= 2, "every event was offered: " + listener.Calls);
            }
        }

        private sealed class ThrowingListener : IProgressListener
        {
            public int Calls;
            public void OnEvent(ProgressEvent e)
            {
                Calls++;
                throw new InvalidOperationException("a listener bug");
            }
        }

        public static void TestTheRealTimeServiceSyncsAnEditAndStops()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay), new MemberSettings(Scene.Carol, SyncDirection.OneWay)))
            {
                var listener = new RecordingListener();
                using (Subscription sub = s.Service.Subscribe(listener))
                {
                    s.Service.Start();
                    Assert.True(s.Service.IsRunning(), "running");
                    Assert.Throws<ExchangeSyncException.Usage>(() => s.Service.Start(), "started twice");
                    var first = listener.WaitFor<ProgressEvent.PassFinished>(e => true);
                    Assert.Equal(PassOutcome.Synced, first.Report.Outcome, "initial pass");
                    Folder hub = s.Open(null), carol = s.Open(Scene.Carol);
                    string name = Scene.UniqueNames(hub)[0];
                    hub.Update(Scene.ByName(hub, name).Id, Scene.Set("job_title", "Chief Realtime Officer"));
                    listener.WaitFor<ProgressEvent.PassFinished>(e => e.Report.Totals.Updated > 0);
                    Assert.Equal("Chief Realtime Officer", Scene.Text(Scene.ByName(carol, name), "job_title"), "the reader's copy");
                    s.Service.Stop();
                    Assert.True(!s.Service.IsRunning(), "stopped");
                    listener.WaitFor<ProgressEvent.ServiceStopped>(e => true);
                    Assert.True(listener.Events[0] is ProgressEvent.ServiceStarted, "service started first");
                }
            }
        }
    }

    [TestClass]
    public static class AsyncTests
    {
        public static void TestAsyncCallsReturnTasks()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
            {
                RunAsync(s).GetAwaiter().GetResult();
            }
        }

        public static void TestConnectAsyncGivesAService()
        {
            using (TestEmulator emulator = new TestEmulator(3))
            using (Configuration config = new Configuration(
                new List<ConnectionSettings> { emulator.Connection() },
                new List<GroupSettings> { new GroupSettings("g", "exchange", Scene.Hub, new List<MemberSettings> { new MemberSettings(Scene.Alice, SyncDirection.TwoWay) }) },
                new ServiceOptions("memory")))
            using (SyncService service = SyncService.ConnectAsync(config).GetAwaiter().GetResult())
            {
                Assert.SequenceEqual(new List<string> { "g" }, service.GroupIds(), "groups");
                Assert.Equal(3UL, service.RunOnce(new RunOptions()).Groups[0].Totals.Created, "synced");
            }
        }

        private static async Task RunAsync(Scene s)
        {
            RunReport report = await s.Service.RunOnceAsync(new RunOptions());
            Assert.Equal(25UL, report.Groups[0].Totals.Created, "created");
            Folder alice = s.Open(Scene.Alice);
            List<FolderItem> items = await alice.ItemsAsync();
            Assert.Equal(25, items.Count, "items");
            Task<FolderItem>[] reads = items.Take(10).Select(fi => alice.GetAsync(fi.Id)).ToArray();
            FolderItem[] got = await Task.WhenAll(reads);
            Assert.True(got.Select(g => g.Id).SequenceEqual(items.Take(10).Select(fi => fi.Id)), "ten concurrent reads");
            await alice.UpdateAsync(items[0].Id, Scene.Set("job_title", "Async"));
            string id = await alice.CreateAsync(new Item(new Dictionary<string, FieldValue> { { "given_name", new FieldValue.Text("Ada") } }, categories: new List<string> { "VIP" }));
            Assert.Equal("Ada", Scene.Text(await alice.GetAsync(id), "given_name"), "created");
            await alice.DeleteAsync(id);
            try
            {
                await alice.GetAsync(id);
                throw new AssertionException("expected NotFound");
            }
            catch (ExchangeSyncException.NotFound) { }
            GroupReport planned = (await s.Service.PlanAsync(new RunOptions())).Groups[0];
            Assert.Equal(PassOutcome.Planned, planned.Outcome, "planned");
            Assert.Equal(1, (await s.Service.StatusAsync()).Count, "status");
            Assert.Equal(0, (await s.Service.ConflictsAsync()).Count, "no conflicts");
        }

        public static void TestCancellingRunAsyncStopsTheService()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
            {
                var listener = new RecordingListener();
                using (s.Service.Subscribe(listener))
                using (var cts = new CancellationTokenSource())
                {
                    Task run = s.Service.RunAsync(cts.Token);
                    listener.WaitFor<ProgressEvent.PassFinished>(e => true);
                    cts.Cancel();
                    try { run.Wait(30000); } catch (AggregateException) { }
                    Assert.True(run.IsCanceled, "the task ends cancelled: " + run.Status);
                    listener.WaitFor<ProgressEvent.ServiceStopped>(e => true);
                }
            }
        }

        public static void TestShutdownEndsRunAsync()
        {
            using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
            {
                var listener = new RecordingListener();
                using (s.Service.Subscribe(listener))
                {
                    Task run = s.Service.RunAsync();
                    listener.WaitFor<ProgressEvent.PassFinished>(e => true);
                    s.Service.Shutdown();
                    Assert.True(run.Wait(30000), "RunAsync returned");
                    Assert.Equal(TaskStatus.RanToCompletion, run.Status, "completed");
                }
            }
        }
    }

    [TestClass]
    public static class LifetimeTests
    {
        public static void TestDisposedObjectsRefuseCallsAndTheLastOneEndsTheRuntime()
        {
            Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay));
            Folder hub = s.Open(null);
            Assert.True(F.RuntimeIsRunning(), "running while objects live");
            s.Dispose();
            Assert.Throws<ObjectDisposedException>(() => hub.Items(), "a disposed folder");
            Assert.Throws<ObjectDisposedException>(() => s.Service.Status(), "a disposed service");
            s.Dispose();
            Assert.True(!F.RuntimeIsRunning(), "the runtime ended with the last object");
        }

        public static void TestFinalizersReleaseForgottenObjects()
        {
            MakeForgottenObjects();
            for (int i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
            for (int i = 0; i < 500 && F.RuntimeIsRunning(); i++) Thread.Sleep(10);
            Assert.True(!F.RuntimeIsRunning(), "the finalizers released every object, and the runtime ended");
        }

        private static void MakeForgottenObjects()
        {
            new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)).Open(null).Items();
        }

        public static void TestTheEmulatorOpensFoldersForUsersEdits()
        {
            using (TestEmulator e = new TestEmulator(4))
            using (Folder hub = e.PublicFolder(Scene.Hub))
            using (Folder dave = e.MailboxFolder(Scene.Dave))
            {
                Assert.Equal(4, hub.Items().Count, "the demo contacts");
                Assert.SequenceEqual(new List<string> { "alice@contoso.test", "bob@contoso.test", "carol@contoso.test", "dave@contoso.test" },
                    e.Users().Take(4).ToList(), "the demo users");
                int before = dave.Items().Count;
                string id = dave.Create(new Item(new Dictionary<string, FieldValue> { { "given_name", new FieldValue.Text("Own") } }));
                Assert.Equal(before + 1, dave.Items().Count, "the user's own contact");
                Assert.True(!dave.Get(id).Synced, "not a group's copy");
                Assert.True(e.Url().StartsWith("http://127.0.0.1:"), e.Url());
            }
        }

        public static void TestShutdownRuntimeIsIdempotentAndTheRuntimeRestarts()
        {
            F.ShutdownRuntime();
            F.ShutdownRuntime();
            using (TestEmulator e = new TestEmulator(1))
            {
                Assert.True(e.IsRunning() && F.RuntimeIsRunning(), "a new runtime");
                e.Stop();
                Assert.True(!e.IsRunning(), "stopped");
                Assert.Throws<ExchangeSyncException.Usage>(() => e.Inject(EmulatorFault.ServerBusy), "a stopped emulator");
            }
        }
    }

    internal sealed class RecordingLog : ILogListener
    {
        public readonly List<string> Lines = new List<string>();
        public void OnLog(LogLevel level, string target, string message)
        {
            lock (Lines) Lines.Add(level + " " + target + " " + message);
        }
    }

    [TestClass]
    public static class LoggingTests
    {
        public static void TestTracingReachesTheListenerAtItsLevel()
        {
            var log = new RecordingLog();
            F.SetLogListener(log, LogLevel.Info);
            try
            {
                F.LogMessage(LogLevel.Warn, "a warning");
                F.LogMessage(LogLevel.Debug, "not shown");
                using (Scene s = new Scene(new MemberSettings(Scene.Alice, SyncDirection.TwoWay)))
                {
                    s.Run();
                }
            }
            finally
            {
                F.ClearLogListener();
            }
            F.LogMessage(LogLevel.Error, "after clearing");
            lock (log.Lines)
            {
                Assert.True(log.Lines.Contains("Warn exchange_sync_dotnet a warning"), "the warning: " + string.Join(" | ", log.Lines.Take(5)));
                Assert.True(!log.Lines.Any(l => l.Contains("not shown") || l.Contains("after clearing")), "level and clearing respected");
                Assert.True(log.Lines.Any(l => l.StartsWith("Info exchange_sync::service") && l.Contains("group contacts")), "the service's pass report");
                string secret = log.Lines.FirstOrDefault(l => l.Contains("exchange-sync\""));
                Assert.True(secret == null, "no secret logged: " + secret);
            }
        }
    }

    [TestClass]
    public static class LeakTests
    {
        private static long ResidentBytes()
        {
            foreach (string line in File.ReadAllLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.Substring(6).Trim().Split(' ')[0]) * 1024;
            }
            return Process.GetCurrentProcess().WorkingSet64;
        }

        private static void Settle()
        {
            for (int i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }

        private const string Toml = "[service]\nstate = \"memory\"\n\n[connections.exchange]\nurl = \"http://127.0.0.1:9/EWS/Exchange.asmx\"\nauth = \"none\"\n";

        // Each round crosses the FFI several times: a configuration parsed and disposed, a
        // configuration error thrown, records in and out, a blocking and an async call on the
        // service; every 50th round reads the hub over HTTP from the emulator.
        private static void Round(SyncService service, Folder hub, Item item, int i)
        {
            using (Configuration c = Configuration.FromToml(Toml)) c.ConnectionIds();
            try { Configuration.FromToml("[service\n"); } catch (ExchangeSyncException.Config) { }
            if (F.ContactName(item) != "Ada Lovelace") throw new AssertionException("name");
            service.Status();
            service.ConflictsAsync().Wait();
            if (i % 50 == 0 && hub.ItemsAsync().Result.Count != 5) throw new AssertionException("items");
        }

        public static void TestMemoryIsStableOver10000Calls()
        {
            using (TestEmulator emulator = new TestEmulator(5))
            using (Configuration config = new Configuration(
                new List<ConnectionSettings> { emulator.Connection() },
                new List<GroupSettings> { new GroupSettings("g", "exchange", Scene.Hub, new List<MemberSettings> { new MemberSettings(Scene.Alice, SyncDirection.TwoWay) }) },
                new ServiceOptions("memory")))
            using (SyncService service = new SyncService(config))
            using (Folder hub = service.PublicFolder(Scene.Hub))
            {
                var item = new Item(new Dictionary<string, FieldValue>
                {
                    { "given_name", new FieldValue.Text("Ada") },
                    { "surname", new FieldValue.Text("Lovelace") },
                    { "notes", new FieldValue.Text(new string('x', 8 * 1024)) },
                }, categories: new List<string> { "VIP" });
                for (int i = 0; i < 2000; i++) Round(service, hub, item, i);
                Settle();
                long before = ResidentBytes();
                for (int i = 0; i < 10000; i++) Round(service, hub, item, i);
                Settle();
                long after = ResidentBytes();
                long growth = after - before;
                Console.WriteLine("    leak check: RSS " + before / 1024 + " KiB -> " + after / 1024 + " KiB (" + (growth >= 0 ? "+" : "") + growth / 1024 + " KiB over 10,000 rounds)");
                Assert.True(growth < 64L * 1024 * 1024, "RSS grew by " + growth / (1024 * 1024) + " MiB over 10,000 rounds");
                Assert.Equal(0, UniffiAsync.PendingCount, "every continuation released");
            }
        }
    }
}
