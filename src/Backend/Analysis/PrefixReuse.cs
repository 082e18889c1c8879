using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// Where a new analysis starts from an earlier one: its first <paramref name="Length"/> tokens are the earlier
/// analysis's, so their keys, values, queries, normalisers, hidden states, complete overview bins and metric sums are
/// taken from it, and only the rest of the tokens run.
/// </summary>
/// <param name="Extends">the new tokens start with all of the earlier analysis's (text typed at the end): its kept
/// rows can be shared rather than copied (<see cref="KeptRows"/>)</param>
public sealed record PrefixStart(RecomputedAttention Earlier, float[] EarlierHidden, int Length, bool Extends = false)
{
    /// <summary>
    /// The bytes of kept rows a new analysis of <paramref name="tokens"/> tokens will share with the earlier one instead
    /// of holding its own copy: the earlier analysis's rows when the new one extends it in place, else 0.
    /// </summary>
    public long SharedBytes(int tokens)
    {
        if (!Extends || Earlier.Rows is not { } rows || rows.Filled != Earlier.Tokens || tokens > rows.Capacity) return 0;
        var state = Earlier.State(0);
        long perRow = (state.Queries.shape[0] * state.Queries.shape[2] + 2 * state.Keys.shape[0] * state.Keys.shape[2] + state.LogSumExp.shape[0])
            * sizeof(float);
        return perRow * Earlier.Tokens * Earlier.Layers;
    }

    /// <summary>The earlier analysis's keys and values, read (never written) by the new forward.</summary>
    public KeyValuePrefix KeyValues =>
        new(Length, [.. Enumerable.Range(0, Earlier.Layers).Select(l => Earlier.State(l).Keys)],
            [.. Enumerable.Range(0, Earlier.Layers).Select(l => Earlier.State(l).Values!)]);
}

/// <summary>
/// The one place that decides whether a new analysis reuses a recent one's prefix. Only a causal model that attends in
/// blocks qualifies (a causal row depends on the tokens up to it, so the prefix's per-layer state is the same in any
/// longer input; an encoder's rows see every token and recompute). The earlier analysis must come from the same loaded
/// model (same weights, window rule and settings: the model instance) and have kept its values and metric
/// checkpoints. The boundary is the longest common prefix of token ids, rounded down to a multiple of the metrics'
/// checkpoint rows and the earlier overviews' factor (so row sums and pooled bins resume exactly), leaving at least one
/// new token to run. Overviews resume only when the new factor is the same or coarser.
/// </summary>
public static class PrefixReuse
{
    /// <summary>The tokens of <paramref name="tokens"/> an analysis can take from <paramref name="earlier"/>'s; 0 for none.</summary>
    public static int Boundary(IReadOnlyList<Token> earlier, IReadOnlyList<Token> tokens, int earlierFactor)
    {
        var limit = Math.Min(earlier.Count, tokens.Count - 1);
        var common = 0;
        while (common < limit && earlier[common].Id == tokens[common].Id) common++;
        // Both are powers of two: the larger is a multiple of the other.
        var step = Math.Max(HeadMetricSums.CheckpointRows, earlierFactor);
        var boundary = common / step * step;
        if (boundary == 0 || !PooledOverviews.CanResume(earlierFactor, PooledOverviews.FactorFor(tokens.Count), boundary)) return 0;
        // The metrics split special-token mass by where the leading special tokens end: it must lie inside the prefix.
        for (var i = 0; i < boundary; i++)
            if (!tokens[i].Special) return boundary;
        return 0;
    }

    /// <summary>
    /// The recent analysis of <paramref name="model"/> that shares the longest reusable prefix with
    /// <paramref name="tokens"/>, leased (so it stays readable while the new forward reads it), or null.
    /// </summary>
    public static (StoredAnalysis.Lease Lease, PrefixStart Start)? Find(AnalysisCache cache, ITransformerModel model,
        IReadOnlyList<Token> tokens, IReadOnlyList<long>? tokenTypeIds)
    {
        if (!model.Causal || !model.AttendsInBlocks || tokenTypeIds is not null) return null;
        StoredAnalysis? best = null;
        var (bestLength, bestExtends) = (0, false);
        foreach (var candidate in cache.Recent())
        {
            if (!ReferenceEquals(candidate.ForwardModel, model) || candidate.Attention is not RecomputedAttention { Resumable: true } earlier)
                continue;
            if (model is Models.LlamaModel llama && !llama.SameRotaryTables(candidate.Tokens.Count, tokens.Count)) continue;
            var length = Boundary(candidate.Tokens, tokens, earlier.Overviews.Factor);
            // Of equal prefixes, one the new tokens extend can share its kept rows instead of copying them.
            var extends = length > 0 && Extends(candidate.Tokens, tokens);
            if (length > bestLength || length == bestLength && extends && !bestExtends)
                (best, bestLength, bestExtends) = (candidate, length, extends);
        }
        if (best is null || cache.Acquire(best.Id) is not { } lease) return null;
        return (lease, new PrefixStart((RecomputedAttention)lease.Analysis.Attention, lease.Analysis.LastHiddenState, bestLength, bestExtends));
    }

    /// <summary>True when <paramref name="tokens"/> start with every one of <paramref name="earlier"/> and go on.</summary>
    private static bool Extends(IReadOnlyList<Token> earlier, IReadOnlyList<Token> tokens)
    {
        if (earlier.Count >= tokens.Count) return false;
        for (var i = 0; i < earlier.Count; i++)
            if (earlier[i].Id != tokens[i].Id) return false;
        return true;
    }
}
