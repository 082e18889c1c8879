using AttentionViz.Backend.Models.Core;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// What an analysis costs in memory, estimated before it runs: the model's weights, the forward's working set, and
/// what the analysis keeps (probabilities, or the recomputable state and overviews). One budget covers them all.
/// </summary>
public static class AnalysisMemory
{
    /// <summary>A decoder keeps its probabilities up to this size (by default); beyond it, the recomputable state.</summary>
    public const long KeepProbabilitiesBytes = 64L << 20;

    /// <summary>ATTENTIONVIZ_KEEP_PROBABILITIES_MB (0: always recompute; for tests and tuning), else the default.</summary>
    public static long KeepFromEnvironment() =>
        long.TryParse(Environment.GetEnvironmentVariable("ATTENTIONVIZ_KEEP_PROBABILITIES_MB"), out var mb) && mb >= 0
            ? mb << 20
            : KeepProbabilitiesBytes;

    /// <summary>The budget when ATTENTIONVIZ_CACHE_MB is not set: 4096 MB.</summary>
    public const long DefaultBudgetMegabytes = 4096;

    /// <summary>ATTENTIONVIZ_CACHE_MB (the extension's attentionViz.memoryBudgetMB), else the default, in bytes.</summary>
    public static long BudgetFromEnvironment() =>
        (long.TryParse(Environment.GetEnvironmentVariable("ATTENTIONVIZ_CACHE_MB"), out var mb) && mb > 0 ? mb : DefaultBudgetMegabytes) << 20;

    public static long ProbabilityBytes(ITransformerModel model, int tokens) =>
        (long)model.Layers * model.Heads * tokens * tokens * sizeof(float);

    /// <summary>True when the analysis keeps every probability (encoders and GPT-2 always; decoders while small).</summary>
    public static bool KeepsProbabilities(ITransformerModel model, int tokens, long keepBytes = KeepProbabilitiesBytes) =>
        !model.AttendsInBlocks || ProbabilityBytes(model, tokens) <= keepBytes;

    /// <summary>What the stored analysis holds once the forward is done.</summary>
    public static long RetainedBytes(ITransformerModel model, int tokens, long keepBytes = KeepProbabilitiesBytes)
    {
        var hidden = (long)tokens * model.HiddenSize * sizeof(float);
        if (KeepsProbabilities(model, tokens, keepBytes)) return ProbabilityBytes(model, tokens) + hidden;
        // A causal analysis also keeps its values and metric checkpoints, so that the next one can reuse its prefix.
        var resumable = model.Causal ? MetricCheckpoints.BytesFor(model.Layers, model.Heads, tokens) : 0;
        return RecomputedAttention.StateBytes(model.Layers, model.Heads, model.KeyValueHeads, model.HeadDim, tokens, keepsValues: model.Causal)
               + PooledOverviews.BytesFor(model.Layers, model.Heads, tokens) + hidden + resumable;
    }

    /// <summary>The forward's peak working set beyond what it keeps, from the shapes it allocates.</summary>
    public static long WorkingBytes(ITransformerModel model, int tokens, long keepBytes = KeepProbabilitiesBytes)
    {
        long n = tokens, c = model.HiddenSize, inner = model.IntermediateSize;
        var projections = n * (2L * model.Heads + 2L * model.KeyValueHeads) * model.HeadDim;
        var activations = n * (8 * c + 3 * inner) + 2 * projections;
        if (KeepsProbabilities(model, tokens, keepBytes))
        {
            // Every layer's probabilities come out of the forward, a layer's scores are live while it runs, and the
            // stored copy is made from them.
            var layer = (long)model.Heads * n * n;
            return (activations + 3 * layer) * sizeof(float) + ProbabilityBytes(model, tokens);
        }
        // One block of scores and the metrics' and overviews' temporaries over it (about eight blocks' worth).
        var block = BlockedAttention.BlockFloatsBound(model.Heads, tokens);
        return (activations + 8 * block) * sizeof(float);
    }

    /// <summary>Everything an analysis of <paramref name="tokens"/> needs at its peak, weights included.</summary>
    public static long NeededBytes(ITransformerModel model, int tokens, long keepBytes = KeepProbabilitiesBytes) =>
        model.WeightBytes + RetainedBytes(model, tokens, keepBytes) + WorkingBytes(model, tokens, keepBytes);

    /// <summary>
    /// True when the analysis fits the budget; stored probabilities also have to fit one pooled array
    /// (<see cref="AttentionTensor.BudgetBytes"/>).
    /// </summary>
    public static bool Fits(ITransformerModel model, int tokens, long budgetBytes, long keepBytes = KeepProbabilitiesBytes) =>
        NeededBytes(model, tokens, keepBytes) <= budgetBytes
        && (model.AttendsInBlocks || ProbabilityBytes(model, tokens) <= AttentionTensor.BudgetBytes);

    /// <summary>The most tokens (up to the window) whose analysis fits <paramref name="budgetBytes"/>; 0 when none does.</summary>
    public static int MaxTokensWithin(ITransformerModel model, long budgetBytes, long keepBytes = KeepProbabilitiesBytes)
    {
        int low = 0, high = model.MaxPositions;
        while (low < high)
        {
            var middle = low + (high - low + 1) / 2;
            if (Fits(model, middle, budgetBytes, keepBytes)) low = middle;
            else high = middle - 1;
        }
        return low;
    }

    /// <summary>Refuses, before anything is allocated, an analysis that cannot fit the budget.</summary>
    public static void EnsureFits(ITransformerModel model, int tokens, long budgetBytes, long keepBytes = KeepProbabilitiesBytes)
    {
        if (Fits(model, tokens, budgetBytes, keepBytes)) return;
        var fits = MaxTokensWithin(model, budgetBytes, keepBytes);
        var advice = fits > 0
            ? $"raise attentionViz.memoryBudgetMB (ATTENTIONVIZ_CACHE_MB) or analyze at most {fits} tokens with this model"
            : "raise attentionViz.memoryBudgetMB (ATTENTIONVIZ_CACHE_MB): this model's weights alone do not fit";
        var needed = NeededBytes(model, tokens, keepBytes);
        // Over the budget, or (stored probabilities) over the one array they live in: report the limit that binds.
        var (shown, limit) = needed > budgetBytes
            ? (needed, budgetBytes)
            : (ProbabilityBytes(model, tokens), AttentionTensor.BudgetBytes);
        throw new MemoryBudgetException(shown, limit, advice);
    }
}
