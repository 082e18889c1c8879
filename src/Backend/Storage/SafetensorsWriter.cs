using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// Writes safetensors files: an 8-byte little-endian header length, a JSON header padded with spaces to a multiple
/// of 8 bytes (as Hugging Face's implementation does), then the tensors' bytes back to back in the order given.
/// Data is streamed from the callers' buffers to the file (no intermediate copy of the whole payload). The file is
/// written beside <c>path</c> under a temporary name and renamed into place, so readers never see a partial file.
/// </summary>
public static class SafetensorsWriter
{
    private delegate ReadOnlySpan<byte> SpanSource();

    private sealed record Entry(string Name, string Dtype, long[] Shape, long Length, SpanSource Data);

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
            return new Entry(t.Name, t.Dtype, t.Shape, data.Length, () => data.Span);
        }).ToList();
        WriteEntries(path, entries, metadata);
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
                entries.Add(new Entry(name, dtype, t.shape, length, () => length == 0 ? default : t.bytes));
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
        var header = BuildHeader(entries, metadata);
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                stream.Write(prefix);
                stream.Write(header);
                foreach (var entry in entries)
                {
                    var span = entry.Data();
                    if (span.Length != entry.Length)
                        throw new InvalidOperationException($"Tensor '{entry.Name}' changed size while being written.");
                    stream.Write(span);
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static byte[] BuildHeader(List<Entry> entries, IReadOnlyDictionary<string, string>? metadata)
    {
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
            foreach (var e in entries)
            {
                if (e.Name == "__metadata__")
                    throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor.");
                if (!names.Add(e.Name))
                    throw new ArgumentException($"Tensor '{e.Name}' is given more than once.");
                var size = SafetensorsDtype.SizeOf(e.Dtype);
                if (size == 0)
                    throw new ArgumentException($"Tensor '{e.Name}': unknown dtype '{e.Dtype}' (known: {string.Join(", ", SafetensorsDtype.All)}).");
                var expected = SafetensorsDtype.ByteLength(e.Shape, size)
                    ?? throw new ArgumentException($"Tensor '{e.Name}': shape [{string.Join(", ", e.Shape)}] has a negative dimension or overflows.");
                if (expected != e.Length)
                    throw new ArgumentException($"Tensor '{e.Name}': " +
                        $"{e.Length} bytes of data, but shape [{string.Join(", ", e.Shape)}] of {e.Dtype} needs {expected}.");
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", e.Dtype);
                json.WriteStartArray("shape");
                foreach (var d in e.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + e.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += e.Length;
            }
            json.WriteEndObject();
        }
        var padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }
}
