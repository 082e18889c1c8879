using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// A PyTorch checkpoint in torch.save's zip format (pytorch_model.bin), read through <see cref="RestrictedUnpickler"/>:
/// only a state dict (OrderedDict of tensors) is accepted, nothing is ever called or imported. Tensor data is read
/// from the archive's data/ entries on demand, one tensor at a time. Load it only when the user opted in.
/// </summary>
public sealed class TorchPickleWeightSource : IWeightSource
{
    /// <summary>The pickle itself is small (names and shapes); tensor data lives in separate entries.</summary>
    public const long MaxPickleBytes = 256L * 1024 * 1024;

    private readonly ZipArchive _zip;
    private readonly string _prefix;
    private readonly Dictionary<string, RestrictedUnpickler.TensorRef> _tensors;

    private TorchPickleWeightSource(string path, ZipArchive zip, string prefix, Dictionary<string, RestrictedUnpickler.TensorRef> tensors)
    {
        Description = path;
        _zip = zip;
        _prefix = prefix;
        _tensors = tensors;
        Names = tensors.Keys.ToHashSet(StringComparer.Ordinal);
    }

    public string Description { get; }
    public IReadOnlyCollection<string> Names { get; }

    public static TorchPickleWeightSource Open(string path)
    {
        path = Path.GetFullPath(path);
        ZipArchive zip;
        try
        {
            var stream = UserFile.OpenRead(path, long.MaxValue, "PyTorch checkpoint", what => ModelFormatException.For(path, null, what));
            zip = new ZipArchive(stream, ZipArchiveMode.Read);
        }
        catch (InvalidDataException e)
        {
            throw ModelFormatException.For(path, null,
                "is not a zip archive: only the zip format of torch.save (PyTorch ≥ 1.6) is supported, not the legacy tar/pickle format.", e);
        }
        try
        {
            var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                .ToList();
            if (pickles.Count != 1)
                throw ModelFormatException.For(path, null, $"expected one <archive>/data.pkl entry, found {pickles.Count}.");
            var prefix = pickles[0].FullName[..^"data.pkl".Length];
            var order = zip.GetEntry(prefix + "byteorder");
            if (order is not null)
            {
                using var reader = new StreamReader(order.Open());
                var text = reader.ReadToEnd().Trim();
                if (text != "little") throw ModelFormatException.For(path, null, $"byte order '{text}' is not supported (only little-endian).");
            }
            if (pickles[0].Length > MaxPickleBytes)
                throw ModelFormatException.For(path, null, $"data.pkl is {pickles[0].Length} bytes; at most {MaxPickleBytes} are accepted.");
            var bytes = new byte[pickles[0].Length];
            using (var stream = pickles[0].Open()) stream.ReadExactly(bytes);
            object? root;
            try
            {
                root = new RestrictedUnpickler(bytes).Load();
            }
            catch (RestrictedUnpickler.PickleException e)
            {
                throw ModelFormatException.For(path, null, $"refused: {e.Message}", e);
            }
            if (root is not RestrictedUnpickler.PickleDict dict)
                throw ModelFormatException.For(path, null, $"the pickle holds a {RestrictedUnpickler.Describe(root)}, not a state dict.");
            var tensors = new Dictionary<string, RestrictedUnpickler.TensorRef>(StringComparer.Ordinal);
            foreach (var (key, value) in dict.Items)
            {
                if (key is not string name) throw ModelFormatException.For(path, null,
                    $"a state-dict key is a {RestrictedUnpickler.Describe(key)}, not a string.");
                if (value is not RestrictedUnpickler.TensorRef tensor)
                    throw ModelFormatException.For(path, name, $"is a {RestrictedUnpickler.Describe(value)}, not a tensor.");
                CheckTensor(path, name, tensor, zip, prefix);
                tensors[name] = tensor;
            }
            CheckStorageSizes(path, new FileInfo(path).Length, tensors);
            return new TorchPickleWeightSource(path, zip, prefix, tensors);
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    /// <summary>A storage may hold this many elements beyond twice what its views use (alignment, a sliced buffer).</summary>
    private const long StorageSlackElements = 1 << 16;

    /// <summary>
    /// Refuses storages far larger than the views on them, or than the file: a 2.37 MB checkpoint whose [64, 64]
    /// tensor viewed a deflated 1.9 GB storage took RSS to 2 GB. Reads only cover the views (<see cref="ReadFloat32"/>).
    /// </summary>
    private static void CheckStorageSizes(string path, long fileBytes, Dictionary<string, RestrictedUnpickler.TensorRef> tensors)
    {
        foreach (var group in tensors.GroupBy(t => t.Value.Storage.Key))
        {
            var storage = group.First().Value.Storage;
            var used = group.Where(t => t.Value.Size.All(s => s > 0)).Select(t => Span(t.Value)).ToList();
            var covered = used.Count == 0 ? 0 : used.Max(u => u.Last) - used.Min(u => u.First) + 1;
            var bytes = storage.ElementCount * SafetensorsDtype.SizeOf(SafetensorsDtype.FromScalarType(storage.Dtype));
            var names = string.Join(", ", group.Select(t => t.Key).Take(3)) + (group.Count() > 3 ? ", …" : "");
            if (storage.ElementCount > 2 * covered + StorageSlackElements)
                throw ModelFormatException.For(path, group.First().Key,
                    $"storage '{storage.Key}' holds {storage.ElementCount:N0} elements, but its tensors ({names}) use " +
                    $"{covered:N0}: refusing a storage far larger than its views.");
            if (bytes > 2 * fileBytes + (1 << 20))
                throw ModelFormatException.For(path, group.First().Key,
                    $"storage '{storage.Key}' unpacks to {bytes:N0} bytes from a file of {fileBytes:N0}: refusing it.");
        }
    }

    /// <summary>The first and last storage element a view reads (strides are non-negative, sizes positive).</summary>
    private static (long First, long Last) Span(RestrictedUnpickler.TensorRef t)
    {
        var last = t.Offset;
        for (var i = 0; i < t.Size.Length; i++) last += (t.Size[i] - 1) * t.Stride[i];
        return (t.Offset, last);
    }

    private static void CheckTensor(string path, string name, RestrictedUnpickler.TensorRef t, ZipArchive zip, string prefix)
    {
        var storage = t.Storage;
        if (storage.Key.Length is 0 or > 64 || !storage.Key.All(char.IsAsciiLetterOrDigit))
            throw ModelFormatException.For(path, name, $"storage key '{storage.Key}' is not a plain name.");
        var entry = zip.GetEntry($"{prefix}data/{storage.Key}")
            ?? throw ModelFormatException.For(path, name, $"storage '{storage.Key}' has no data entry in the archive.");
        var elementSize = SafetensorsDtype.SizeOf(SafetensorsDtype.FromScalarType(storage.Dtype));
        if (entry.Length != storage.ElementCount * elementSize)
            throw ModelFormatException.For(path, name,
                $"storage '{storage.Key}' is {entry.Length} bytes; " +
                $"{storage.ElementCount} elements of {storage.Dtype} need {storage.ElementCount * elementSize}.");
        if (t.Size.Length != t.Stride.Length || t.Size.Length > 16)
            throw ModelFormatException.For(path, name, "size and stride do not match.");
        if (t.Offset < 0 || t.Size.Any(s => s < 0) || t.Stride.Any(s => s < 0))
            throw ModelFormatException.For(path, name, "negative offset, size or stride.");
        long last = t.Offset;
        try
        {
            if (t.Size.All(s => s > 0))
                for (var i = 0; i < t.Size.Length; i++) last = checked(last + (t.Size[i] - 1) * t.Stride[i]);
        }
        catch (OverflowException)
        {
            throw ModelFormatException.For(path, name, "the view overflows.");
        }
        if (t.Size.All(s => s > 0) && last >= storage.ElementCount)
            throw ModelFormatException.For(path, name, $"the view reaches element {last} of a storage of {storage.ElementCount}.");
    }

    public long[] Shape(string name) => Get(name).Size;

    public torch.Tensor ReadFloat32(string name)
    {
        var t = Get(name);
        if (!torch.is_floating_point(torch.empty(0, t.Storage.Dtype)))
            throw ModelFormatException.For(Description, name, $"is {t.Storage.Dtype}, not a floating-point tensor.");
        var entry = _zip.GetEntry($"{_prefix}data/{t.Storage.Key}")!;
        if (t.Size.Any(s => s == 0)) return torch.zeros(t.Size, torch.float32);
        // Only the elements the view reads: [first, last] of the storage, skipped to and read in chunks (a span over
        // native memory stops at int.MaxValue bytes; an fp32 embedding of a 152k vocabulary is 2.2 GB).
        var (first, last) = Span(t);
        var elementSize = SafetensorsDtype.SizeOf(SafetensorsDtype.FromScalarType(t.Storage.Dtype));
        using var covered = torch.empty(last - first + 1, t.Storage.Dtype);
        lock (_zip)
        {
            try
            {
                using var stream = entry.Open();
                Skip(stream, first * elementSize);
                ReadInto(stream, covered, elementSize);
            }
            catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
            {
                throw ModelFormatException.For(Description, name, $"storage '{t.Storage.Key}' cannot be read: {e.Message}", e);
            }
        }
        using var view = covered.as_strided(t.Size, t.Stride, 0);
        return view.to(torch.float32).contiguous();
    }

    private static void Skip(Stream stream, long bytes)
    {
        if (stream.CanSeek)
        {
            stream.Seek(bytes, SeekOrigin.Current);
            return;
        }
        var buffer = new byte[Math.Min(bytes, 1 << 20)];
        for (var left = bytes; left > 0;)
        {
            var read = stream.Read(buffer, 0, (int)Math.Min(left, buffer.Length));
            if (read == 0) throw new EndOfStreamException("the storage ends before the view starts.");
            left -= read;
        }
    }

    /// <summary>How much one read fills at most (a span over a tensor's bytes stops at int.MaxValue); tests shrink it.</summary>
    internal static int ReadChunkBytes { get; set; } = 1 << 30;

    private static void ReadInto(Stream stream, torch.Tensor destination, int elementSize)
    {
        var chunk = Math.Max(1, ReadChunkBytes / elementSize);
        for (long start = 0; start < destination.shape[0]; start += chunk)
        {
            using var slice = destination.narrow(0, start, Math.Min(chunk, destination.shape[0] - start));
            stream.ReadExactly(slice.bytes);
        }
    }

    private RestrictedUnpickler.TensorRef Get(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw ModelFormatException.For(Description, name, "no tensor of that name.");

    public void Dispose() => _zip.Dispose();
}

/// <summary>
/// A pickle reader for state dicts only. It implements the opcodes torch.save emits (protocols 2–4) and resolves only
/// these globals: collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the
/// typed storage classes (torch.FloatStorage, …). Any other global, opcode or call is a <see cref="PickleException"/>;
/// nothing is imported or executed, so a malicious pickle can at most fail to load.
/// </summary>
public sealed class RestrictedUnpickler(byte[] data)
{
    public sealed class PickleException(string message) : Exception(message);

    public sealed record Global(string Module, string Name);
    public sealed record StorageRef(string Key, torch.ScalarType Dtype, long ElementCount);
    public sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);
    public sealed class PickleDict { public List<(object? Key, object? Value)> Items { get; } = []; }
    private sealed class Mark { public static readonly Mark Instance = new(); }

    private static readonly Dictionary<string, torch.ScalarType> Storages = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = torch.ScalarType.Float32, ["HalfStorage"] = torch.ScalarType.Float16,
        ["BFloat16Storage"] = torch.ScalarType.BFloat16, ["DoubleStorage"] = torch.ScalarType.Float64,
        ["LongStorage"] = torch.ScalarType.Int64, ["IntStorage"] = torch.ScalarType.Int32,
        ["ShortStorage"] = torch.ScalarType.Int16, ["CharStorage"] = torch.ScalarType.Int8,
        ["ByteStorage"] = torch.ScalarType.Byte, ["BoolStorage"] = torch.ScalarType.Bool,
    };

    private const int MaxStack = 1 << 20, MaxMemo = 1 << 22;
    private readonly List<object?> _stack = [];
    private readonly Dictionary<long, object?> _memo = [];
    private int _pos;

    public static string Describe(object? value) => value switch
    {
        null => "None",
        Global g => $"global {g.Module}.{g.Name}",
        _ => value.GetType().Name,
    };

    public object? Load()
    {
        while (true)
        {
            var op = ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    var proto = ReadByte();
                    if (proto > 5) throw Fail($"pickle protocol {proto} is not supported.");
                    break;
                case 0x95: Skip(8); break;                                     // FRAME
                case (byte)'.': // STOP
                    if (_stack.Count != 1) throw Fail($"STOP with {_stack.Count} values on the stack.");
                    return _stack[0];
                case (byte)'(': Push(Mark.Instance); break;                    // MARK
                case (byte)')': Push(Array.Empty<object?>()); break;           // EMPTY_TUPLE
                case (byte)'}': Push(new PickleDict()); break;                 // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break;              // EMPTY_LIST
                case (byte)'N': Push(null); break;                             // NONE
                case 0x88: Push(true); break;                                  // NEWTRUE
                case 0x89: Push(false); break;                                 // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Read(4))); break;  // BININT
                case (byte)'K': Push((long)ReadByte()); break;                 // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2))); break;  // BININT2
                case 0x8a: Push(ReadLong(ReadByte())); break;                  // LONG1
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Read(8))); break;  // BINFLOAT
                case (byte)'X': Push(ReadString(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))); break;  // BINUNICODE
                case 0x8c: Push(ReadString(ReadByte())); break;                // SHORT_BINUNICODE
                case (byte)'U': Push(ReadString(ReadByte())); break;           // SHORT_BINSTRING
                case (byte)'T': Push(ReadString(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))); break;  // BINSTRING
                case (byte)'c': // GLOBAL "module\nname\n"
                    Push(Resolve(ReadLine(), ReadLine()));
                    break;
                case 0x93: // STACK_GLOBAL
                    var name = Pop() as string ?? throw Fail("STACK_GLOBAL name is not a string.");
                    var module = Pop() as string ?? throw Fail("STACK_GLOBAL module is not a string.");
                    Push(Resolve(module, name));
                    break;
                case (byte)'q': Memo(ReadByte()); break;                       // BINPUT
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(Read(4))); break;  // LONG_BINPUT
                case 0x94: Memo(_memo.Count); break;                           // MEMOIZE
                case (byte)'h': Push(Recall(ReadByte())); break;               // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))); break;  // LONG_BINGET
                case (byte)'t': Push(PopToMark().ToArray()); break;            // TUPLE
                case 0x85: Push(new[] { Pop() }); break;                       // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }  // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }  // TUPLE3
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; }  // APPEND
                case (byte)'e': { var items = PopToMark(); AsList(Peek()).AddRange(items); break; }  // APPENDS
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek()).Items.Add((k, v)); break; }  // SETITEM
                case (byte)'u': // SETITEMS
                    {
                        var items = PopToMark();
                        if (items.Count % 2 != 0) throw Fail("SETITEMS with an odd number of values.");
                        var dict = AsDict(Peek());
                        for (var i = 0; i < items.Count; i += 2) dict.Items.Add((items[i], items[i + 1]));
                        break;
                    }
                case (byte)'Q': // BINPERSID
                    Push(PersistentLoad(Pop()));
                    break;
                case (byte)'R': // REDUCE
                    {
                        var args = Pop() as object?[] ?? throw Fail("REDUCE arguments are not a tuple.");
                        Push(Call(Pop(), args));
                        break;
                    }
                case (byte)'b': // BUILD: only the attribute dict of a state dict (_metadata), which is dropped
                    {
                        var state = Pop();
                        if (Peek() is not PickleDict || state is not (PickleDict or null))
                            throw Fail($"BUILD of a {Describe(Peek())} with a {Describe(state)} is not allowed.");
                        break;
                    }
                default:
                    throw Fail($"opcode 0x{op:x2} ('{(char)op}') is not allowed in a state-dict pickle.");
            }
        }
    }

    private static object Resolve(string module, string name) => (module, name) switch
    {
        ("collections", "OrderedDict") => new Global(module, name),
        ("torch._utils", "_rebuild_tensor_v2" or "_rebuild_parameter") => new Global(module, name),
        ("torch", _) when Storages.ContainsKey(name) => new Global(module, name),
        _ => throw new PickleException($"global '{module}.{name}' is not allowed: a state dict needs only collections.OrderedDict, "
            + "torch._utils._rebuild_tensor_v2 and torch.*Storage. Nothing was executed."),
    };

    private object? Call(object? callable, object?[] args)
    {
        if (callable is not Global g) throw Fail($"REDUCE of a {Describe(callable)} is not allowed.");
        switch (g.Name)
        {
            case "OrderedDict":
                if (args.Length != 0) throw Fail("OrderedDict with arguments is not allowed.");
                return new PickleDict();
            case "_rebuild_tensor_v2":
                if (args.Length < 4) throw Fail("_rebuild_tensor_v2 needs (storage, offset, size, stride, …).");
                var storage = args[0] as StorageRef ?? throw Fail("_rebuild_tensor_v2: the first argument is not a storage.");
                return new TensorRef(storage, AsLong(args[1]), AsLongs(args[2]), AsLongs(args[3]));
            case "_rebuild_parameter":
                return args.Length >= 1 && args[0] is TensorRef t ? t : throw Fail("_rebuild_parameter: the first argument is not a tensor.");
            default:
                throw Fail($"calling {g.Module}.{g.Name} is not allowed.");
        }
    }

    private object PersistentLoad(object? pid)
    {
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage" || t[1] is not Global { Module: "torch" } type
            || !Storages.TryGetValue(type.Name, out var dtype) || t[2] is not string key)
            throw Fail($"persistent id {Describe(pid)} is not a ('storage', torch.*Storage, key, location, numel) tuple.");
        var count = AsLong(t[4]);
        if (count < 0) throw Fail("negative storage size.");
        return new StorageRef(key, dtype, count);
    }

    private long AsLong(object? v) => v as long? ?? throw Fail($"expected an integer, got {Describe(v)}.");

    private long[] AsLongs(object? v) => v is object?[] items ? items.Select(AsLong).ToArray()
        : throw Fail($"expected a tuple of integers, got {Describe(v)}.");

    private List<object?> AsList(object? v) => v as List<object?> ?? throw Fail($"APPEND to a {Describe(v)}.");

    private PickleDict AsDict(object? v) => v as PickleDict ?? throw Fail($"SETITEM on a {Describe(v)}.");

    private void Push(object? v)
    {
        if (_stack.Count >= MaxStack) throw Fail("the pickle stack is too deep.");
        _stack.Add(v);
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || _stack[^1] is Mark) throw Fail("stack underflow.");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek() => _stack.Count > 0 && _stack[^1] is not Mark ? _stack[^1] : throw Fail("stack underflow.");

    private List<object?> PopToMark()
    {
        var mark = _stack.FindLastIndex(v => v is Mark);
        if (mark < 0) throw Fail("no MARK on the stack.");
        var items = _stack.GetRange(mark + 1, _stack.Count - mark - 1);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    private void Memo(long index)
    {
        if (_memo.Count >= MaxMemo) throw Fail("too many memo entries.");
        _memo[index] = Peek();
    }

    private object? Recall(long index) => _memo.TryGetValue(index, out var v) ? v : throw Fail($"memo {index} is not defined.");

    private byte ReadByte() => _pos < data.Length ? data[_pos++] : throw Fail("the pickle ends early.");

    private ReadOnlySpan<byte> Read(long n)
    {
        if (n < 0 || n > data.Length - _pos) throw Fail("the pickle ends early.");
        var span = data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    private void Skip(int n) => Read(n);

    private string ReadString(long n) => Encoding.UTF8.GetString(Read(n));

    private string ReadLine()
    {
        var end = Array.IndexOf(data, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 256) throw Fail("a GLOBAL name is not terminated.");
        var s = Encoding.ASCII.GetString(data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private long ReadLong(int n)
    {
        if (n > 8) throw Fail($"an integer of {n} bytes is too large.");
        var bytes = Read(n);
        long v = 0;
        for (var i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
        if (n is > 0 and < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
        return v;
    }

    private PickleException Fail(string what) => new($"{what} (at byte {_pos})");
}
