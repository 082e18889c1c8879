using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Analysis;

public sealed record ModelSummary(string Id, string Architecture, int Layers, int Heads, bool Causal);

/// <summary>
/// One analyzed text: its tokens, every layer's and head's attention (stored or recomputable), and the final hidden states. Reference-counted,
/// so that eviction from the cache never frees a buffer a request is still reading.
/// </summary>
public sealed class StoredAnalysis
{
    private int _references = 1;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ViewOptions, ViewLayout> _layouts = new();

    /// <summary>The tokens' layout under <paramref name="options"/>, built once per analysis: the model view asks for 91
    /// thumbnails with the same units, and the same units array lets the answers reuse its JSON (Rpc/UnitsJsonConverter).</summary>
    internal ViewLayout LayoutFor(ViewOptions options) => _layouts.GetOrAdd(options, o => ViewLayout.For(Tokens, o));

    public required string Id { get; init; }
    public required ModelSummary Model { get; init; }
    public required IReadOnlyList<Token> Tokens { get; init; }
    public required bool Truncated { get; init; }

    /// <summary>UTF-16 offset where the analyzed text ends, when truncated.</summary>
    public int? TruncatedAt { get; init; }

    public required IAttentionSource Attention { get; init; }

    /// <summary>The leading tokens taken from an earlier analysis's prefix instead of running them (0: none).</summary>
    public int ReusedTokens { get; init; }

    /// <summary>The loaded model that ran the forward: a later analysis reuses this one's prefix only with the same one.</summary>
    internal Models.Core.ITransformerModel? ForwardModel { get; init; }

    /// <summary>Head metrics summed during the forward (long analyses), or null: computed on first request.</summary>
    public HeadMetric[]? Metrics { get; init; }

    /// <summary>(T, C), row-major: the model's last_hidden_state.</summary>
    public required float[] LastHiddenState { get; init; }

    public required int HiddenSize { get; init; }

    /// <summary>The model's window: the most tokens one analysis can take.</summary>
    public int Window { get; init; }
    public double ElapsedMs { get; init; }

    internal Lease? TryAcquire()
    {
        while (true)
        {
            var current = Volatile.Read(ref _references);
            if (current == 0) return null;
            if (Interlocked.CompareExchange(ref _references, current + 1, current) == current) return new Lease(this);
        }
    }

    /// <summary>Releasing an analysis that kept this much or more starts a collection (#13 point 16).</summary>
    internal const long CollectFromBytes = 32L << 20;

    internal void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0) return;
        // A small one (MiniLM's few MB) is not worth a full collection, which would compete with the next forward, nor
        // a malloc_trim: the next forward would page-fault its temporaries back in (clear_page was ~10 % of a 128-token
        // analysis's CPU time when every release trimmed). Nor is one whose array goes back to the pool for the next
        // analysis (MiniLM at 512 tokens, 75 MB: a collection after each release tripled the next analysis's time).
        var large = Attention.SizeInBytes >= CollectFromBytes && Attention is not AttentionTensor { IsPooled: true };
        Attention.Dispose();
        if (large)
        {
            Platform.HeapSettings.ReturnFreedMemory();
            Platform.HeapSettings.ReturnFreedMemorySoon();
        }
    }

    public sealed class Lease(StoredAnalysis analysis) : IDisposable
    {
        private int _disposed;
        public StoredAnalysis Analysis { get; } = analysis;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) Analysis.Release();
        }
    }
}
