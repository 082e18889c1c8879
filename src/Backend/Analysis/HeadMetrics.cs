using AttentionViz.Backend.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// Diagnostics of one head, as defined in ../shared/docs/anchors.md (A is the head's matrix, row i = query,
/// column j = key, rows sum to 1; causal models have j ≤ i, so row i has i + 1 keys).
/// </summary>
/// <param name="Entropy">(1/n) Σᵢ −Σⱼ Ãᵢⱼ log Ãᵢⱼ in nats, Ã = 0.9999·A + 0.0001/len(i) on the row's keys.</param>
/// <param name="NormalizedEntropy">The same with row i divided by log len(i) (1 = uniform); rows with one key are left out.</param>
/// <param name="MeanDistance">(1/n) Σᵢ Σⱼ Aᵢⱼ |i − j|, in tokens.</param>
/// <param name="FirstToken">Sink α of the first token: the mean over rows of column 0.</param>
/// <param name="Cls">Mean over rows of the mass on the leading special tokens ([CLS], BOS); null when there are none.</param>
/// <param name="Sep">Mean over rows of the mass on the other special tokens ([SEP], EOS); null when there are none.</param>
/// <param name="Sink">FirstToken &gt; 0.3: the head parks its attention on the first token.</param>
/// <param name="PreviousToken">Mean of A_{i,i−1} over i ≥ 1 (0 for one token).</param>
/// <param name="Self">Mean of the diagonal A_{i,i}.</param>
/// <param name="DuplicateToken">Σ(A ⊙ P)/ΣA, P_{ij} = 1 when token_i = token_j and j &lt; i (TransformerLens).</param>
/// <param name="Induction">Σ(A ⊙ P)/ΣA with P the duplicate pattern shifted one column right, j &lt; i (TransformerLens).</param>
/// <param name="SelfDistance">‖A − I‖_F / n: the notebook's "modularity", which measures distance from pure self-attention.</param>
public sealed record HeadMetric(
    int Layer, int Head,
    double Entropy, double NormalizedEntropy, double MeanDistance,
    double FirstToken, double? Cls, double? Sep, bool Sink,
    double PreviousToken, double Self, double DuplicateToken, double Induction, double SelfDistance);

/// <summary>Every head's metrics at once, with TorchSharp over one layer's (H, n, n) block at a time, in float64.</summary>
public static class HeadMetrics
{
    public const double SinkThreshold = 0.3;

    /// <summary>The metric names a client can ask a histogram of (the numeric fields of <see cref="HeadMetric"/>, camelCase).</summary>
    public static readonly string[] Names =
        ["entropy", "normalizedEntropy", "meanDistance", "firstToken", "cls", "sep", "previousToken", "self", "duplicateToken", "induction",
            "selfDistance"];

    public static double? Value(HeadMetric m, string name) => name switch
    {
        "entropy" => m.Entropy,
        "normalizedEntropy" => m.NormalizedEntropy,
        "meanDistance" => m.MeanDistance,
        "firstToken" => m.FirstToken,
        "cls" => m.Cls,
        "sep" => m.Sep,
        "previousToken" => m.PreviousToken,
        "self" => m.Self,
        "duplicateToken" => m.DuplicateToken,
        "induction" => m.Induction,
        "selfDistance" => m.SelfDistance,
        // The request's metric was checked against Names (RequestChecks.OneOf): another name is the caller's bug.
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not one of HeadMetrics.Names"),
    };

    public static HeadMetric[] Compute(AttentionTensor attention, IReadOnlyList<Token> tokens, bool causal,
        CancellationToken cancellationToken = default)
    {
        var n = attention.Tokens;
        if (tokens.Count != n) throw new ArgumentException("tokens do not match the attention's size", nameof(tokens));
        using var scope = NewDisposeScope();
        var index = arange(n, float64);
        var query = index.unsqueeze(1);                                               // (n, 1)
        var key = index.unsqueeze(0);                                                 // (1, n)
        var valid = causal ? key <= query : ones([n, n], @bool);                      // (n, n)
        var rowLength = causal ? index + 1 : full([n], (double)n, float64);           // (n)
        var multiKey = rowLength > 1.5;                                               // rows whose entropy can be normalised
        var logLength = rowLength.log();
        var distance = (query - key).abs();                                           // (n, n)
        var identity = eye(n, dtype: float64);

        var leading = 0;
        while (leading < n && tokens[leading].Special) leading++;
        var clsMask = zeros([n], float64);
        var sepMask = zeros([n], float64);
        for (var j = 0; j < n; j++)
            if (tokens[j].Special) (j < leading ? clsMask : sepMask)[j] = 1.0;
        var hasCls = leading > 0;
        var hasSep = tokens.Skip(leading).Any(t => t.Special);

        var ids = tokens.Select(t => (long)t.Id).ToArray();
        var duplicate = DuplicatePattern(ids);
        var induction = InductionPattern(ids);

        var result = new List<HeadMetric>(attention.Layers * attention.Heads);
        for (var layer = 0; layer < attention.Layers; layer++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var layerScope = NewDisposeScope();
            var a = attention.LayerTensor(layer);                                    // (H, n, n)
            var smoothed = (a * 0.9999 + (0.0001 / rowLength).unsqueeze(1)).masked_fill(valid.logical_not(), 1.0);
            var rowEntropy = -(smoothed * smoothed.log()).sum(-1);                    // (H, n)
            var entropy = rowEntropy.mean([-1]);
            var normalized = multiKey.any().item<bool>()
                ? (rowEntropy / logLength.clamp_min(1e-12)).masked_select(multiKey.expand_as(rowEntropy)).reshape(a.shape[0], -1).mean([-1])
                : zeros([a.shape[0]], float64);
            var meanDistance = (a * distance).sum([-2, -1]) / n;
            var first = a.select(-1, 0).mean([-1]);
            var cls = a.matmul(clsMask).mean([-1]);
            var sep = a.matmul(sepMask).mean([-1]);
            var self = a.diagonal(0, -2, -1).mean([-1]);
            var previous = n > 1 ? a.diagonal(-1, -2, -1).mean([-1]) : zeros([a.shape[0]], float64);
            var total = a.sum([-2, -1]).clamp_min(1e-300);
            var dup = (a * duplicate).sum([-2, -1]) / total;
            var ind = (a * induction).sum([-2, -1]) / total;
            var selfDistance = (a - identity).square().sum([-2, -1]).sqrt() / n;

            var columns = stack([entropy, normalized, meanDistance, first, cls, sep, previous, self, dup, ind, selfDistance], 1); // (H, 11)
            var values = columns.contiguous().data<double>().ToArray();
            for (var head = 0; head < attention.Heads; head++)
            {
                var v = values.AsSpan(head * 11, 11);
                result.Add(new HeadMetric(layer, head, v[0], v[1], v[2], v[3], hasCls ? v[4] : null, hasSep ? v[5] : null,
                    v[3] > SinkThreshold, v[6], v[7], v[8], v[9], v[10]));
            }
        }
        return result.ToArray();
    }

    /// <summary>TransformerLens' duplicate-token pattern: P_{ij} = 1 when ids[i] = ids[j] and j &lt; i. (n, n) float64.</summary>
    public static Tensor DuplicatePattern(long[] ids)
    {
        var t = tensor(ids);
        var equal = t.unsqueeze(1).eq(t.unsqueeze(0)).to(float64);                   // (n, n)
        return equal.tril(-1);
    }

    /// <summary>
    /// TransformerLens' induction pattern: the duplicate pattern shifted one column right (P_{i,j} = 1 when
    /// ids[i] = ids[j−1]), kept strictly below the diagonal. (n, n) float64.
    /// </summary>
    public static Tensor InductionPattern(long[] ids)
    {
        var n = ids.Length;
        using var scope = NewDisposeScope();
        var duplicate = DuplicatePattern(ids);
        var shifted = zeros([n, n], float64);
        if (n > 1) shifted[.., 1..] = duplicate[.., ..(n - 1)];
        return shifted.tril(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The induction score on random tokens repeated twice (length T each): the mean of A's diagonal at offset −(T−1),
    /// i.e. of A_{i, i−T+1} for i = T−1 … n−1 (TransformerLens' induction stripe).
    /// </summary>
    public static double RepeatedSequenceInductionScore(ReadOnlySpan<float> matrix, int n, int period)
    {
        if (period < 1 || period >= n) throw new ArgumentOutOfRangeException(nameof(period));
        double sum = 0;
        var count = 0;
        for (var i = period - 1; i < n; i++)
        {
            sum += matrix[i * n + i - period + 1];
            count++;
        }
        return sum / count;
    }
}
