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

    /// <summary>The tokenizer alone: tokenizing needs no weights.</summary>
    public Task<Tokenization.IModelTokenizer> TokenizerAsync(string modelId, CancellationToken cancellationToken) =>
        Task.Run(() => ModelRegistry.LoadTokenizer(modelId), cancellationToken);

    public void Dispose()
    {
        Registry.Dispose();
        _thread.Dispose();
    }
}
