// A small assertion harness: every public static void method of a class marked [TestClass] whose
// name starts with "Test" is a test. Prints one line per test and the closing tally
// "N passed, N failed"; the exit code is the number of failures (capped at 1).
using System;
using System.Collections.Generic;
using System.Reflection;

namespace FixtureTests
{
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class TestClassAttribute : Attribute { }

    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition) throw new AssertionException("expected true: " + what);
        }

        public static void Equal<T>(T expected, T actual, string what = "")
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(what + ": expected <" + Show(expected) + "> but was <" + Show(actual) + ">");
        }

        public static void SequenceEqual<T>(IList<T> expected, IList<T> actual, string what = "")
        {
            if (expected.Count != actual.Count)
                throw new AssertionException(what + ": expected " + expected.Count + " items but was " + actual.Count);
            for (int i = 0; i < expected.Count; i++) Equal(expected[i], actual[i], what + "[" + i + "]");
        }

        public static TException Throws<TException>(Action action, string what) where TException : Exception
        {
            try
            {
                action();
            }
            catch (TException e)
            {
                return e;
            }
            catch (AggregateException e) when (e.InnerException is TException)
            {
                return (TException)e.InnerException;
            }
            catch (Exception e)
            {
                throw new AssertionException(what + ": expected " + typeof(TException).Name + " but got " + e.GetType().Name + ": " + e.Message);
            }
            throw new AssertionException(what + ": expected " + typeof(TException).Name + " but nothing was thrown");
        }

        private static string Show(object o)
        {
            if (o == null) return "null";
            byte[] b = o as byte[];
            if (b != null) return BitConverter.ToString(b);
            return o.ToString();
        }
    }

    public static class Runner
    {
        public static int Main(string[] args)
        {
            string filter = args.Length > 0 ? args[0] : null;
            int passed = 0, failed = 0;
            foreach (Type type in typeof(Runner).Assembly.GetTypes())
            {
                if (type.GetCustomAttributes(typeof(TestClassAttribute), false).Length == 0) continue;
                MethodInfo[] methods = type.GetMethods(BindingFlags.Public | BindingFlags.Static);
                Array.Sort(methods, (a, b) => a.MetadataToken.CompareTo(b.MetadataToken));
                foreach (MethodInfo m in methods)
                {
                    if (!m.Name.StartsWith("Test", StringComparison.Ordinal) || m.GetParameters().Length != 0) continue;
                    string name = type.Name + "." + m.Name;
                    if (filter != null && name.IndexOf(filter, StringComparison.OrdinalIgnoreCase) < 0) continue;
                    try
                    {
                        m.Invoke(null, null);
                        passed++;
                        Console.WriteLine("PASS " + name);
                    }
                    catch (TargetInvocationException e)
                    {
                        failed++;
                        Console.WriteLine("FAIL " + name + ": " + e.InnerException);
                    }
                }
            }
            Console.WriteLine();
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 && passed > 0 ? 0 : 1;
        }
    }
}
