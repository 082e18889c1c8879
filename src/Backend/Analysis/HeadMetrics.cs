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

/// <summary>Every head's metrics: sums over query rows (<see cref="HeadMetricSums"/>), so any block of rows adds in.</summary>
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

    /// <summary>Every head's metrics, reading one layer at a time (a stored source) or row blocks (a recomputed one).</summary>
    public static HeadMetric[] Compute(IAttentionSource attention, IReadOnlyList<Token> tokens, bool causal,
        CancellationToken cancellationToken = default)
    {
        var n = attention.Tokens;
        if (tokens.Count != n) throw new ArgumentException("tokens do not match the attention's size", nameof(tokens));
        var sums = new HeadMetricSums(attention.Layers, attention.Heads, tokens, causal);
        var rows = attention.IsStored ? n : Math.Max(1, Models.Core.BlockedAttention.BlockRows(attention.Heads, n));
        for (var layer = 0; layer < attention.Layers; layer++)
        {
            for (var r0 = 0; r0 < n; r0 += rows)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var r1 = Math.Min(n, r0 + rows);
                var block = empty([attention.Heads, r1 - r0, n], float32);              // (H, rows, n)
                var span = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(block.bytes);
                var size = (r1 - r0) * n;
                for (var h = 0; h < attention.Heads; h++) attention.Tile(layer, h, r0, r1, 0, n, span.Slice(h * size, size));
                // Stored analyses are small: their sums run in float64, as they always have.
                sums.Add(layer, r0, 0, attention.IsStored ? block.to(float64) : block);
            }
        }
        return sums.Finish();
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

/// <summary>
/// The sums over query rows behind every <see cref="HeadMetric"/>, added a block of rows at a time — during a long
/// forward as its blocks go by, or over a stored analysis's layers — and turned into the metrics at the end.
/// </summary>
public sealed class HeadMetricSums
{
    private enum Sum { Entropy, Normalized, Distance, First, Cls, Sep, Self, Previous, Total, Duplicate, Induction, Squares, Count }

    private readonly double[] _sums;
    private readonly int _heads, _n, _leading;
    private readonly bool _causal, _hasCls, _hasSep;
    private readonly long[] _ids;
    private readonly double[] _clsMask, _sepMask;
    private double _normalizedRows;
    private readonly HashSet<int> _normalizedCounted = [];

    public HeadMetricSums(int layers, int heads, IReadOnlyList<Token> tokens, bool causal)
    {
        (_heads, _n, _causal) = (heads, tokens.Count, causal);
        _sums = new double[layers * heads * (int)Sum.Count];
        while (_leading < _n && tokens[_leading].Special) _leading++;
        _clsMask = new double[_n];
        _sepMask = new double[_n];
        for (var j = 0; j < _n; j++)
            if (tokens[j].Special) (j < _leading ? _clsMask : _sepMask)[j] = 1.0;
        _hasCls = _leading > 0;
        _hasSep = tokens.Skip(_leading).Any(t => t.Special);
        _ids = tokens.Select(t => (long)t.Id).ToArray();
    }

    /// <param name="probabilities">(H, rows, cols), float32 or float64: rows from <paramref name="rowStart"/>, keys
    /// from <paramref name="colStart"/>; the row's other keys hold 0</param>
    public void Add(int layer, int rowStart, int colStart, Tensor probabilities)
    {
        using var scope = NewDisposeScope();
        var a = probabilities;
        var dtype = a.dtype;
        long rows = a.shape[1], cols = a.shape[2];
        var i = arange(rowStart, rowStart + rows, dtype: int64);
        var j = arange(colStart, colStart + cols, dtype: int64);
        var (query, key) = (i.unsqueeze(1), j.unsqueeze(0));
        var valid = _causal ? key <= query : ones([rows, cols], @bool);                 // (rows, cols)
        var rowLength = _causal ? (i + 1).to(float64) : full([rows], (double)_n, float64);
        var epsilon = 0.0001 / rowLength;                                             // (rows)
        var smoothed = (a * 0.9999 + epsilon.to(dtype).unsqueeze(1)).masked_fill(valid.logical_not(), 1.0);
        var rowEntropy = -(smoothed * smoothed.log()).sum(-1).to(float64);            // (H, rows)
        // The row's visible keys outside this block hold 0: each adds −ε·log ε after smoothing.
        var outside = _causal ? colStart : _n - cols;
        if (outside > 0) rowEntropy += (-(epsilon * epsilon.log()) * outside).unsqueeze(0);
        var multiKey = (rowLength > 1.5).to(float64);
        var normalized = (rowEntropy / rowLength.log().clamp_min(1e-12) * multiKey).sum(-1);
        if (_normalizedCounted.Add(rowStart)) _normalizedRows += multiKey.sum().item<double>();

        var rowSums = a.sum(-1).to(float64);                                         // (H, rows)
        var distance = _causal
            ? (rowSums * i.to(float64).unsqueeze(0) - a.matmul(j.to(dtype)).to(float64)).sum(-1)
            : (a * (query - key).abs().to(dtype)).sum([-2, -1]).to(float64);
        var first = colStart == 0 ? a.select(-1, 0).sum(-1).to(float64) : zeros([a.shape[0]], float64);
        var cls = a.matmul(tensor(_clsMask.AsSpan((int)colStart, (int)cols).ToArray()).to(dtype)).sum(-1).to(float64);
        var sep = a.matmul(tensor(_sepMask.AsSpan((int)colStart, (int)cols).ToArray()).to(dtype)).sum(-1).to(float64);
        var self = Diagonal(a, i, colStart, cols, 0);
        var previous = Diagonal(a, i, colStart, cols, -1);
        var ids = tensor(_ids);
        var (rowIds, colIds) = (ids.narrow(0, rowStart, rows).unsqueeze(1), ids.narrow(0, colStart, cols).unsqueeze(0));
        var below = key < query;
        var duplicate = rowIds.eq(colIds).logical_and(below).to(dtype);
        var shifted = colStart == 0
            ? cat([full([1], -1L, int64), ids.narrow(0, 0, cols - 1)])
            : ids.narrow(0, colStart - 1, cols);
        var induction = rowIds.eq(shifted.unsqueeze(0)).logical_and(below).to(dtype);
        var dup = (a * duplicate).sum([-2, -1]).to(float64);
        var ind = (a * induction).sum([-2, -1]).to(float64);
        var squares = (a * a).sum([-2, -1]).to(float64) - 2 * self + rows;

        var columns = stack([rowEntropy.sum(-1), normalized, distance, first, cls, sep, self, previous, rowSums.sum(-1), dup, ind, squares], 1);
        var values = columns.contiguous().data<double>().ToArray();                  // (H, 12)
        for (var h = 0; h < _heads; h++)
            for (var k = 0; k < (int)Sum.Count; k++) _sums[(layer * _heads + h) * (int)Sum.Count + k] += values[h * (int)Sum.Count + k];
    }

    /// <summary>Σ over the block's rows of A[i, i + offset] where that key is in the block, per head.</summary>
    private static Tensor Diagonal(Tensor a, Tensor rows, long colStart, long cols, int offset)
    {
        var column = rows + offset - colStart;                                        // (rows)
        var inBlock = (column >= 0).logical_and(column < cols);
        var index = column.clamp(0, cols - 1).unsqueeze(0).unsqueeze(-1).expand(a.shape[0], -1, 1);
        return (a.gather(-1, index).squeeze(-1).to(float64) * inBlock.to(float64)).sum(-1);
    }

    public HeadMetric[] Finish()
    {
        var n = (double)_n;
        var result = new HeadMetric[_sums.Length / (int)Sum.Count];
        for (var k = 0; k < result.Length; k++)
        {
            var offset = k * (int)Sum.Count;
            double Get(Sum which) => _sums[offset + (int)which];
            var total = Math.Max(Get(Sum.Total), 1e-300);
            var first = Get(Sum.First) / n;
            result[k] = new HeadMetric(k / _heads, k % _heads,
                Get(Sum.Entropy) / n,
                _normalizedRows > 0 ? Get(Sum.Normalized) / _normalizedRows : 0,
                Get(Sum.Distance) / n,
                first,
                _hasCls ? Get(Sum.Cls) / n : null,
                _hasSep ? Get(Sum.Sep) / n : null,
                first > HeadMetrics.SinkThreshold,
                _n > 1 ? Get(Sum.Previous) / (n - 1) : 0,
                Get(Sum.Self) / n,
                Get(Sum.Duplicate) / total,
                Get(Sum.Induction) / total,
                Math.Sqrt(Math.Max(0, Get(Sum.Squares))) / n);
        }
        return result;
    }
}
