using System.Collections.Concurrent;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Models;

/// <summary>
/// The models the backend can run: the embedded default (id "default") and model folders on disk (id = the folder's
/// absolute path). Each is loaded once, on the model thread; a failed load is not remembered, so a fixed folder loads
/// on the next try.
/// </summary>
public sealed class ModelRegistry(ModelThread modelThread) : IDisposable
{
    public const string DefaultId = "default";

    /// <summary>
    /// Whether PyTorch pickle checkpoints may load (the user's explicit opt-in: CLI --allow-pickle, or the client's
    /// initialize {allowPickle: true}). Safetensors always load.
    /// </summary>
    public bool AllowPickle { get; set; }
    private readonly ConcurrentDictionary<string, Lazy<Task<LoadedModel>>> _loaded = new(StringComparer.Ordinal);

    public static ModelCatalogEntry DefaultInfo =>
        new(DefaultId, "all-MiniLM-L6-v2 (embedded)", "bert", 6, 12, "embedded", null, KeyValueHeads: 12, Window: 512);

    /// <summary>
    /// The embedded default, the folders the client names (e.g. the attentionViz.modelPath setting), and the Hugging
    /// Face cache, described from their config.json without loading weights. A folder that cannot be used is listed
    /// with the reason.
    /// </summary>
    public IReadOnlyList<ModelCatalogEntry> List(IEnumerable<string>? paths = null)
    {
        var list = new List<ModelCatalogEntry> { DefaultInfo };
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in paths ?? [])
        {
            if (string.IsNullOrWhiteSpace(path)) continue;
            var folder = Path.GetFullPath(path);
            // A setting may name a hub snapshot itself: it is listed by its repo, as the cache scan lists it.
            if (seen.Add(folder)) list.Add(Describe(folder, ModelName.Display(folder), "path"));
        }
        foreach (var (name, folder) in ModelDiscovery.ScanHubCache(ModelDiscovery.HuggingFaceHubCache(Environment.GetEnvironmentVariable)))
            if (seen.Add(folder)) list.Add(Describe(folder, name, "hf-cache"));
        return list;
    }

    private static ModelCatalogEntry Describe(string folder, string name, string source)
    {
        try
        {
            var d = ModelFolder.Describe(folder);
            return new ModelCatalogEntry(d.Folder, name, d.Architecture, d.Layers, d.Heads, source, d.Folder, d.WeightBytes,
                d.WeightFormat == "none" ? $"{folder} has no weights (model.safetensors)." : null, d.KeyValueHeads, d.MaxPositions);
        }
        // A bad weights header (ModelFormatException), like any AppException, is one folder's problem: the list answers.
        catch (Exception e) when (e is AppException or IOException or UnauthorizedAccessException)
        {
            return new ModelCatalogEntry(folder, name, "unknown", 0, 0, source, folder, null, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            // Whatever a broken snapshot throws stays in its own entry: one bad folder never hides the others.
            Log.Warn($"models/list: {folder}: {e.GetType().Name}: {e.Message}");
            return new ModelCatalogEntry(folder, name, "unknown", 0, 0, source, folder, null,
                $"{folder} cannot be read as a model: {e.Message}");
        }
    }

    public Task<LoadedModel> GetAsync(string id, CancellationToken cancellationToken)
    {
        var key = id == DefaultId ? DefaultId : NormalizePath(id);
        var lazy = _loaded.GetOrAdd(key,
            k => new Lazy<Task<LoadedModel>>(() => modelThread.RunAsync(_ => Load(k, new ModelLoadOptions(AllowPickle)), CancellationToken.None)));
        var task = lazy.Value;
        task.ContinueWith(t => _loaded.TryRemove(new KeyValuePair<string, Lazy<Task<LoadedModel>>>(key, lazy)),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return task.WaitAsync(cancellationToken);
    }

    private static string NormalizePath(string id)
    {
        if (!Path.IsPathFullyQualified(id))
            throw new ModelLoadException($"Unknown model '{id}': use \"default\" or the absolute path of a model folder.");
        return Path.GetFullPath(id);
    }

    private static LoadedModel Load(string key, ModelLoadOptions options)
    {
        TorchSetup.EnsureInitialized();
        if (key == DefaultId)
        {
            var folder = EmbeddedModel.EnsureConverted();
            return ModelFolder.Load(folder, DefaultInfo);
        }
        return ModelFolder.Load(key, null, options);
    }

    public static IModelTokenizer LoadTokenizer(string id) =>
        ModelFolder.LoadTokenizer(id == DefaultId ? EmbeddedModel.EnsureConverted() : NormalizePath(id));

    public void Dispose()
    {
        foreach (var lazy in _loaded.Values)
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully) lazy.Value.Result.Dispose();
        _loaded.Clear();
    }
}
