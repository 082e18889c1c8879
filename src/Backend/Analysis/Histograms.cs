using AttentionViz.Backend.Tokenization;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>Equal-width bins: Counts[b] counts values in [Edges[b], Edges[b+1]) (the last bin includes its upper edge).</summary>
public sealed record Histogram(long[] Counts, double[] Edges, double Min, double Max, long Total);

public static class Histograms
{
    public const int DefaultBins = 50;
    public const int MaxBins = 1000;

    /// <summary>
    /// Histogram of attention weights over [0, 1] for one head (layer and head given), all heads of a layer (head
    /// null), or all layers and heads (layer null; head alone then picks that head in every layer). Causal models'
    /// masked entries (j &gt; i) are not weights and are left out; <paramref name="excludeSpecial"/> also leaves out every
    /// entry whose query or key is a special token. Counts with TorchSharp's histc, a block of rows of one head at a
    /// time (never a layer's n×n: an analysis of 8,000 tokens is read as recomputed tiles).
    /// </summary>
    public static Histogram Weights(IAttentionSource attention, IReadOnlyList<Token> tokens, bool causal, int? layer, int? head, int bins,
        bool excludeSpecial, CancellationToken cancellationToken = default, int blockRows = 0)
    {
        var n = attention.Tokens;
        var counts = new long[bins];
        long total = 0;
        var block = Rollout.BlockRows(n, blockRows);
        var scratch = new float[block * n];
        using (NewDisposeScope())
        {
            var ordinary = tensor(tokens.Select(t => !t.Special).ToArray());
            for (var start = 0; start < n; start += block)
            {
                var end = Math.Min(n, start + block);
                var cols = causal ? end : n;                                          // a causal model's later keys are all masked
                using var blockScope = NewDisposeScope();
                var i = arange(start, end).unsqueeze(1);
                var j = arange(cols).unsqueeze(0);
                var mask = causal ? j <= i : ones([end - start, cols], @bool);         // (rows, cols)
                if (excludeSpecial)
                    mask = mask.logical_and(ordinary.narrow(0, 0, cols).unsqueeze(0))
                        .logical_and(ordinary.narrow(0, start, end - start).unsqueeze(1));
                for (var l = 0; l < attention.Layers; l++)
                {
                    if (layer is { } only && only != l) continue;
                    for (var h = 0; h < attention.Heads; h++)
                    {
                        if (head is { } picked && picked != h) continue;
                        cancellationToken.ThrowIfCancellationRequested();
                        var size = (end - start) * cols;
                        attention.Tile(l, h, start, end, 0, cols, scratch.AsSpan(0, size));
                        using var tileScope = NewDisposeScope();
                        var a = tensor(scratch.AsSpan(0, size).ToArray(), [end - start, cols]);
                        var values = a.masked_select(mask);
                        total += values.shape[0];
                        var blockCounts = values.histc(bins, 0, 1).to(float64).data<double>().ToArray();
                        for (var b = 0; b < bins; b++) counts[b] += (long)Math.Round(blockCounts[b]);
                    }
                }
            }
        }
        return new Histogram(counts, Edges(0, 1, bins), 0, 1, total);
    }

    /// <summary>Histogram of values (e.g. one metric across heads) over [min, max] of the values (±0.5 when all equal).</summary>
    public static Histogram Values(IReadOnlyList<double> values, int bins)
    {
        if (values.Count == 0) return new Histogram(new long[bins], Edges(0, 1, bins), 0, 1, 0);
        var (min, max) = (values.Min(), values.Max());
        if (max <= min) (min, max) = (min - 0.5, max + 0.5);
        var counts = new long[bins];
        foreach (var v in values)
            counts[Math.Clamp((int)((v - min) / (max - min) * bins), 0, bins - 1)]++;
        return new Histogram(counts, Edges(min, max, bins), min, max, values.Count);
    }

    private static double[] Edges(double min, double max, int bins) =>
        Enumerable.Range(0, bins + 1).Select(b => min + (max - min) * b / bins).ToArray();
}
