    // ---- uniffi runtime: buffers, call status, handle maps, objects, async calls ----

    [StructLayout(LayoutKind.Sequential)]
    internal struct RustBuffer
    {
        public ulong Capacity;
        public ulong Len;
        public IntPtr Data;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct ForeignBytes
    {
        public int Len;
        public IntPtr Data;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct RustCallStatus
    {
        public sbyte Code;
        public RustBuffer ErrorBuf;

        public const sbyte Success = 0;
        public const sbyte Error = 1;
        public const sbyte UnexpectedError = 2;
        public const sbyte Cancelled = 3;
    }

    /// <summary>
    /// Thrown when Rust panics or reports an error that the interface does not declare, and when
    /// the native library does not match these bindings.
    /// </summary>
    public class UniffiException : Exception
    {
        /// <summary>Creates the exception with the message that Rust gave.</summary>
        public UniffiException(string message) : base(message) { }
    }

    /// <summary>
    /// Finds the native library on Windows. .NET Framework (and so Windows PowerShell 5.1) resolves
    /// DllImport through the process's DLL search path, which includes neither the directory of
    /// this assembly nor a NuGet package's runtimes/win-*/native folder; loading the library from
    /// there first makes DllImport find it already loaded. Elsewhere the runtime's own probing
    /// (runtimes/RID/native on .NET 6+, LD_LIBRARY_PATH or the app directory on Mono) is used.
    /// </summary>
    internal static class UniffiNativeLibrary
    {
        [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern IntPtr LoadLibraryW(string path);

        internal static void Preload(string name)
        {
            if (Environment.OSVersion.Platform != PlatformID.Win32NT) return;
            string dir;
            try
            {
                dir = Path.GetDirectoryName(typeof(UniffiNativeLibrary).Assembly.Location);
            }
            catch (Exception)
            {
                return;
            }
            if (string.IsNullOrEmpty(dir)) return;
            string arch = IntPtr.Size == 8 ? "win-x64" : "win-x86";
            string[] candidates =
            {
                Path.Combine(dir, name + ".dll"),
                Path.Combine(dir, "runtimes", arch, "native", name + ".dll"),
                // an unpacked NuGet package: lib/netstandard2.0/ beside runtimes/
                Path.Combine(dir, "..", "..", "runtimes", arch, "native", name + ".dll"),
            };
            foreach (string candidate in candidates)
            {
                if (File.Exists(candidate) && LoadLibraryW(candidate) != IntPtr.Zero) return;
            }
        }
    }

    /// <summary>Reads the big-endian serialization that uniffi uses for compound values.</summary>
    internal sealed class UniffiReader
    {
        private readonly byte[] data;
        private int pos;

        public UniffiReader(byte[] data) { this.data = data; }

        public int Remaining { get { return data.Length - pos; } }

        private void Need(int n)
        {
            if (data.Length - pos < n) throw new UniffiException("buffer underflow reading " + n + " bytes");
        }

        public byte ReadByte() { Need(1); return data[pos++]; }
        public sbyte ReadSByte() { return unchecked((sbyte)ReadByte()); }
        public ushort ReadUInt16() { Need(2); ushort v = (ushort)((data[pos] << 8) | data[pos + 1]); pos += 2; return v; }
        public short ReadInt16() { return unchecked((short)ReadUInt16()); }
        public uint ReadUInt32()
        {
            Need(4);
            uint v = ((uint)data[pos] << 24) | ((uint)data[pos + 1] << 16) | ((uint)data[pos + 2] << 8) | data[pos + 3];
            pos += 4;
            return v;
        }
        public int ReadInt32() { return unchecked((int)ReadUInt32()); }
        public ulong ReadUInt64() { ulong hi = ReadUInt32(); ulong lo = ReadUInt32(); return (hi << 32) | lo; }
        public long ReadInt64() { return unchecked((long)ReadUInt64()); }
        public float ReadSingle()
        {
            byte[] b = ReadBytes(4);
            if (BitConverter.IsLittleEndian) Array.Reverse(b);
            return BitConverter.ToSingle(b, 0);
        }
        public double ReadDouble() { return BitConverter.Int64BitsToDouble(ReadInt64()); }
        public byte[] ReadBytes(int n)
        {
            if (n < 0) throw new UniffiException("negative length " + n);
            Need(n);
            byte[] b = new byte[n];
            Buffer.BlockCopy(data, pos, b, 0, n);
            pos += n;
            return b;
        }
        public string ReadString(int n)
        {
            if (n < 0) throw new UniffiException("negative length " + n);
            Need(n);
            string s = Encoding.UTF8.GetString(data, pos, n);
            pos += n;
            return s;
        }
    }

    /// <summary>Writes the big-endian serialization that uniffi uses for compound values.</summary>
    internal sealed class UniffiWriter
    {
        private byte[] data = new byte[64];
        private int len;

        private void Grow(int n)
        {
            if (len + n <= data.Length) return;
            int size = Math.Max(data.Length * 2, len + n);
            byte[] bigger = new byte[size];
            Buffer.BlockCopy(data, 0, bigger, 0, len);
            data = bigger;
        }

        public void WriteByte(byte v) { Grow(1); data[len++] = v; }
        public void WriteSByte(sbyte v) { WriteByte(unchecked((byte)v)); }
        public void WriteUInt16(ushort v) { Grow(2); data[len++] = (byte)(v >> 8); data[len++] = (byte)v; }
        public void WriteInt16(short v) { WriteUInt16(unchecked((ushort)v)); }
        public void WriteUInt32(uint v)
        {
            Grow(4);
            data[len++] = (byte)(v >> 24); data[len++] = (byte)(v >> 16); data[len++] = (byte)(v >> 8); data[len++] = (byte)v;
        }
        public void WriteInt32(int v) { WriteUInt32(unchecked((uint)v)); }
        public void WriteUInt64(ulong v) { WriteUInt32((uint)(v >> 32)); WriteUInt32((uint)v); }
        public void WriteInt64(long v) { WriteUInt64(unchecked((ulong)v)); }
        public void WriteSingle(float v)
        {
            byte[] b = BitConverter.GetBytes(v);
            if (BitConverter.IsLittleEndian) Array.Reverse(b);
            WriteRaw(b);
        }
        public void WriteDouble(double v) { WriteInt64(BitConverter.DoubleToInt64Bits(v)); }
        public void WriteRaw(byte[] b) { Grow(b.Length); Buffer.BlockCopy(b, 0, data, len, b.Length); len += b.Length; }

        /// <summary>Copies what was written into a buffer that Rust owns.</summary>
        public RustBuffer ToRustBuffer() { return UniffiBuffers.FromBytes(data, len); }
    }

    internal static class UniffiBuffers
    {
        /// <summary>Copies managed bytes into a new Rust-owned buffer.</summary>
        public static RustBuffer FromBytes(byte[] bytes, int len)
        {
            GCHandle pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
            try
            {
                ForeignBytes fb = new ForeignBytes { Len = len, Data = pin.AddrOfPinnedObject() };
                RustCallStatus status = new RustCallStatus();
                RustBuffer rb = UniffiLib.RustBufferFromBytes(fb, ref status);
                UniffiCalls.Check(status, null);
                return rb;
            }
            finally
            {
                pin.Free();
            }
        }

        /// <summary>Copies a Rust buffer into managed memory and frees it.</summary>
        public static byte[] Consume(RustBuffer rb)
        {
            try
            {
                if (rb.Len > int.MaxValue) throw new UniffiException("buffer too large: " + rb.Len);
                byte[] bytes = new byte[(int)rb.Len];
                if (rb.Len > 0) Marshal.Copy(rb.Data, bytes, 0, (int)rb.Len);
                return bytes;
            }
            finally
            {
                Free(rb);
            }
        }

        public static void Free(RustBuffer rb)
        {
            RustCallStatus status = new RustCallStatus();
            UniffiLib.RustBufferFree(rb, ref status);
            UniffiCalls.Check(status, null);
        }
    }

    /// <summary>Converts between a C# value and its FFI form (<typeparamref name="F"/>) or its serialized form.</summary>
    internal abstract class FfiConverter<T, F>
    {
        public abstract T Lift(F value);
        public abstract F Lower(T value);
        public abstract T Read(UniffiReader r);
        public abstract void Write(T value, UniffiWriter w);
    }

    /// <summary>A converter whose FFI form is a serialized buffer.</summary>
    internal abstract class FfiConverterRustBuffer<T> : FfiConverter<T, RustBuffer>
    {
        public override T Lift(RustBuffer value)
        {
            UniffiReader r = new UniffiReader(UniffiBuffers.Consume(value));
            T result = Read(r);
            if (r.Remaining != 0) throw new UniffiException("junk left in buffer: " + r.Remaining + " bytes");
            return result;
        }

        public override RustBuffer Lower(T value)
        {
            UniffiWriter w = new UniffiWriter();
            Write(value, w);
            return w.ToRustBuffer();
        }
    }

    /// <summary>Lifts errors (exceptions) out of a call status.</summary>
    internal interface IUniffiErrorLifter
    {
        Exception LiftError(RustBuffer buf);
    }

    internal delegate T UniffiCall<T>(ref RustCallStatus status);
    internal delegate void UniffiVoidCall(ref RustCallStatus status);

    internal static class UniffiCalls
    {
        public static T Call<T>(IUniffiErrorLifter errors, UniffiCall<T> call)
        {
            RustCallStatus status = new RustCallStatus();
            T result = call(ref status);
            Check(status, errors);
            return result;
        }

        public static void CallVoid(IUniffiErrorLifter errors, UniffiVoidCall call)
        {
            RustCallStatus status = new RustCallStatus();
            call(ref status);
            Check(status, errors);
        }

        public static void Check(RustCallStatus status, IUniffiErrorLifter errors)
        {
            switch (status.Code)
            {
                case RustCallStatus.Success:
                    return;
                case RustCallStatus.Error:
                    if (errors == null)
                    {
                        UniffiBuffers.Free(status.ErrorBuf);
                        throw new UniffiException("Rust returned an error that the interface does not declare");
                    }
                    throw errors.LiftError(status.ErrorBuf);
                case RustCallStatus.UnexpectedError:
                    if (status.ErrorBuf.Len > 0)
                        throw new UniffiException(FfiConverterString.Instance.Lift(status.ErrorBuf));
                    throw new UniffiException("Rust panicked");
                case RustCallStatus.Cancelled:
                    throw new OperationCanceledException("the Rust call was cancelled");
                default:
                    throw new UniffiException("unknown Rust call status " + status.Code);
            }
        }

        /// <summary>
        /// Runs a C# implementation of a callback method for Rust, turning exceptions into a call status.
        /// </summary>
        public static void CallbackBody(ref RustCallStatus status, Action body, Func<Exception, RustBuffer?> lowerDeclaredError)
        {
            try
            {
                body();
            }
            catch (Exception e)
            {
                RustBuffer? declared = null;
                try { declared = lowerDeclaredError == null ? null : lowerDeclaredError(e); } catch (Exception) { declared = null; }
                if (declared.HasValue)
                {
                    status.Code = RustCallStatus.Error;
                    status.ErrorBuf = declared.Value;
                }
                else
                {
                    status.Code = RustCallStatus.UnexpectedError;
                    status.ErrorBuf = FfiConverterString.Instance.Lower(e.GetType().Name + ": " + e.Message);
                }
            }
        }
    }

    /// <summary>
    /// Maps handles that Rust holds to C# objects (callback implementations, pending futures).
    /// Handles are odd so that Rust can tell them from its own.
    /// </summary>
    internal sealed class UniffiHandleMap<T> where T : class
    {
        private readonly Dictionary<ulong, T> map = new Dictionary<ulong, T>();
        private ulong next = 1;

        public ulong Insert(T obj)
        {
            lock (map)
            {
                ulong handle = next;
                next += 2;
                map[handle] = obj;
                return handle;
            }
        }

        public T Get(ulong handle)
        {
            lock (map)
            {
                T obj;
                if (!map.TryGetValue(handle, out obj)) throw new UniffiException("unknown handle " + handle);
                return obj;
            }
        }

        public T Remove(ulong handle)
        {
            lock (map)
            {
                T obj;
                if (!map.TryGetValue(handle, out obj)) throw new UniffiException("unknown handle " + handle);
                map.Remove(handle);
                return obj;
            }
        }

        public int Count { get { lock (map) { return map.Count; } } }
    }

    /// <summary>Marks the constructor that wraps a handle Rust returned.</summary>
    internal struct UniffiHandleTag
    {
        internal static readonly UniffiHandleTag Value = default(UniffiHandleTag);
    }

    /// <summary>Writes a callback's result where Rust asked for it.</summary>
    internal static class UniffiOut
    {
        public static void Write(IntPtr p, sbyte v) { Marshal.WriteByte(p, unchecked((byte)v)); }
        public static void Write(IntPtr p, byte v) { Marshal.WriteByte(p, v); }
        public static void Write(IntPtr p, short v) { Marshal.WriteInt16(p, v); }
        public static void Write(IntPtr p, ushort v) { Marshal.WriteInt16(p, unchecked((short)v)); }
        public static void Write(IntPtr p, int v) { Marshal.WriteInt32(p, v); }
        public static void Write(IntPtr p, uint v) { Marshal.WriteInt32(p, unchecked((int)v)); }
        public static void Write(IntPtr p, long v) { Marshal.WriteInt64(p, v); }
        public static void Write(IntPtr p, ulong v) { Marshal.WriteInt64(p, unchecked((long)v)); }
        public static void Write(IntPtr p, float v) { Marshal.Copy(new float[] { v }, 0, p, 1); }
        public static void Write(IntPtr p, double v) { Marshal.Copy(new double[] { v }, 0, p, 1); }
        public static void Write(IntPtr p, RustBuffer v) { Marshal.StructureToPtr(v, p, false); }
    }

    /// <summary>
    /// Base of every class wrapping a Rust object: owns one strong reference (a handle) and releases
    /// it exactly once, on <see cref="Dispose"/> or, failing that, in the finalizer. Calls in flight
    /// keep the handle alive: Dispose during a call frees it when the call returns.
    /// </summary>
    public abstract class UniffiObject : IDisposable
    {
        private readonly ulong handle;
        private long calls = 1;
        private int disposed;

        internal UniffiObject(ulong handle) { this.handle = handle; }

        /// <summary>Frees one strong reference in Rust.</summary>
        internal abstract void FreeRustHandle(ulong handle);

        /// <summary>Clones the Rust reference, as arguments and receivers are passed (Rust consumes the clone).</summary>
        internal abstract ulong CloneRustHandle(ulong handle);

        internal ulong CloneHandle()
        {
            long c;
            do
            {
                c = Interlocked.Read(ref calls);
                if (c <= 0) throw new ObjectDisposedException(GetType().Name);
            } while (Interlocked.CompareExchange(ref calls, c + 1, c) != c);
            try
            {
                return CloneRustHandle(handle);
            }
            finally
            {
                Release();
            }
        }

        private void Release()
        {
            // handle is 0 only when a constructor threw before the base constructor ran.
            if (Interlocked.Decrement(ref calls) == 0 && handle != 0) FreeRustHandle(handle);
        }

        /// <summary>Releases the Rust object now (it is freed once every C# and Rust user let it go).</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
            {
                Release();
                GC.SuppressFinalize(this);
            }
        }

        /// <summary>Releases the Rust reference of an object that was never disposed.</summary>
        ~UniffiObject()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
            {
                try { Release(); } catch (Exception) { }
            }
        }
    }

    internal delegate void UniffiPoll(ulong future, UniffiRustFutureContinuationCallback callback, ulong data);
    internal delegate F UniffiComplete<F>(ulong future, ref RustCallStatus status);
    internal delegate void UniffiCompleteVoid(ulong future, ref RustCallStatus status);
    internal delegate void UniffiFutureAction(ulong future);

    /// <summary>
    /// Drives Rust futures: poll with a continuation callback, await the callback, repeat until
    /// ready, then complete and free. Cancellation asks Rust to cancel the future.
    /// </summary>
    internal static class UniffiAsync
    {
        private const sbyte PollReady = 0;

        private static readonly UniffiHandleMap<TaskCompletionSource<sbyte>> Pending =
            new UniffiHandleMap<TaskCompletionSource<sbyte>>();

        // Kept in a static field: Rust holds the function pointer for as long as a future lives.
        internal static readonly UniffiRustFutureContinuationCallback Continuation = OnContinuation;

        private static void OnContinuation(ulong data, sbyte pollResult)
        {
            // Called by Rust: nothing may be thrown back across the FFI.
            try
            {
                TaskCompletionSource<sbyte> tcs = Pending.Remove(data);
                tcs.TrySetResult(pollResult);
            }
            catch (Exception)
            {
            }
        }

        internal static int PendingCount { get { return Pending.Count; } }

        private static async Task PollUntilReady(ulong future, UniffiPoll poll, UniffiFutureAction cancel, CancellationToken ct)
        {
            using (ct.Register(() => cancel(future)))
            {
                while (true)
                {
                    TaskCompletionSource<sbyte> tcs =
                        new TaskCompletionSource<sbyte>(TaskCreationOptions.RunContinuationsAsynchronously);
                    poll(future, Continuation, Pending.Insert(tcs));
                    sbyte result = await tcs.Task.ConfigureAwait(false);
                    if (result == PollReady) return;
                }
            }
        }

        public static async Task<T> Call<T, F>(ulong future, UniffiPoll poll, UniffiComplete<F> complete,
            UniffiFutureAction cancel, UniffiFutureAction free, Func<F, T> lift, IUniffiErrorLifter errors,
            CancellationToken ct)
        {
            try
            {
                await PollUntilReady(future, poll, cancel, ct).ConfigureAwait(false);
                RustCallStatus status = new RustCallStatus();
                F raw = complete(future, ref status);
                if (status.Code == RustCallStatus.Cancelled) throw new OperationCanceledException(ct);
                UniffiCalls.Check(status, errors);
                return lift(raw);
            }
            finally
            {
                free(future);
            }
        }

        public static async Task CallVoid(ulong future, UniffiPoll poll, UniffiCompleteVoid complete,
            UniffiFutureAction cancel, UniffiFutureAction free, IUniffiErrorLifter errors, CancellationToken ct)
        {
            try
            {
                await PollUntilReady(future, poll, cancel, ct).ConfigureAwait(false);
                RustCallStatus status = new RustCallStatus();
                complete(future, ref status);
                if (status.Code == RustCallStatus.Cancelled) throw new OperationCanceledException(ct);
                UniffiCalls.Check(status, errors);
            }
            finally
            {
                free(future);
            }
        }
    }

    /// <summary>
    /// C# tasks that Rust futures await (async callback methods): Rust signals through the dropped
    /// callback when it no longer waits, which cancels the task's token.
    /// </summary>
    internal static class UniffiForeignFutures
    {
        private static readonly UniffiHandleMap<CancellationTokenSource> Running =
            new UniffiHandleMap<CancellationTokenSource>();

        private static readonly UniffiForeignFutureDroppedCallback Dropped = OnDropped;
        private static readonly IntPtr DroppedPointer = Marshal.GetFunctionPointerForDelegate(Dropped);

        internal static int Count { get { return Running.Count; } }

        internal static void SetDroppedCallback(IntPtr outStruct, CancellationTokenSource cancellation)
        {
            UniffiForeignFutureDroppedCallbackStruct callback = new UniffiForeignFutureDroppedCallbackStruct
            {
                Handle = Running.Insert(cancellation),
                Free = DroppedPointer,
            };
            Marshal.StructureToPtr(callback, outStruct, false);
        }

        private static void OnDropped(ulong handle)
        {
            // Called by Rust: nothing may be thrown back across the FFI.
            try
            {
                CancellationTokenSource cancellation = Running.Remove(handle);
                cancellation.Cancel();
                cancellation.Dispose();
            }
            catch (Exception)
            {
            }
        }

        internal static Task<T> Failed<T>(Exception e)
        {
            TaskCompletionSource<T> failed = new TaskCompletionSource<T>();
            failed.SetException(e);
            return failed.Task;
        }
    }

    /// <summary>Value equality over the shapes records and enums hold: lists, maps, sets, byte arrays.</summary>
    internal static class UniffiEquality
    {
        public static new bool Equals(object a, object b)
        {
            if (ReferenceEquals(a, b)) return true;
            if (a == null || b == null) return false;
            IDictionary da = a as IDictionary;
            IDictionary db = b as IDictionary;
            if (da != null && db != null)
            {
                if (da.Count != db.Count) return false;
                foreach (DictionaryEntry e in da)
                {
                    if (!db.Contains(e.Key) || !Equals(e.Value, db[e.Key])) return false;
                }
                return true;
            }
            IList la = a as IList;
            IList lb = b as IList;
            if (la != null && lb != null)
            {
                if (la.Count != lb.Count) return false;
                for (int i = 0; i < la.Count; i++)
                {
                    if (!Equals(la[i], lb[i])) return false;
                }
                return true;
            }
            if (!(a is string) && a is IEnumerable && b is IEnumerable)
            {
                // sets: same size and every item of one is in the other
                List<object> sa = new List<object>();
                foreach (object o in (IEnumerable)a) sa.Add(o);
                List<object> sb = new List<object>();
                foreach (object o in (IEnumerable)b) sb.Add(o);
                if (sa.Count != sb.Count) return false;
                foreach (object x in sa)
                {
                    bool found = false;
                    foreach (object y in sb)
                    {
                        if (Equals(x, y)) { found = true; break; }
                    }
                    if (!found) return false;
                }
                return true;
            }
            return a.Equals(b);
        }

        public static int Hash(object a)
        {
            if (a == null) return 0;
            IDictionary d = a as IDictionary;
            if (d != null)
            {
                int h = 0;
                foreach (DictionaryEntry e in d) h += Hash(e.Key) ^ Hash(e.Value);
                return h;
            }
            IList l = a as IList;
            if (l != null)
            {
                int h = 17;
                foreach (object o in l) h = unchecked(h * 31 + Hash(o));
                return h;
            }
            if (!(a is string) && a is IEnumerable)
            {
                int h = 0;
                foreach (object o in (IEnumerable)a) h += Hash(o);
                return h;
            }
            return a.GetHashCode();
        }
    }

    /// <summary>Shows values in ToString: lists and maps by their items, byte arrays by their length.</summary>
    internal static class UniffiFormat
    {
        public static string Show(object o)
        {
            if (o == null) return "null";
            if (o is string) return (string)o;
            byte[] bytes = o as byte[];
            if (bytes != null) return "byte[" + bytes.Length + "]";
            IDictionary d = o as IDictionary;
            if (d != null)
            {
                StringBuilder sb = new StringBuilder("{");
                foreach (DictionaryEntry e in d)
                {
                    if (sb.Length > 1) sb.Append(", ");
                    sb.Append(Show(e.Key)).Append(": ").Append(Show(e.Value));
                }
                return sb.Append("}").ToString();
            }
            IList l = o as IList;
            if (l != null)
            {
                StringBuilder sb = new StringBuilder("[");
                for (int i = 0; i < l.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    sb.Append(Show(l[i]));
                }
                return sb.Append("]").ToString();
            }
            return o.ToString();
        }
    }

    // ---- converters of built-in types ----

    internal sealed class FfiConverterInt8 : FfiConverter<sbyte, sbyte>
    {
        public static readonly FfiConverterInt8 Instance = new FfiConverterInt8();
        public override sbyte Lift(sbyte v) { return v; }
        public override sbyte Lower(sbyte v) { return v; }
        public override sbyte Read(UniffiReader r) { return r.ReadSByte(); }
        public override void Write(sbyte v, UniffiWriter w) { w.WriteSByte(v); }
    }

    internal sealed class FfiConverterUInt8 : FfiConverter<byte, byte>
    {
        public static readonly FfiConverterUInt8 Instance = new FfiConverterUInt8();
        public override byte Lift(byte v) { return v; }
        public override byte Lower(byte v) { return v; }
        public override byte Read(UniffiReader r) { return r.ReadByte(); }
        public override void Write(byte v, UniffiWriter w) { w.WriteByte(v); }
    }

    internal sealed class FfiConverterInt16 : FfiConverter<short, short>
    {
        public static readonly FfiConverterInt16 Instance = new FfiConverterInt16();
        public override short Lift(short v) { return v; }
        public override short Lower(short v) { return v; }
        public override short Read(UniffiReader r) { return r.ReadInt16(); }
        public override void Write(short v, UniffiWriter w) { w.WriteInt16(v); }
    }

    internal sealed class FfiConverterUInt16 : FfiConverter<ushort, ushort>
    {
        public static readonly FfiConverterUInt16 Instance = new FfiConverterUInt16();
        public override ushort Lift(ushort v) { return v; }
        public override ushort Lower(ushort v) { return v; }
        public override ushort Read(UniffiReader r) { return r.ReadUInt16(); }
        public override void Write(ushort v, UniffiWriter w) { w.WriteUInt16(v); }
    }

    internal sealed class FfiConverterInt32 : FfiConverter<int, int>
    {
        public static readonly FfiConverterInt32 Instance = new FfiConverterInt32();
        public override int Lift(int v) { return v; }
        public override int Lower(int v) { return v; }
        public override int Read(UniffiReader r) { return r.ReadInt32(); }
        public override void Write(int v, UniffiWriter w) { w.WriteInt32(v); }
    }

    internal sealed class FfiConverterUInt32 : FfiConverter<uint, uint>
    {
        public static readonly FfiConverterUInt32 Instance = new FfiConverterUInt32();
        public override uint Lift(uint v) { return v; }
        public override uint Lower(uint v) { return v; }
        public override uint Read(UniffiReader r) { return r.ReadUInt32(); }
        public override void Write(uint v, UniffiWriter w) { w.WriteUInt32(v); }
    }

    internal sealed class FfiConverterInt64 : FfiConverter<long, long>
    {
        public static readonly FfiConverterInt64 Instance = new FfiConverterInt64();
        public override long Lift(long v) { return v; }
        public override long Lower(long v) { return v; }
        public override long Read(UniffiReader r) { return r.ReadInt64(); }
        public override void Write(long v, UniffiWriter w) { w.WriteInt64(v); }
    }

    internal sealed class FfiConverterUInt64 : FfiConverter<ulong, ulong>
    {
        public static readonly FfiConverterUInt64 Instance = new FfiConverterUInt64();
        public override ulong Lift(ulong v) { return v; }
        public override ulong Lower(ulong v) { return v; }
        public override ulong Read(UniffiReader r) { return r.ReadUInt64(); }
        public override void Write(ulong v, UniffiWriter w) { w.WriteUInt64(v); }
    }

    internal sealed class FfiConverterFloat32 : FfiConverter<float, float>
    {
        public static readonly FfiConverterFloat32 Instance = new FfiConverterFloat32();
        public override float Lift(float v) { return v; }
        public override float Lower(float v) { return v; }
        public override float Read(UniffiReader r) { return r.ReadSingle(); }
        public override void Write(float v, UniffiWriter w) { w.WriteSingle(v); }
    }

    internal sealed class FfiConverterFloat64 : FfiConverter<double, double>
    {
        public static readonly FfiConverterFloat64 Instance = new FfiConverterFloat64();
        public override double Lift(double v) { return v; }
        public override double Lower(double v) { return v; }
        public override double Read(UniffiReader r) { return r.ReadDouble(); }
        public override void Write(double v, UniffiWriter w) { w.WriteDouble(v); }
    }

    internal sealed class FfiConverterBoolean : FfiConverter<bool, sbyte>
    {
        public static readonly FfiConverterBoolean Instance = new FfiConverterBoolean();
        public override bool Lift(sbyte v) { return v != 0; }
        public override sbyte Lower(bool v) { return v ? (sbyte)1 : (sbyte)0; }
        public override bool Read(UniffiReader r) { return Lift(r.ReadSByte()); }
        public override void Write(bool v, UniffiWriter w) { w.WriteSByte(Lower(v)); }
    }

    /// <summary>Strings: raw UTF-8 as an argument or result, length-prefixed inside a buffer.</summary>
    internal sealed class FfiConverterString : FfiConverter<string, RustBuffer>
    {
        public static readonly FfiConverterString Instance = new FfiConverterString();

        public override string Lift(RustBuffer v) { return Encoding.UTF8.GetString(UniffiBuffers.Consume(v)); }

        public override RustBuffer Lower(string v)
        {
            if (v == null) throw new ArgumentNullException("string argument");
            byte[] b = Encoding.UTF8.GetBytes(v);
            return UniffiBuffers.FromBytes(b, b.Length);
        }

        public override string Read(UniffiReader r) { return r.ReadString(r.ReadInt32()); }

        public override void Write(string v, UniffiWriter w)
        {
            if (v == null) throw new ArgumentNullException("string value");
            byte[] b = Encoding.UTF8.GetBytes(v);
            w.WriteInt32(b.Length);
            w.WriteRaw(b);
        }
    }

    internal sealed class FfiConverterBytes : FfiConverterRustBuffer<byte[]>
    {
        public static readonly FfiConverterBytes Instance = new FfiConverterBytes();
        public override byte[] Read(UniffiReader r) { return r.ReadBytes(r.ReadInt32()); }
        public override void Write(byte[] v, UniffiWriter w)
        {
            if (v == null) throw new ArgumentNullException("byte[] value");
            w.WriteInt32(v.Length);
            w.WriteRaw(v);
        }
    }

    /// <summary>Timestamps as UTC <see cref="DateTime"/> (100 ns resolution: finer nanoseconds are truncated).</summary>
    internal sealed class FfiConverterTimestamp : FfiConverterRustBuffer<DateTime>
    {
        public static readonly FfiConverterTimestamp Instance = new FfiConverterTimestamp();
        private static readonly DateTime Epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);

        public override DateTime Read(UniffiReader r)
        {
            long seconds = r.ReadInt64();
            uint nanos = r.ReadUInt32();
            long ticks = checked(Math.Abs(seconds) * TimeSpan.TicksPerSecond + nanos / 100);
            return seconds >= 0 ? Epoch.AddTicks(ticks) : Epoch.AddTicks(-ticks);
        }

        public override void Write(DateTime v, UniffiWriter w)
        {
            long ticks = v.ToUniversalTime().Ticks - Epoch.Ticks;
            long abs = Math.Abs(ticks);
            long seconds = abs / TimeSpan.TicksPerSecond;
            uint nanos = (uint)(abs % TimeSpan.TicksPerSecond * 100);
            w.WriteInt64(ticks >= 0 ? seconds : -seconds);
            w.WriteUInt32(nanos);
        }
    }

    /// <summary>Durations as <see cref="TimeSpan"/> (100 ns resolution; negative spans are rejected).</summary>
    internal sealed class FfiConverterDuration : FfiConverterRustBuffer<TimeSpan>
    {
        public static readonly FfiConverterDuration Instance = new FfiConverterDuration();

        public override TimeSpan Read(UniffiReader r)
        {
            ulong seconds = r.ReadUInt64();
            uint nanos = r.ReadUInt32();
            return new TimeSpan(checked((long)seconds * TimeSpan.TicksPerSecond + nanos / 100));
        }

        public override void Write(TimeSpan v, UniffiWriter w)
        {
            if (v.Ticks < 0) throw new ArgumentOutOfRangeException("duration", "a Rust Duration cannot be negative");
            w.WriteUInt64((ulong)(v.Ticks / TimeSpan.TicksPerSecond));
            w.WriteUInt32((uint)(v.Ticks % TimeSpan.TicksPerSecond * 100));
        }
    }
