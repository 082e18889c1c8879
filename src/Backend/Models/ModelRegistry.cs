using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Models;

/// <summary>
/// The models the backend can run: the embedded default (id "default") and model folders on disk (id = the folder's
/// absolute path). Each is loaded once, on the model thread, and held by leases while requests use it; the least
/// recently used are unloaded beyond <see cref="MaxLoadedModels"/> or <see cref="MaxLoadedBytes"/>.
/// </summary>
public sealed class ModelRegistry(ModelThread modelThread) : IDisposable
{
    public const string DefaultId = "default";

    /// <summary>
    /// Whether PyTorch pickle checkpoints may load (the user's explicit opt-in: CLI --allow-pickle, or the client's
    /// initialize {allowPickle: true}). Safetensors always load.
    /// </summary>
    public bool AllowPickle { get; set; }

    public static ModelCatalogEntry DefaultInfo => new(DefaultId, "all-MiniLM-L6-v2 (embedded)", "bert", 6, 12, "embedded", null)
    {
        Family = "BERT", KeyValueHeads = 12, Window = 512,
    };

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
                d.WeightFormat == "none" ? $"{folder} has no weights (model.safetensors)." : null)
            {
                Family = d.Family, KeyValueHeads = d.KeyValueHeads, Window = d.MaxPositions, SlidingWindow = d.SlidingWindow, Note = d.Note,
            };
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

    /// <summary>
    /// How many models stay loaded at most: the one in use and the one before it, so switching back is instant. A
    /// third evicts the least recently used (33 small folders took RSS from 212 to 1,036 MB when none was let go).
    /// </summary>
    public int MaxLoadedModels { get; init; } = 2;

    /// <summary>The loaded models' float32 weights together stay under this (the backend sets the analysis budget,
    /// ATTENTIONVIZ_CACHE_MB), except the model just asked for, which always stays.</summary>
    public long MaxLoadedBytes { get; init; } = long.MaxValue;

    private sealed class Entry(Task<LoadedModel> load)
    {
        public Task<LoadedModel> Load { get; } = load;
        public int Leases;
        public long LastUsed;
    }

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _useClock;

    /// <summary>The model, loaded once; it is not unloaded while the lease is held (a queued forward keeps it).</summary>
    public async Task<ModelLease> AcquireAsync(string id, CancellationToken cancellationToken)
    {
        var key = id == DefaultId ? DefaultId : NormalizePath(id);
        Entry entry;
        var evictFirst = false;
        lock (_gate)
        {
            if (!_entries.TryGetValue(key, out entry!))
            {
                // Room first: an idle model goes before the new one loads, not after (both would be held meanwhile).
                evictFirst = true;
                entry = new Entry(modelThread.RunAsync(_ => Load(key, new ModelLoadOptions(AllowPickle)), CancellationToken.None));
                _entries[key] = entry;
                var loading = entry;
                // A failed load is not remembered: a fixed folder loads on the next try.
                entry.Load.ContinueWith(_ => { lock (_gate) if (_entries.GetValueOrDefault(key) == loading) _entries.Remove(key); },
                    CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
            entry.Leases++;
            entry.LastUsed = ++_useClock;
        }
        if (evictFirst) EvictIdle(reserve: 1);
        try
        {
            var loaded = await entry.Load.WaitAsync(cancellationToken);
            EvictIdle();
            return new ModelLease(loaded, () => Release(entry));
        }
        catch
        {
            Release(entry);
            throw;
        }
    }

    /// <summary>The float32 weights of the loaded models other than <paramref name="model"/>: the analysis budget
    /// leaves room for them (ATTENTIONVIZ_CACHE_MB covers every loaded model, not only the one in use).</summary>
    public long LoadedBytesOtherThan(ITransformerModel model)
    {
        lock (_gate)
            return _entries.Values.Where(e => e.Load.IsCompletedSuccessfully && !ReferenceEquals(e.Load.Result.Model, model))
                .Sum(e => e.Load.Result.Model.WeightBytes);
    }

    /// <summary>Unloads every idle model but <paramref name="model"/>, when an analysis of it needs their memory.</summary>
    public void UnloadIdleOtherThan(ITransformerModel model) => EvictIdle(keep: model);

    /// <summary>The models loaded now, most recently used first (for tests and the log).</summary>
    public IReadOnlyList<string> LoadedIds()
    {
        lock (_gate)
            return _entries.Where(e => e.Value.Load.IsCompletedSuccessfully).OrderByDescending(e => e.Value.LastUsed)
                .Select(e => e.Key).ToList();
    }

    private void Release(Entry entry)
    {
        lock (_gate) entry.Leases--;
        EvictIdle();
    }

    /// <summary>
    /// Unloads the least recently used models that no request holds while more than <see cref="MaxLoadedModels"/>
    /// (less <paramref name="reserve"/> slots for a model about to load) or <see cref="MaxLoadedBytes"/> are loaded;
    /// with <paramref name="keep"/>, every idle model but that one. Removed under the lock, so no one can lease them
    /// any more; disposed on the model thread (at once when called there, else after what it runs now).
    /// </summary>
    private void EvictIdle(int reserve = 0, ITransformerModel? keep = null)
    {
        var evicted = new List<(string Key, LoadedModel Model)>();
        lock (_gate)
        {
            var loaded = _entries.Where(e => e.Value.Load.IsCompletedSuccessfully).OrderBy(e => e.Value.LastUsed).ToList();
            var bytes = loaded.Sum(e => e.Value.Load.Result.Model.WeightBytes);
            var count = loaded.Count + reserve;
            // The newest stays, unless a model about to load takes its place (reserve) or another one is kept.
            foreach (var (key, entry) in reserve > 0 || keep is not null ? loaded : loaded.SkipLast(1))
            {
                var model = entry.Load.Result;
                if (ReferenceEquals(model.Model, keep)) continue;
                if (keep is null && count <= MaxLoadedModels && bytes <= MaxLoadedBytes) break;
                if (entry.Leases > 0) continue;
                _entries.Remove(key);
                evicted.Add((key, model));
                count--;
                bytes -= model.Model.WeightBytes;
            }
        }
        if (evicted.Count == 0) return;
        bool Unload()
        {
            foreach (var (key, model) in evicted)
            {
                model.Dispose();
                Log.Info($"unloaded {key} (least recently used; at most {MaxLoadedModels} models, {MaxLoadedBytes >> 20} MB of weights)");
            }
            // The tokenizers' tables and the modules' wrappers are managed: collect them (not compacting: the cached
            // analyses' large arrays stay where they are) before trimming the heap.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
            Platform.HeapSettings.ReturnFreedMemory();
            return true;
        }
        if (modelThread.IsCurrent) Unload();
        else modelThread.RunAsync(_ => Unload(), CancellationToken.None);
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
        var loaded = key == DefaultId ? ModelFolder.Load(EmbeddedModel.EnsureConverted(), DefaultInfo) : ModelFolder.Load(key, null, options);
        Platform.HeapSettings.CollectAndTrim();
        return loaded;
    }

    public static IModelTokenizer LoadTokenizer(string id) =>
        ModelFolder.LoadTokenizer(id == DefaultId ? EmbeddedModel.EnsureConverted() : NormalizePath(id));

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var entry in _entries.Values)
                if (entry.Load.IsCompletedSuccessfully) entry.Load.Result.Dispose();
            _entries.Clear();
        }
    }
}

/// <summary>A loaded model that stays loaded until this is disposed.</summary>
public sealed class ModelLease(LoadedModel loaded, Action release) : IDisposable
{
    private int _released;

    public LoadedModel Loaded { get; } = loaded;
    public ITransformerModel Model => Loaded.Model;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) release();
    }
}
