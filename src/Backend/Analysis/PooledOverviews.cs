using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// Every head's attention max- and mean-pooled over Factor × Factor blocks, accumulated block by block during the
/// forward, so that an overview of a long analysis (one head, or a mean over heads and layers) costs no recomputation.
/// Factor is a power of two, so any coarser power-of-two grid is an exact re-pooling of this one.
/// </summary>
public sealed class PooledOverviews : IDisposable
{
    /// <summary>The most blocks per side.</summary>
    public const int MaxSide = 256;

    private readonly Tensor _max;   // (L, H, side, side): each block's maximum
    private readonly Tensor _sum;   // (L, H, side, side): each block's sum (masked cells count as 0)
    private readonly nint _maxData, _sumData;

    public int Layers { get; }
    public int Heads { get; }
    public int Tokens { get; }
    public int Factor { get; }
    public int Side { get; }

    public PooledOverviews(int layers, int heads, int tokens)
    {
        (Layers, Heads, Tokens, Factor) = (layers, heads, tokens, FactorFor(tokens));
        Side = (tokens + Factor - 1) / Factor;
        _max = zeros(layers, heads, Side, Side, dtype: float32).DetachFromDisposeScope();
        _sum = zeros(layers, heads, Side, Side, dtype: float32).DetachFromDisposeScope();
        unsafe
        {
            // libtorch's CPU memory does not move: rows are added straight into it.
            _maxData = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(_max.bytes));
            _sumData = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(_sum.bytes));
        }
    }

    /// <summary>The smallest power of two that brings <paramref name="tokens"/> to at most <see cref="MaxSide"/> blocks.</summary>
    public static int FactorFor(int tokens)
    {
        var factor = 1;
        while ((tokens + factor - 1) / factor > MaxSide) factor *= 2;
        return factor;
    }

    /// <summary>
    /// Starts from an earlier causal analysis's overviews for rows [0, <paramref name="rows"/>) (a multiple of its
    /// factor): those bins are complete (a causal row sees no later key), and this factor is the same or a multiple,
    /// so each bin here is exactly the max (or sum) of factor/earlier-factor squared earlier bins.
    /// </summary>
    public void ResumeFrom(PooledOverviews earlier, int rows)
    {
        if (earlier.Layers != Layers || earlier.Heads != Heads || !CanResume(earlier.Factor, Factor, rows)
            || rows > Math.Min(earlier.Tokens, Tokens))
            throw new ArgumentOutOfRangeException(nameof(rows), rows, "the earlier overviews cannot start these");
        using var scope = NewDisposeScope();
        var group = Factor / earlier.Factor;
        var blocks = rows / earlier.Factor;                                            // complete earlier row bins (and columns)
        var side = (blocks + group - 1) / group;
        foreach (var (from, to, max) in new[] { (earlier._max, _max, true), (earlier._sum, _sum, false) })
        {
            var part = from.narrow(2, 0, blocks).narrow(3, 0, blocks);                 // (L, H, blocks, blocks)
            if (group == 1)
            {
                // The same bins: copied straight (re-pooling made two 70 MB temporaries at 8,192 tokens).
                to.narrow(2, 0, blocks).narrow(3, 0, blocks).copy_(part);
                continue;
            }
            var padded = nn.functional.pad(part, [0, side * group - blocks, 0, side * group - blocks]);
            var grouped = padded.view(Layers, Heads, side, group, side, group);
            to.narrow(2, 0, side).narrow(3, 0, side).copy_(max ? grouped.amax([3, 5]) : grouped.sum([3, 5]));
        }
    }

    /// <summary>
    /// True when overviews with <paramref name="earlierFactor"/> can start ones with <paramref name="factor"/> at
    /// <paramref name="rows"/>.
    /// </summary>
    public static bool CanResume(int earlierFactor, int factor, int rows) => factor >= earlierFactor && rows % earlierFactor == 0;

    public static long BytesFor(int layers, int heads, int tokens)
    {
        var side = (long)(tokens + FactorFor(tokens) - 1) / FactorFor(tokens);
        return 2L * layers * heads * side * side * sizeof(float);
    }

    public long SizeInBytes => BytesFor(Layers, Heads, Tokens);

    /// <summary>
    /// Adds rows [<paramref name="row0"/>, row0 + rows) of one head (<paramref name="values"/>: rows of
    /// <paramref name="cols"/> keys from <paramref name="colStart"/>; a row's other keys hold 0). Each bin's rows are first
    /// folded into one row of column maxima and sums (<paramref name="columnMax"/>, <paramref name="columnSum"/>: cols
    /// floats of scratch), which are then pooled across: per cell that is one max and one add, eight floats a step
    /// (pooling each row's few cells per bin on its own cost 7.6 ns a cell at 8,192 tokens). Callers adding rows of one
    /// head at the same time must not share a bin (<see cref="RowRuns"/> with a multiple of <see cref="Factor"/>).
    /// </summary>
    public unsafe void AddRows(int layer, int head, int row0, int rows, int colStart, int cols, ReadOnlySpan<float> values,
        Span<float> columnMax, Span<float> columnSum)
    {
        var max = columnMax[..cols];
        var sum = columnSum[..cols];
        for (var r = row0; r < row0 + rows;)
        {
            var end = Math.Min(row0 + rows, (r / Factor + 1) * Factor);
            values.Slice((r - row0) * cols, cols).CopyTo(max);
            values.Slice((r - row0) * cols, cols).CopyTo(sum);
            for (var k = r + 1; k < end; k++) Fold(values.Slice((k - row0) * cols, cols), max, sum);
            var offset = ((long)(layer * Heads + head) * Side + r / Factor) * Side;
            var binMax = (float*)_maxData + offset;
            var binSum = (float*)_sumData + offset;
            for (var b = colStart / Factor; b * Factor < colStart + cols; b++)
            {
                var start = Math.Max(b * Factor, colStart) - colStart;
                var stop = Math.Min((b + 1) * Factor, colStart + cols) - colStart;
                if (stop - start >= 16)
                {
                    binMax[b] = MathF.Max(binMax[b], TensorPrimitives.Max(max[start..stop]));
                    binSum[b] += TensorPrimitives.Sum(sum[start..stop]);
                    continue;
                }
                // Bins narrower than a vector (1 to 8 cells up to 2,048 tokens, a matrix's short last bin): a call per bin cost
                // more than its cells.
                var (binMaximum, binTotal) = (binMax[b], 0f);
                for (var j = start; j < stop; j++) (binMaximum, binTotal) = (MathF.Max(binMaximum, max[j]), binTotal + sum[j]);
                (binMax[b], binSum[b]) = (binMaximum, binSum[b] + binTotal);
            }
            r = end;
        }
    }

    /// <summary>max = max(max, row), sum += row, in one pass: TensorPrimitives' two passes (its Max keeps IEEE NaN and
    /// signed-zero rules, which probabilities, never negative, do not need) cost 1.5 ns a cell.</summary>
    private static void Fold(ReadOnlySpan<float> row, Span<float> max, Span<float> sum)
    {
        var k = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; k + 8 <= row.Length; k += 8)
            {
                var v = Vector256.Create(row.Slice(k, 8));
                Vector256.MaxNative(Vector256.Create(max.Slice(k, 8)), v).CopyTo(max.Slice(k, 8));
                (Vector256.Create(sum.Slice(k, 8)) + v).CopyTo(sum.Slice(k, 8));
            }
        for (; k < row.Length; k++) (max[k], sum[k]) = (MathF.Max(max[k], row[k]), sum[k] + row[k]);
    }

    /// <summary>
    /// The blocks [rowBlock0, rowBlock1) × [colBlock0, colBlock1) of heads chosen like a view's layer/head (−1: all),
    /// combined over the chosen heads by mean (or max when <paramref name="maxOverHeads"/>), each cell the block's max
    /// (<paramref name="mean"/> false) or mean, re-pooled by <paramref name="group"/> blocks per side.
    /// </summary>
    public float[] Read(int layer, int head, bool maxOverHeads, bool mean, int group,
        int rowBlock0, int rowBlock1, int colBlock0, int colBlock1)
    {
        using var scope = NewDisposeScope();
        var source = (mean ? _sum : _max).narrow(2, rowBlock0, rowBlock1 - rowBlock0).narrow(3, colBlock0, colBlock1 - colBlock0);
        if (layer >= 0) source = source.narrow(0, layer, 1);
        if (head >= 0) source = source.narrow(1, head, 1);
        long rows = rowBlock1 - rowBlock0, cols = colBlock1 - colBlock0;
        long outRows = (rows + group - 1) / group, outCols = (cols + group - 1) / group;
        // Each head is re-pooled first, then the heads are combined: a max-pooled mean is the mean of block maxima.
        // At the overviews' own size the heads are combined in place (a copy of every head is 70 MB at 8,192 tokens).
        Tensor pooled;
        if (group == 1) pooled = source.flatten(0, 1);                                // (k, rows, cols), a view when it can be
        else
        {
            var padded = nn.functional.pad(source.flatten(0, 1), [0, outCols * group - cols, 0, outRows * group - rows]);
            var grouped = padded.view(-1, outRows, group, outCols, group);
            pooled = mean ? grouped.sum([2, 4]) : grouped.amax([2, 4]);               // (k, outRows, outCols)
        }
        var result = maxOverHeads ? pooled.amax([0]) : pooled.mean([0]);
        if (mean)
        {
            // Sums over the cells the blocks really cover (the matrix's last blocks may be short).
            var rowCells = CellCounts(rowBlock0, rowBlock1, group);
            var colCells = CellCounts(colBlock0, colBlock1, group);
            result = result / (rowCells.unsqueeze(1) * colCells.unsqueeze(0));
        }
        return MemoryMarshal.Cast<byte, float>(result.to(float32).contiguous().bytes).ToArray();
    }

    /// <summary>Tokens in each group of <paramref name="group"/> blocks from rowBlock0 (the matrix's last block may be short).</summary>
    private Tensor CellCounts(int block0, int block1, int group)
    {
        var counts = new List<float>();
        for (var b = block0; b < block1; b += group)
        {
            var start = b * Factor;
            var end = Math.Min(Tokens, Math.Min(block1, b + group) * Factor);
            counts.Add(end - start);
        }
        return tensor(counts.ToArray());
    }

    public void Dispose()
    {
        _max.Dispose();
        _sum.Dispose();
    }
}
