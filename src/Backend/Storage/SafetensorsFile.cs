using System.Buffers;
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;
using AttentionViz.Backend.Platform;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>One tensor's header entry. Begin and End are offsets into the data section (after the header).</summary>
public sealed record SafetensorsTensorInfo(string Name, string Dtype, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>
/// A read-only, memory-mapped safetensors file (https://github.com/huggingface/safetensors). The whole header is
/// validated in <see cref="Open"/> before any tensor data is touched; every violation is a
/// <see cref="ModelFormatException"/>. Spans and memories handed out point into the mapping and are valid until
/// <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the Rust reference implementation uses the same bound).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private const string MetadataKey = "__metadata__";

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafetensorsTensorInfo> _byName;
    private bool _disposed;

    public string Path { get; }

    /// <summary>Total file size in bytes.</summary>
    public long FileLength { get; }

    /// <summary>The tensors in header order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The optional "__metadata__" entries (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsFile(string path, long fileLength, MemoryMappedFile file, MemoryMappedViewAccessor view, byte* basePtr)
    {
        Path = path;
        FileLength = fileLength;
        _file = file;
        _view = view;
        _base = basePtr;
        try
        {
            (Tensors, Metadata, _dataStart) = ParseHeader();
            _byName = Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        }
        catch
        {
            ReleaseMapping();
            throw;
        }
    }

    /// <summary>Maps <paramref name="path"/> and validates its header.</summary>
    /// <exception cref="ModelFormatException">The file is not a valid safetensors file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafetensorsFile Open(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        // Mapped, not read: no size bound beyond the header's, but never a FIFO or device.
        var stream = UserFile.OpenRead(full, long.MaxValue, "safetensors file", what => ModelFormatException.For(full, null, what));
        MemoryMappedFile? mmf = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            var length = stream.Length;
            if (length < 8)
                throw ModelFormatException.For(full, null,
                    $"the file is {length} bytes long; a safetensors file has at least an 8-byte header length.");
            mmf = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* ptr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
            ptr += view.PointerOffset;
            return new SafetensorsFile(full, length, mmf, view, ptr);
        }
        catch
        {
            view?.Dispose();
            if (mmf is not null) mmf.Dispose(); else stream.Dispose();
            throw;
        }
    }

    private (IReadOnlyList<SafetensorsTensorInfo>, IReadOnlyDictionary<string, string>, long) ParseHeader()
    {
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_base, 8));
        if (headerLength > (ulong)MaxHeaderBytes)
            throw Error(null, $"the header length is {headerLength} bytes, more than the {MaxHeaderBytes} allowed.");
        if (headerLength > (ulong)(FileLength - 8))
            throw Error(null, $"the header length is {headerLength} bytes but only {FileLength - 8} bytes follow it (truncated file?).");
        if (headerLength < 2)
            throw Error(null, $"the header is {headerLength} bytes long; it must hold a JSON object.");
        var dataStart = 8 + (long)headerLength;
        var dataLength = FileLength - dataStart;

        var headerBytes = new ReadOnlySpan<byte>(_base + 8, (int)headerLength);
        if (!Utf8.IsValid(headerBytes))
            throw Error(null, $"the header is not valid UTF-8 (first bad byte at offset {8 + InvalidUtf8At(headerBytes)} of the file).");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(new MappedMemory(this, _base + 8, (int)headerLength).Memory,
                new JsonDocumentOptions { MaxDepth = 8, AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            throw Error(null, $"the header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Error(null, $"the header is a JSON {root.ValueKind}, not an object.");

            var tensors = new List<SafetensorsTensorInfo>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var sawMetadata = false;
            string? current = null;
            try
            {
                foreach (var property in root.EnumerateObject())
                {
                    var name = property.Name;
                    current = name;
                    if (name == MetadataKey)
                    {
                        if (sawMetadata) throw Error(null, $"\"{MetadataKey}\" appears twice in the header.");
                        sawMetadata = true;
                        ParseMetadata(property.Value, metadata);
                        continue;
                    }
                    if (!names.Add(name)) throw Error(name, "the name appears more than once in the header.");
                    tensors.Add(ParseTensor(name, property.Value, dataLength));
                }
            }
            catch (InvalidOperationException e) when (e.TargetSite?.Module.Assembly == typeof(JsonElement).Assembly)
            {
                // A \uD800-style escape: valid JSON, but no Unicode text (a lone surrogate).
                var where = current is null ? "the first name" : $"the entry '{current}' or the name after it";
                throw Error(null, $"the header holds a string that is not valid Unicode (a lone surrogate escape) in {where}.", e);
            }

            CheckCoverage(tensors, dataLength);
            return (tensors, metadata, dataStart);
        }
    }

    /// <summary>
    /// The format's rule: the tensors' data_offsets tile the data section exactly, back to back from 0 to its end, with
    /// no gap, overlap or trailing byte. A header length off by one or offsets shifted by one break it, where they
    /// would otherwise load every weight a byte off.
    /// </summary>
    private void CheckCoverage(List<SafetensorsTensorInfo> tensors, long dataLength)
    {
        var sorted = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ToArray();
        long end = 0;
        SafetensorsTensorInfo? previous = null;
        foreach (var t in sorted)
        {
            if (t.Begin < end)
                throw Error(t.Name, $"data_offsets [{t.Begin}, {t.End}] overlap tensor '{previous!.Name}' at [{previous.Begin}, {previous.End}].");
            if (t.Begin > end)
                throw Error(t.Name, $"data_offsets [{t.Begin}, {t.End}] leave a gap of {t.Begin - end} bytes " +
                    (previous is null ? "at the start of the data section" : $"after tensor '{previous.Name}', which ends at {end}") +
                    ": the header length or the offsets are wrong.");
            end = t.End;
            previous = t;
        }
        if (end != dataLength)
            throw Error(previous?.Name, $"the data section holds {dataLength} bytes but the tensors' data_offsets end at {end}" +
                $"{(previous is null ? "" : $" (tensor '{previous.Name}')")}: {dataLength - end} bytes are not any tensor's; " +
                "the header length or the offsets are wrong.");
    }

    private static int InvalidUtf8At(ReadOnlySpan<byte> bytes)
    {
        Utf8.ToUtf16(bytes, new char[bytes.Length], out var read, out _, replaceInvalidSequences: false);
        return read;
    }

    private void ParseMetadata(JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(null, $"\"{MetadataKey}\" is a JSON {value.ValueKind}, not an object of strings.");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw Error(null, $"\"{MetadataKey}\" entry '{entry.Name}' is a JSON {entry.Value.ValueKind}, not a string.");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw Error(null, $"\"{MetadataKey}\" entry '{entry.Name}' appears twice.");
        }
    }

    private SafetensorsTensorInfo ParseTensor(string name, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(name, $"the header entry is a JSON {value.ValueKind}, not an object with dtype, shape and data_offsets.");
        string? dtype = null;
        long[]? shape = null;
        long[]? offsets = null;
        foreach (var field in value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype" when dtype is null:
                    if (field.Value.ValueKind != JsonValueKind.String) throw Error(name, "dtype is not a string.");
                    dtype = field.Value.GetString()!;
                    break;
                case "shape" when shape is null:
                    shape = ReadIntegers(name, "shape", field.Value);
                    break;
                case "data_offsets" when offsets is null:
                    offsets = ReadIntegers(name, "data_offsets", field.Value);
                    break;
                case "dtype" or "shape" or "data_offsets":
                    throw Error(name, $"'{field.Name}' appears twice.");
                default:
                    throw Error(name, $"unexpected field '{field.Name}' (expected dtype, shape, data_offsets).");
            }
        }
        if (dtype is null) throw Error(name, "dtype is missing.");
        if (shape is null) throw Error(name, "shape is missing.");
        if (offsets is null) throw Error(name, "data_offsets is missing.");

        var elementSize = SafetensorsDtype.SizeOf(dtype);
        if (elementSize == 0)
            throw Error(name, $"unknown dtype '{dtype}' (known: {string.Join(", ", SafetensorsDtype.All)}).");
        for (var i = 0; i < shape.Length; i++)
            if (shape[i] < 0) throw Error(name, $"shape [{string.Join(", ", shape)}] has a negative dimension ({shape[i]} at index {i}).");
        var expected = SafetensorsDtype.ByteLength(shape, elementSize)
            ?? throw Error(name, $"shape [{string.Join(", ", shape)}] of {dtype} overflows a 64-bit byte count.");
        if (offsets.Length != 2)
            throw Error(name, $"data_offsets has {offsets.Length} entries; it must be [begin, end].");
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin < 0 || end < begin)
            throw Error(name, $"data_offsets [{begin}, {end}] are not an ordered pair of non-negative offsets.");
        if (end > dataLength)
            throw Error(name, $"data_offsets [{begin}, {end}] are out of range: the data section holds {dataLength} bytes.");
        if (end - begin != expected)
            throw Error(name,
                $"data_offsets [{begin}, {end}] span {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}.");
        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private long[] ReadIntegers(string tensor, string field, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array) throw Error(tensor, $"{field} is a JSON {value.ValueKind}, not an array.");
        var length = value.GetArrayLength();
        if (length > 64) throw Error(tensor, $"{field} has {length} entries; at most 64 are supported.");
        var result = new long[length];
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var v))
                throw Error(tensor, $"{field}[{i}] is {item.GetRawText()}, not a 64-bit integer.");
            result[i++] = v;
        }
        return result;
    }

    private ModelFormatException Error(string? tensor, string what, Exception? inner = null) =>
        ModelFormatException.For(Path, tensor, what, inner);

    public bool Contains(string name) => _byName.ContainsKey(name);

    public bool TryGetInfo(string name, out SafetensorsTensorInfo info) => _byName.TryGetValue(name, out info!);

    /// <exception cref="ModelFormatException">There is no tensor of that name.</exception>
    public SafetensorsTensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out var info) ? info : throw Error(name, "no tensor of that name in the file.");

    /// <summary>The tensor's raw little-endian bytes, straight from the mapping.</summary>
    public ReadOnlySpan<byte> GetSpan(string name)
    {
        var info = GetInfo(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ReadOnlySpan<byte>(_base + _dataStart + info.Begin, CheckedInt(info));
    }

    /// <summary>The tensor's raw bytes as memory over the mapping (valid until the file is disposed).</summary>
    public ReadOnlyMemory<byte> GetMemory(string name)
    {
        var info = GetInfo(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new MappedMemory(this, _base + _dataStart + info.Begin, CheckedInt(info)).Memory;
    }

    private int CheckedInt(SafetensorsTensorInfo info) =>
        info.ByteLength <= int.MaxValue ? (int)info.ByteLength
            : throw Error(info.Name, $"{info.ByteLength} bytes is more than the 2 GiB a single span can hold.");

    /// <summary>A contiguous CPU tensor of the file's dtype holding a copy of the data.</summary>
    public torch.Tensor Read(string name)
    {
        var info = GetInfo(name);
        var source = GetSpan(name);
        if (info.Dtype == SafetensorsDtype.BOOL && source.IndexOfAnyExcept((byte)0, (byte)1) is var bad and >= 0)
            throw Error(name, $"BOOL byte {bad} is {source[bad]}, not 0 or 1.");
        var tensor = torch.empty(info.Shape, SafetensorsDtype.ToScalarType(info.Dtype));
        if (source.Length > 0) source.CopyTo(tensor.bytes);
        return tensor;
    }

    /// <summary>
    /// A contiguous float32 CPU tensor. F32 is copied; F16 and BF16 are widened exactly; F64 is rounded to nearest.
    /// </summary>
    /// <exception cref="ModelFormatException">The tensor is missing or not of a floating-point dtype.</exception>
    public torch.Tensor ReadFloat32(string name)
    {
        var info = GetInfo(name);
        if (!SafetensorsDtype.IsFloatingPoint(info.Dtype))
            throw Error(name, $"is {info.Dtype}, but a float32 tensor was asked for (only F32, F16, BF16 and F64 convert).");
        var source = GetSpan(name);
        var tensor = torch.empty(info.Shape, torch.ScalarType.Float32);
        if (source.Length == 0) return tensor;
        var target = MemoryMarshal.Cast<byte, float>(tensor.bytes);
        switch (info.Dtype)
        {
            case SafetensorsDtype.F32:
                source.CopyTo(tensor.bytes);
                break;
            case SafetensorsDtype.F16:
                for (var i = 0; i < target.Length; i++)
                    target[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source.Slice(2 * i, 2));
                break;
            case SafetensorsDtype.BF16:
                for (var i = 0; i < target.Length; i++)
                    target[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(2 * i, 2)) << 16);
                break;
            case SafetensorsDtype.F64:
                for (var i = 0; i < target.Length; i++)
                    target[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source.Slice(8 * i, 8));
                break;
        }
        return tensor;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ReleaseMapping();
    }

    private void ReleaseMapping()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }

    /// <summary>Exposes part of the mapping as <see cref="Memory{T}"/> without copying.</summary>
    private sealed class MappedMemory(SafetensorsFile owner, byte* start, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan()
        {
            ObjectDisposedException.ThrowIf(owner._disposed, owner);
            return new Span<byte>(start, length);
        }

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            ObjectDisposedException.ThrowIf(owner._disposed, owner);
            return new MemoryHandle(start + elementIndex);
        }

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}
