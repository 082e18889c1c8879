using System.Runtime.InteropServices;
using static TorchSharp.torch;

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
    }

    /// <summary>The smallest power of two that brings <paramref name="tokens"/> to at most <see cref="MaxSide"/> blocks.</summary>
    public static int FactorFor(int tokens)
    {
        var factor = 1;
        while ((tokens + factor - 1) / factor > MaxSide) factor *= 2;
        return factor;
    }

    public static long BytesFor(int layers, int heads, int tokens)
    {
        var side = (long)(tokens + FactorFor(tokens) - 1) / FactorFor(tokens);
        return 2L * layers * heads * side * side * sizeof(float);
    }

    public long SizeInBytes => BytesFor(Layers, Heads, Tokens);

    /// <summary>
    /// Adds a forward block: <paramref name="probabilities"/> (H, rows, cols) for rows from <paramref name="rowStart"/>,
    /// keys from <paramref name="colStart"/>. Blocks are powers of two in rows, so a block lies within one row of
    /// blocks or covers whole ones.
    /// </summary>
    public void Add(int layer, int rowStart, int colStart, Tensor probabilities)
    {
        using var scope = NewDisposeScope();
        long heads = probabilities.shape[0], rows = probabilities.shape[1], cols = probabilities.shape[2];
        // Columns first: pad the keys out to whole blocks, then reduce each block of columns.
        var (b0, b1) = (colStart / Factor, (int)((colStart + cols + Factor - 1) / Factor));
        var padded = zeros(heads, rows, (b1 - b0) * Factor, dtype: float32);
        padded.narrow(2, colStart - b0 * Factor, cols).copy_(probabilities);
        var blocks = padded.view(heads, rows, b1 - b0, Factor);
        var (colMax, colSum) = (blocks.amax([-1]), blocks.sum([-1]));              // (H, rows, blocks)
        // Then rows: the block's rows fall into whole blocks of rows, the last one padded with zero rows.
        var r0 = rowStart / Factor;
        var blockRows = (int)((rows + Factor - 1) / Factor);
        var rowsPadded = (long)blockRows * Factor;
        if (rowsPadded != rows)
        {
            colMax = nn.functional.pad(colMax, [0, 0, 0, rowsPadded - rows]);
            colSum = nn.functional.pad(colSum, [0, 0, 0, rowsPadded - rows]);
        }
        var max = colMax.view(heads, blockRows, -1, b1 - b0).amax([2]);             // (H, blockRows, blocks)
        var sum = colSum.view(heads, blockRows, -1, b1 - b0).sum([2]);
        var maxTarget = _max[layer].narrow(1, r0, blockRows).narrow(2, b0, b1 - b0);
        var sumTarget = _sum[layer].narrow(1, r0, blockRows).narrow(2, b0, b1 - b0);
        maxTarget.copy_(maximum(maxTarget, max));
        sumTarget.add_(sum);
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
        var heads = source.flatten(0, 1);                                             // (k, rows, cols)
        long rows = rowBlock1 - rowBlock0, cols = colBlock1 - colBlock0;
        long outRows = (rows + group - 1) / group, outCols = (cols + group - 1) / group;
        // Each head is re-pooled first, then the heads are combined: a max-pooled mean is the mean of block maxima.
        var padded = nn.functional.pad(heads, [0, outCols * group - cols, 0, outRows * group - rows]);
        var grouped = padded.view(-1, outRows, group, outCols, group);
        var pooled = mean ? grouped.sum([2, 4]) : grouped.amax([2, 4]);               // (k, outRows, outCols)
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
