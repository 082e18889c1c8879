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
