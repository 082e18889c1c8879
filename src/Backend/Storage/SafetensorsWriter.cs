using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// Writes safetensors files: an 8-byte little-endian header length, a JSON header padded with spaces to a multiple
/// of 8 bytes (as Hugging Face's implementation does), then the tensors' bytes back to back in the order given.
/// Data is streamed from the callers' buffers to the file (no intermediate copy of the whole payload); a
/// <see cref="StreamedTensor"/> is written block by block by its callback, so it never has to exist in memory at once.
/// The file is written beside <c>path</c> under a temporary name and renamed into place (<see cref="AtomicFile"/>), so
/// readers never see a partial file.
/// </summary>
public static class SafetensorsWriter
{
    /// <param name="Length">the data's length when the caller holds it (checked against the shape), else null</param>
    private sealed record Entry(string Name, string Dtype, long[] Shape, long? Length, Action<TensorDataWriter> Write);

    /// <summary>Writes raw tensors. <c>Data</c> holds each tensor's little-endian bytes, row-major.</summary>
    /// <exception cref="ArgumentException">A name is duplicated or reserved, a dtype unknown, or a data length does not match its shape.</exception>
    public static void Write(
        string path,
        IEnumerable<(string Name, string Dtype, long[] Shape, ReadOnlyMemory<byte> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = tensors.Select(t =>
        {
            var data = t.Data;
            return new Entry(t.Name, t.Dtype, t.Shape, data.Length, writer => writer.Write(data.Span));
        }).ToList();
        WriteEntries(path, entries, metadata);
    }

    /// <summary>
    /// Writes tensors whose bytes their callbacks write in order, block by block: the header is built from the shapes
    /// first, and each callback must write exactly what its shape and dtype take.
    /// </summary>
    /// <exception cref="ArgumentException">A name is duplicated or reserved, a dtype unknown, or a shape negative.</exception>
    /// <exception cref="InvalidOperationException">A callback wrote more or fewer bytes than its shape takes.</exception>
    public static void Write(string path, IEnumerable<StreamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        WriteEntries(path, tensors.Select(t => new Entry(t.Name, t.Dtype, t.Shape, null, t.WriteData)).ToList(), metadata);
    }

    /// <summary>
    /// Writes TorchSharp tensors with their own dtypes. Contiguous CPU tensors are written straight from their
    /// storage; others are made contiguous on the CPU first.
    /// </summary>
    public static void Write(
        string path,
        IEnumerable<(string Name, torch.Tensor Tensor)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var temporaries = new List<torch.Tensor>();
        try
        {
            var entries = new List<Entry>();
            foreach (var (name, tensor) in tensors)
            {
                var t = tensor;
                if (t.device_type != DeviceType.CPU || !t.is_contiguous())
                {
                    t = t.cpu().contiguous();
                    temporaries.Add(t);
                }
                var dtype = SafetensorsDtype.FromScalarType(t.dtype);
                var length = t.numel() * t.element_size();
                entries.Add(new Entry(name, dtype, t.shape, length, writer => writer.Write(length == 0 ? default : t.bytes)));
            }
            WriteEntries(path, entries, metadata);
        }
        finally
        {
            foreach (var t in temporaries) t.Dispose();
        }
    }

    private static void WriteEntries(string path, List<Entry> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var (header, lengths) = BuildHeader(entries, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            for (var i = 0; i < entries.Count; i++)
            {
                var writer = new TensorDataWriter(stream, entries[i].Name, lengths[i]);
                entries[i].Write(writer);
                writer.EnsureComplete();
            }
        });
    }

    /// <summary>The padded header, and each tensor's byte length as its shape and dtype say.</summary>
    private static (byte[] Header, long[] Lengths) BuildHeader(List<Entry> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var lengths = new long[entries.Count];
        var names = new HashSet<string>(StringComparer.Ordinal);
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            for (var i = 0; i < entries.Count; i++)
            {
                var e = entries[i];
                if (e.Name == "__metadata__")
                    throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor.");
                if (!names.Add(e.Name))
                    throw new ArgumentException($"Tensor '{e.Name}' is given more than once.");
                var size = SafetensorsDtype.SizeOf(e.Dtype);
                if (size == 0)
                    throw new ArgumentException($"Tensor '{e.Name}': unknown dtype '{e.Dtype}' (known: {string.Join(", ", SafetensorsDtype.All)}).");
                var expected = SafetensorsDtype.ByteLength(e.Shape, size)
                    ?? throw new ArgumentException($"Tensor '{e.Name}': shape [{string.Join(", ", e.Shape)}] has a negative dimension or overflows.");
                if (e.Length is { } given && expected != given)
                    throw new ArgumentException($"Tensor '{e.Name}': " +
                        $"{e.Length} bytes of data, but shape [{string.Join(", ", e.Shape)}] of {e.Dtype} needs {expected}.");
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", e.Dtype);
                json.WriteStartArray("shape");
                foreach (var d in e.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + expected);
                json.WriteEndArray();
                json.WriteEndObject();
                lengths[i] = expected;
                offset += expected;
            }
            json.WriteEndObject();
        }
        var padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return (header, lengths);
    }
}

/// <summary>A tensor of a safetensors file whose bytes <paramref name="WriteData"/> writes, in order, when its turn comes.</summary>
public sealed record StreamedTensor(string Name, string Dtype, long[] Shape, Action<TensorDataWriter> WriteData);

/// <summary>
/// Where one tensor's bytes go, block by block: it refuses a byte more than the tensor's shape takes, and the writer
/// checks afterwards that none is missing.
/// </summary>
public sealed class TensorDataWriter
{
    private static readonly byte[] Zeros = new byte[1 << 16];
    private readonly Stream _stream;
    private readonly string _name;
    private readonly long _length;

    internal TensorDataWriter(Stream stream, string name, long length) => (_stream, _name, _length) = (stream, name, length);

    /// <summary>Bytes written so far.</summary>
    public long Written { get; private set; }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _length - Written)
            throw new InvalidOperationException($"Tensor '{_name}': more than its {_length} bytes were written.");
        _stream.Write(bytes);
        Written += bytes.Length;
    }

    /// <summary>Values as their little-endian bytes (this backend runs on little-endian machines only).</summary>
    public void Write<T>(ReadOnlySpan<T> values) where T : unmanaged => Write(MemoryMarshal.AsBytes(values));

    /// <summary><paramref name="count"/> zero bytes.</summary>
    public void WriteZeros(long count)
    {
        for (; count > 0; count -= Zeros.Length) Write(Zeros.AsSpan(0, (int)Math.Min(count, Zeros.Length)));
    }

    internal void EnsureComplete()
    {
        if (Written != _length)
            throw new InvalidOperationException($"Tensor '{_name}': {Written} of its {_length} bytes were written.");
    }
}
