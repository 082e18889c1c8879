using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

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
