using System.Text.Json;
using AttentionViz.Backend.Models.Core;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// A sharded safetensors checkpoint: model.safetensors.index.json maps each tensor to one of several files in the
/// same folder. The index is validated before any shard is opened: every shard is a plain file name inside the folder
/// (no directories, no "..", no absolute paths), exists, and holds exactly the tensors the index assigns to it.
/// Each shard is memory-mapped (see <see cref="SafetensorsFile"/>).
/// </summary>
public sealed class ShardedSafetensorsWeightSource : IWeightSource
{
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>Index files list tensor names; even very large models stay far below this.</summary>
    public const long MaxIndexBytes = 64L * 1024 * 1024;

    private readonly Dictionary<string, SafetensorsFile> _byTensor;
    private readonly List<SafetensorsFile> _files;

    private ShardedSafetensorsWeightSource(string description, Dictionary<string, SafetensorsFile> byTensor, List<SafetensorsFile> files)
    {
        Description = description;
        _byTensor = byTensor;
        _files = files;
        Names = byTensor.Keys.ToHashSet(StringComparer.Ordinal);
    }

    public string Description { get; }
    public IReadOnlyCollection<string> Names { get; }
    public long[] Shape(string name) => File(name).GetInfo(name).Shape;
    public torch.Tensor ReadFloat32(string name)
    {
        var file = File(name);
        var tensor = file.ReadFloat32(name);
        SafetensorsWeightSource.ReleasePages(file.GetSpan(name));
        return tensor;
    }

    private SafetensorsFile File(string name) =>
        _byTensor.TryGetValue(name, out var file) ? file : throw new ModelFormatException($"{Description}: no tensor '{name}'.");

    /// <summary>Reads and validates the index: tensor name → shard file name. Throws <see cref="ModelFormatException"/>.</summary>
    public static IReadOnlyDictionary<string, string> ReadIndex(string indexPath)
    {
        var length = FileLength.Of(indexPath);
        if (length > MaxIndexBytes) throw ModelFormatException.For(indexPath, null, $"the index is {length} bytes; at most {MaxIndexBytes} are accepted.");
        var folder = Path.GetFullPath(Path.GetDirectoryName(Path.GetFullPath(indexPath))!);
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(indexPath), new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var weightMap)
                || weightMap.ValueKind != JsonValueKind.Object)
                throw ModelFormatException.For(indexPath, null, "the index has no \"weight_map\" object.");
            foreach (var entry in weightMap.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw ModelFormatException.For(indexPath, entry.Name, "the shard file name is not a string.");
                var shard = entry.Value.GetString()!;
                CheckShardName(indexPath, folder, entry.Name, shard);
                if (!map.TryAdd(entry.Name, shard))
                    throw ModelFormatException.For(indexPath, entry.Name, "the tensor is listed twice.");
            }
        }
        catch (JsonException e)
        {
            throw ModelFormatException.For(indexPath, null, $"the index is not valid JSON: {e.Message}", e);
        }
        if (map.Count == 0) throw ModelFormatException.For(indexPath, null, "the weight_map is empty.");
        return map;
    }

    private static void CheckShardName(string indexPath, string folder, string tensor, string shard)
    {
        var plain = shard.Length is > 0 and <= 255
            && shard.IndexOfAny(['/', '\\', '\0', ':']) < 0
            && shard is not "." and not ".."
            && !Path.IsPathRooted(shard);
        var full = Path.GetFullPath(Path.Combine(folder, shard));
        if (!plain || Path.GetDirectoryName(full) != folder)
            throw ModelFormatException.For(indexPath, tensor, $"shard '{shard}' is not a plain file name inside {folder}; refusing to read it.");
        if (!shard.EndsWith(".safetensors", StringComparison.Ordinal))
            throw ModelFormatException.For(indexPath, tensor, $"shard '{shard}' is not a .safetensors file.");
    }

    /// <summary>Validates the index, then maps every shard and checks it holds the tensors the index assigns to it.</summary>
    public static ShardedSafetensorsWeightSource Open(string indexPath)
    {
        var map = ReadIndex(indexPath);
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var files = new List<SafetensorsFile>();
        try
        {
            var byShard = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var shard in map.Values.Distinct().Order(StringComparer.Ordinal))
            {
                var path = Path.Combine(folder, shard);
                if (!System.IO.File.Exists(path))
                    throw ModelFormatException.For(indexPath, null, $"shard '{shard}' listed in the index does not exist.");
                var file = SafetensorsFile.Open(path);
                files.Add(file);
                byShard[shard] = file;
            }
            var byTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (tensor, shard) in map)
            {
                var file = byShard[shard];
                if (!file.Contains(tensor))
                    throw ModelFormatException.For(indexPath, tensor, $"the index puts it in '{shard}', which does not hold it.");
                byTensor[tensor] = file;
            }
            return new ShardedSafetensorsWeightSource(Path.GetFullPath(indexPath), byTensor, files);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Sums the shards' tensor element counts and byte sizes from their headers (no tensor data is read).</summary>
    public static (long Parameters, long Bytes) Count(string indexPath)
    {
        using var source = Open(indexPath);
        long parameters = 0, bytes = 0;
        foreach (var file in source._files)
            foreach (var t in file.Tensors)
                if (source._byTensor.TryGetValue(t.Name, out var owner) && owner == file)
                {
                    parameters += t.ElementCount;
                    bytes += t.ByteLength;
                }
        return (parameters, bytes);
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
