using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Rpc;

namespace AttentionViz.Backend.Runtime;

/// <summary>The services one backend process holds: the model thread, the registry, the analysis cache.</summary>
public sealed class BackendHost : IDisposable
{
    private readonly ModelThread _thread = new();

    public BackendHost()
    {
        Registry = new ModelRegistry(_thread) { MaxLoadedBytes = AnalysisMemory.BudgetFromEnvironment() };
        Service = new AttentionService(Registry, new AnalysisCache(AnalysisMemory.BudgetFromEnvironment()), _thread)
        {
            KeepProbabilitiesBytes = AnalysisMemory.KeepFromEnvironment(),
        };
        // Each protocol area is one target class; the server registers them all.
        Server = new BackendServer(Service, [new RenderTarget(Service), new AnalysisTarget(new AnalysisQueries(Service, _thread))]);
    }

    public ModelRegistry Registry { get; }
    public AttentionService Service { get; }
    public BackendServer Server { get; }

    /// <summary>
    /// Loads libtorch (~350 ms) and checks the converted embedded model's hashes on the model thread while the JSON-RPC
    /// side starts up and answers initialize (~400 ms of JIT): the first analysis then finds both done. Nothing is
    /// converted or loaded here (a folder model may be the one in use), and a failure only leaves the work to the
    /// first analysis, as without it.
    /// </summary>
    public void Prewarm() => _ = _thread.RunAsync(_ =>
    {
        try
        {
            TorchSetup.EnsureInitialized();
            Storage.EmbeddedModel.VerifyIfConverted();
            Platform.Log.Info("prewarmed: libtorch loaded, the embedded model's files checked");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Platform.Log.Warn($"prewarm: {e.Message}");
        }
        return true;
    }, CancellationToken.None);

    /// <summary>The tokenizer alone: tokenizing needs no weights.</summary>
    public Task<Tokenization.IModelTokenizer> TokenizerAsync(string modelId, CancellationToken cancellationToken) =>
        Task.Run(() => ModelRegistry.LoadTokenizer(modelId), cancellationToken);

    public void Dispose()
    {
        Registry.Dispose();
        _thread.Dispose();
    }
}
