using System.Runtime.Intrinsics;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tokenization;
using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

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

    /// <summary>Every head's metrics, reading blocks of rows through the source (a long analysis sums them in its forward).</summary>
    public static HeadMetric[] Compute(IAttentionSource attention, IReadOnlyList<Token> tokens, bool causal,
        CancellationToken cancellationToken = default)
    {
        var n = attention.Tokens;
        if (tokens.Count != n) throw new ArgumentException("tokens do not match the attention's size", nameof(tokens));
        var sums = new HeadMetricSums(attention.Layers, attention.Heads, tokens, causal);
        var rows = Math.Max(1, Models.Core.BlockedAttention.BlockRows(attention.Heads, n));
        var block = new float[(long)attention.Heads * Math.Min(rows, n) * n];
        for (var layer = 0; layer < attention.Layers; layer++)
            for (var r0 = 0; r0 < n; r0 += rows)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var r1 = Math.Min(n, r0 + rows);
                var size = (r1 - r0) * n;
                for (var h = 0; h < attention.Heads; h++) attention.Tile(layer, h, r0, r1, 0, n, block.AsSpan(h * size, size));
                sums.Add(layer, r0, 0, r1 - r0, n, block.AsSpan(0, attention.Heads * size));
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
/// The sums over query rows behind every <see cref="HeadMetric"/>, added a row at a time — during a long forward as
/// its blocks go by, or over a stored analysis — in float64, and turned into the metrics at the end. One pass over
/// each row computes them all: the heavy sums are vectorised, the duplicate and induction patterns are sparse
/// (each row visits the earlier occurrences of its own token).
/// </summary>
public sealed class HeadMetricSums
{
    private enum Sum { Entropy, Normalized, Distance, First, Cls, Sep, Self, Previous, Total, Duplicate, Induction, Squares, Count }

    internal const int Stride = (int)Sum.Count;
    private readonly double[] _sums;
    private readonly int _heads, _n, _leading;
    private readonly bool _causal, _hasCls, _hasSep;
    private readonly int[] _special;                    // special token positions
    private readonly int[] _previousSame;               // the previous position with the same id, or −1

    /// <summary>Rows between checkpoints of the cumulative sums (causal analyses keep them to resume a prefix).</summary>
    public const int CheckpointRows = 64;

    private readonly double[]? _checkpoints;            // [layer, head, k, sum]: the sums over rows [0, (k + 1)·CheckpointRows)
    private readonly int _checkpointCount;

    /// <param name="checkpoints">keep the cumulative sums every <see cref="CheckpointRows"/> rows (causal only)</param>
    public HeadMetricSums(int layers, int heads, IReadOnlyList<Token> tokens, bool causal, bool checkpoints = false)
    {
        (_heads, _n, _causal) = (heads, tokens.Count, causal);
        _sums = new double[layers * heads * Stride];
        if (checkpoints && causal)
        {
            _checkpointCount = _n / CheckpointRows;
            _checkpoints = new double[layers * heads * _checkpointCount * Stride];
        }
        while (_leading < _n && tokens[_leading].Special) _leading++;
        _hasCls = _leading > 0;
        _hasSep = tokens.Skip(_leading).Any(t => t.Special);
        _special = Enumerable.Range(0, _n).Where(j => tokens[j].Special).ToArray();
        _previousSame = new int[_n];
        var last = new Dictionary<int, int>();
        for (var i = 0; i < _n; i++)
        {
            _previousSame[i] = last.GetValueOrDefault(tokens[i].Id, -1);
            last[tokens[i].Id] = i;
        }
    }

    /// <summary>
    /// A block of rows of every head: <paramref name="probabilities"/> is [head, row, col], rows from
    /// <paramref name="rowStart"/>, keys from <paramref name="colStart"/>; a row's other keys hold 0. Runs of rows of
    /// every head go in parallel (<see cref="RowRuns"/>).
    /// </summary>
    public void Add(int layer, int rowStart, int colStart, int rows, int cols, ReadOnlySpan<float> probabilities)
    {
        unsafe
        {
            fixed (float* block = probabilities)
            {
                var pointer = (nint)block;
                var runs = new RowRuns(_heads, rowStart, rows, RowRuns.DefaultRows);
                var sums = new RunSums(runs);
                runs.ForEach(run =>
                {
                    var values = new ReadOnlySpan<float>((float*)pointer + ((long)run.Head * rows + run.Start - rowStart) * cols, run.Rows * cols);
                    SumRun(layer, run, colStart, cols, values, sums);
                });
                Merge(layer, sums);
            }
        }
    }

    /// <summary>
    /// The sums of one run of rows (<paramref name="values"/>: its rows of <paramref name="cols"/> keys from
    /// <paramref name="colStart"/>) into the run's slot of <paramref name="sums"/>, apart from the head's running sums so
    /// that runs go in parallel; <see cref="Merge"/> adds them in order.
    /// </summary>
    public void SumRun(int layer, RowRun run, int colStart, int cols, ReadOnlySpan<float> values, RunSums sums)
    {
        var total = sums.Total(run.Index);
        var mark = 0;
        for (var r = 0; r < run.Rows; r++)
        {
            var row = run.Start + r;
            AccumulateRow(total, row, colStart, values.Slice(r * cols, cols));
            if (_checkpoints is not null && (row + 1) % CheckpointRows == 0) total.CopyTo(sums.Mark(run.Index, mark++));
        }
    }

    /// <summary>
    /// Adds every run's sums to its head's, in row order, and keeps the checkpoints the runs crossed. Every head's rows
    /// arrive in order (blocks of rows in turn), so the sums after every <see cref="CheckpointRows"/>-th row are a checkpoint.
    /// </summary>
    public void Merge(int layer, RunSums sums)
    {
        foreach (var run in sums.Runs.All)
        {
            var head = _sums.AsSpan((layer * _heads + run.Head) * Stride, Stride);
            var mark = 0;
            for (var row = run.Start; row < run.Start + run.Rows; row++)
            {
                if (_checkpoints is null || (row + 1) % CheckpointRows != 0) continue;
                var slot = (layer * _heads + run.Head) * _checkpointCount + (row + 1) / CheckpointRows - 1;
                var checkpoint = _checkpoints.AsSpan(slot * Stride, Stride);
                TensorPrimitives.Add(head, sums.Mark(run.Index, mark++), checkpoint);
            }
            TensorPrimitives.Add(head, sums.Total(run.Index), head);
        }
    }

    /// <summary>The checkpoints kept (null without), to resume a later analysis that shares a prefix.</summary>
    public MetricCheckpoints? Checkpoints => _checkpoints is null ? null : new MetricCheckpoints(_checkpoints, _heads, _checkpointCount);

    /// <summary>
    /// Starts from an earlier causal analysis's sums over rows [0, <paramref name="rows"/>) (a multiple of
    /// <see cref="CheckpointRows"/>) of the same first tokens: a causal row's sums depend only on the tokens up to it.
    /// </summary>
    public void ResumeFrom(MetricCheckpoints earlier, int rows)
    {
        if (earlier.Data.Length != _sums.Length * earlier.Count) throw new ArgumentException("another model's checkpoints", nameof(earlier));
        if (rows <= 0 || rows % CheckpointRows != 0 || rows / CheckpointRows > earlier.Count || rows > _n)
            throw new ArgumentOutOfRangeException(nameof(rows), rows, "not a checkpoint of the earlier analysis");
        var k = rows / CheckpointRows;
        for (var lh = 0; lh < _sums.Length / Stride; lh++)
        {
            earlier.Data.AsSpan((lh * earlier.Count + k - 1) * Stride, Stride).CopyTo(_sums.AsSpan(lh * Stride, Stride));
            if (_checkpoints is not null)
                earlier.Data.AsSpan(lh * earlier.Count * Stride, k * Stride).CopyTo(_checkpoints.AsSpan(lh * _checkpointCount * Stride));
        }
    }

    private void AccumulateRow(Span<double> sums, int row, int colStart, ReadOnlySpan<float> values)
    {
        // Causal rows see keys up to themselves: later cells are masked, not weights (the smoothing skips them).
        var visible = _causal ? Math.Min(values.Length, row - colStart + 1) : values.Length;
        if (visible <= 0) return;
        var p = values[..visible];
        var length = _causal ? row + 1 : _n;
        var epsilon = 0.0001 / length;
        // Keys j < row and the others apart: the distance |i − j| changes sign at the row.
        var below = _causal ? visible : Math.Clamp(row - colStart, 0, visible);
        var low = RowSums(p[..below], colStart, epsilon);
        var high = RowSums(p[below..], colStart + below, epsilon);
        var entropy = -(low.Entropy + high.Entropy);
        // Visible keys outside this block hold 0: each adds −ε·log ε after smoothing.
        var outside = _causal ? colStart : _n - values.Length;
        entropy += outside * -(epsilon * Math.Log(epsilon));
        sums[(int)Sum.Entropy] += entropy;
        if (length > 1) sums[(int)Sum.Normalized] += entropy / Math.Log(length);

        var total = low.Total + high.Total;
        var distance = row * low.Total - low.Weighted + high.Weighted - row * high.Total;
        sums[(int)Sum.Distance] += distance;
        sums[(int)Sum.Total] += total;
        if (colStart == 0) sums[(int)Sum.First] += p[0];
        foreach (var j in _special) sums[j < _leading ? (int)Sum.Cls : (int)Sum.Sep] += At(p, colStart, j);
        var self = At(p, colStart, row);
        sums[(int)Sum.Self] += self;
        sums[(int)Sum.Previous] += row > 0 ? At(p, colStart, row - 1) : 0;
        sums[(int)Sum.Squares] += low.Squares + high.Squares - 2 * self + 1;
        // Earlier occurrences j of this row's token: duplicate at j, induction at j + 1 (both strictly before the row).
        for (var j = _previousSame[row]; j >= 0; j = _previousSame[j])
        {
            sums[(int)Sum.Duplicate] += At(p, colStart, j);
            if (j + 1 < row) sums[(int)Sum.Induction] += At(p, colStart, j + 1);
        }
    }

    /// <summary>
    /// Σ s·log s with s = 0.9999·p + ε (the smoothed weights), Σ p, Σ p·j and Σ p² over keys j from
    /// <paramref name="firstKey"/>: one pass, 16 or 8 keys a step. The sums are float64; the logarithm is taken in float32
    /// (16 or 8 lanes; .NET's float64 Vector256.Log cost 2.7× as much) and corrected to float64 to first order: with
    /// f = (float)s, log s = log f + (s − f)/f, so s·log s = s·log f + (s − f)·s/f, and s/f = 1 within 2⁻²⁴ (dropping it
    /// moves a term by s·2⁻⁴⁸, and saves a division). The error left is float32 log's own.
    /// </summary>
    private static (double Entropy, double Total, double Weighted, double Squares) RowSums(ReadOnlySpan<float> p, int firstKey,
        double epsilon)
    {
        // The linear layers' path picks the vectors, as FastExp does (tests force each); libtorch's takes the widest.
        var path = LinearKernel.Selected;
        if (path == LinearKernel.Path.Torch)
            path = LinearKernel.Supported(LinearKernel.Path.Vector512) ? LinearKernel.Path.Vector512 : LinearKernel.Path.Vector256;
        var k = 0;
        double e = 0, t = 0, w = 0, q = 0;
        if (path == LinearKernel.Path.Vector512 && p.Length >= 16)
            (k, e, t, w, q) = RowSums512(p, firstKey, epsilon);
        else if (path != LinearKernel.Path.Scalar && Vector256.IsHardwareAccelerated)
            (k, e, t, w, q) = RowSums256(p, firstKey, epsilon);
        for (; k < p.Length; k++)
        {
            double x = p[k], smoothed = x * 0.9999 + epsilon;
            e += smoothed * Math.Log(smoothed);
            t += x;
            w += x * (firstKey + k);
            q += x * x;
        }
        return (e, t, w, q);
    }

    /// <summary><see cref="RowSums"/> sixteen keys a step (on a core with 512-bit units, twice the 256-bit path's rate).</summary>
    private static (int Done, double Entropy, double Total, double Weighted, double Squares) RowSums512(ReadOnlySpan<float> p,
        int firstKey, double epsilon)
    {
        var (entropy, total, weighted, squares) = (Vector512<double>.Zero, Vector512<double>.Zero, Vector512<double>.Zero,
            Vector512<double>.Zero);
        var keys = Vector512.Create(firstKey, firstKey + 1.0, firstKey + 2.0, firstKey + 3.0, firstKey + 4.0, firstKey + 5.0,
            firstKey + 6.0, firstKey + 7.0);
        var (weight, floor, eight, sixteen) = (Vector512.Create(0.9999), Vector512.Create(epsilon), Vector512.Create(8.0),
            Vector512.Create(16.0));
        var k = 0;
        for (; k + 16 <= p.Length; k += 16)
        {
            var x = Vector512.Create(p.Slice(k, 16));
            var (low, high) = (Vector512.WidenLower(x), Vector512.WidenUpper(x));
            var (smoothedLow, smoothedHigh) = (low * weight + floor, high * weight + floor);
            var rounded = Vector512.Narrow(smoothedLow, smoothedHigh);
            var log = Vector512.Log(rounded);
            var (roundedLow, roundedHigh) = (Vector512.WidenLower(rounded), Vector512.WidenUpper(rounded));
            entropy += smoothedLow * Vector512.WidenLower(log) + (smoothedLow - roundedLow)
                + smoothedHigh * Vector512.WidenUpper(log) + (smoothedHigh - roundedHigh);
            total += low + high;
            weighted += low * keys + high * (keys + eight);
            squares += low * low + high * high;
            keys += sixteen;
        }
        return (k, Vector512.Sum(entropy), Vector512.Sum(total), Vector512.Sum(weighted), Vector512.Sum(squares));
    }

    /// <summary><see cref="RowSums"/> eight keys a step.</summary>
    private static (int Done, double Entropy, double Total, double Weighted, double Squares) RowSums256(ReadOnlySpan<float> p,
        int firstKey, double epsilon)
    {
        var (entropy, total, weighted, squares) = (Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero,
            Vector256<double>.Zero);
        var keys = Vector256.Create(firstKey, firstKey + 1.0, firstKey + 2.0, firstKey + 3.0);
        var (weight, floor, four, eight) = (Vector256.Create(0.9999), Vector256.Create(epsilon), Vector256.Create(4.0), Vector256.Create(8.0));
        var k = 0;
        for (; k + 8 <= p.Length; k += 8)
        {
            var x = Vector256.Create(p.Slice(k, 8));
            var (low, high) = (Vector256.WidenLower(x), Vector256.WidenUpper(x));
            var (smoothedLow, smoothedHigh) = (low * weight + floor, high * weight + floor);
            var rounded = Vector256.Narrow(smoothedLow, smoothedHigh);
            var log = Vector256.Log(rounded);
            var (roundedLow, roundedHigh) = (Vector256.WidenLower(rounded), Vector256.WidenUpper(rounded));
            entropy += smoothedLow * Vector256.WidenLower(log) + (smoothedLow - roundedLow)
                + smoothedHigh * Vector256.WidenUpper(log) + (smoothedHigh - roundedHigh);
            total += low + high;
            weighted += low * keys + high * (keys + four);
            squares += low * low + high * high;
            keys += eight;
        }
        return (k, Vector256.Sum(entropy), Vector256.Sum(total), Vector256.Sum(weighted), Vector256.Sum(squares));
    }

    /// <summary>The weight on key <paramref name="key"/>, 0 outside the row's visible keys.</summary>
    private static double At(ReadOnlySpan<float> p, int colStart, int key) =>
        key >= colStart && key < colStart + p.Length ? p[key - colStart] : 0;

    public HeadMetric[] Finish()
    {
        var n = (double)_n;
        var normalizedRows = _causal ? _n - 1 : _n > 1 ? _n : 0;                      // rows with more than one key
        var result = new HeadMetric[_sums.Length / Stride];
        for (var k = 0; k < result.Length; k++)
        {
            var offset = k * Stride;
            double Get(Sum which) => _sums[offset + (int)which];
            var total = Math.Max(Get(Sum.Total), 1e-300);
            var first = Get(Sum.First) / n;
            result[k] = new HeadMetric(k / _heads, k % _heads,
                Get(Sum.Entropy) / n,
                normalizedRows > 0 ? Get(Sum.Normalized) / normalizedRows : 0,
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

/// <summary>A causal analysis's cumulative metric sums every <see cref="HeadMetricSums.CheckpointRows"/> rows, per head.</summary>
public sealed record MetricCheckpoints(double[] Data, int Heads, int Count)
{
    public long SizeInBytes => (long)Data.Length * sizeof(double);

    public static long BytesFor(int layers, int heads, int tokens) =>
        (long)layers * heads * (tokens / HeadMetricSums.CheckpointRows) * HeadMetricSums.Stride * sizeof(double);
}
