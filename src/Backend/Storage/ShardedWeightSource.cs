using System.Text.Json;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// A sharded checkpoint: an index (model.safetensors.index.json, or pytorch_model.bin.index.json for opted-in pickle
/// shards) maps each tensor to one of several files in the same folder. The index is validated before any shard is
/// opened: every shard is a plain file name inside the folder with the expected extension (no directories, no "..",
/// no absolute paths), exists, and holds exactly the tensors the index assigns to it.
/// </summary>
public sealed class ShardedWeightSource : IWeightSource
{
    public const string SafetensorsIndexFileName = "model.safetensors.index.json";
    public const string PickleIndexFileName = "pytorch_model.bin.index.json";

    /// <summary>Index files list tensor names; even very large models stay far below this.</summary>
    public const long MaxIndexBytes = 64L * 1024 * 1024;

    private readonly Dictionary<string, IWeightSource> _byTensor;
    private readonly List<IWeightSource> _shards;

    private ShardedWeightSource(string description, Dictionary<string, IWeightSource> byTensor, List<IWeightSource> shards)
    {
        Description = description;
        _byTensor = byTensor;
        _shards = shards;
        Names = byTensor.Keys.ToHashSet(StringComparer.Ordinal);
    }

    public string Description { get; }
    public IReadOnlyCollection<string> Names { get; }
    public long[] Shape(string name) => Shard(name).Shape(name);
    public torch.Tensor ReadFloat32(string name) => Shard(name).ReadFloat32(name);

    private IWeightSource Shard(string name) =>
        _byTensor.TryGetValue(name, out var shard) ? shard : throw new ModelFormatException($"{Description}: no tensor '{name}'.");

    /// <summary>Reads and validates the index: tensor name → shard file name. Throws <see cref="ModelFormatException"/>.</summary>
    public static IReadOnlyDictionary<string, string> ReadIndex(string indexPath, string shardExtension)
    {
        var bytes = UserFile.ReadAllBytes(indexPath, MaxIndexBytes, "weight index", what => ModelFormatException.For(indexPath, null, what));
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var weightMap)
                || weightMap.ValueKind != JsonValueKind.Object)
                throw ModelFormatException.For(indexPath, null, "the index has no \"weight_map\" object.");
            foreach (var entry in weightMap.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw ModelFormatException.For(indexPath, entry.Name, "the shard file name is not a string.");
                var shard = entry.Value.GetString()!;
                CheckShardName(indexPath, folder, entry.Name, shard, shardExtension);
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

    private static void CheckShardName(string indexPath, string folder, string tensor, string shard, string extension)
    {
        var plain = shard.Length is > 0 and <= 255
            && shard.IndexOfAny(['/', '\\', '\0', ':']) < 0
            && shard is not "." and not ".."
            && !Path.IsPathRooted(shard);
        if (!plain || Path.GetDirectoryName(Path.GetFullPath(Path.Combine(folder, shard))) != folder)
            throw ModelFormatException.For(indexPath, tensor, $"shard '{shard}' is not a plain file name inside {folder}; refusing to read it.");
        if (!shard.EndsWith(extension, StringComparison.Ordinal))
            throw ModelFormatException.For(indexPath, tensor, $"shard '{shard}' is not a {extension} file.");
    }

    /// <summary>A sharded safetensors checkpoint (each shard memory-mapped).</summary>
    public static ShardedWeightSource OpenSafetensors(string indexPath) =>
        Open(indexPath, ".safetensors", path => new SafetensorsWeightSource(path));

    /// <summary>A sharded PyTorch pickle checkpoint, each shard read by the restricted unpickler. Only after the user opted in.</summary>
    public static ShardedWeightSource OpenPickle(string indexPath) =>
        Open(indexPath, ".bin", TorchPickleWeightSource.Open);

    private static ShardedWeightSource Open(string indexPath, string extension, Func<string, IWeightSource> openShard)
    {
        var map = ReadIndex(indexPath, extension);
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var shards = new List<IWeightSource>();
        try
        {
            var byFile = new Dictionary<string, IWeightSource>(StringComparer.Ordinal);
            foreach (var file in map.Values.Distinct().Order(StringComparer.Ordinal))
            {
                var path = Path.Combine(folder, file);
                if (!File.Exists(path))
                    throw ModelFormatException.For(indexPath, null, $"shard '{file}' listed in the index does not exist.");
                var shard = openShard(path);
                shards.Add(shard);
                byFile[file] = shard;
            }
            var byTensor = new Dictionary<string, IWeightSource>(StringComparer.Ordinal);
            foreach (var (tensor, file) in map)
            {
                var shard = byFile[file];
                if (!shard.Names.Contains(tensor))
                    throw ModelFormatException.For(indexPath, tensor, $"the index puts it in '{file}', which does not hold it.");
                byTensor[tensor] = shard;
            }
            return new ShardedWeightSource(Path.GetFullPath(indexPath), byTensor, shards);
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
    }

    /// <summary>Sums the element counts of a sharded safetensors checkpoint from the shards' headers (no tensor data is read).</summary>
    public static long CountSafetensorsParameters(string indexPath)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        long parameters = 0;
        foreach (var group in ReadIndex(indexPath, ".safetensors").GroupBy(e => e.Value, e => e.Key))
        {
            using var file = SafetensorsFile.Open(Path.Combine(folder, group.Key));
            foreach (var tensor in group)
                parameters += file.TryGetInfo(tensor, out var info) ? info.ElementCount
                    : throw ModelFormatException.For(indexPath, tensor, $"the index puts it in '{group.Key}', which does not hold it.");
        }
        return parameters;
    }

    public void Dispose()
    {
        foreach (var s in _shards) s.Dispose();
    }
}
