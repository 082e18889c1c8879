using System.Diagnostics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>One token's rollout row, computed from the top layer down.</summary>
/// <param name="Scores">Row <c>Token</c> of R^Layer (sums to 1); null unless complete.</param>
/// <param name="Partial">e_token · Â^Layer ⋯ Â^ReachedLayer: the layers done so far (equal to Scores when complete).</param>
/// <param name="ReachedLayer">The lowest layer applied (0-based); 0 when complete, Layer + 1 when no layer was done.</param>
/// <param name="Complete">Every layer down to the first was applied (false only when the time budget ran out).</param>
public sealed record RolloutRowResult(int Token, int Layer, double[]? Scores, double[] Partial, int ReachedLayer, bool Complete);

/// <summary>
/// Attention rollout (Abnar &amp; Zuidema 2020; flow is in AttentionFlow.cs) on the residual-adjusted layer matrices
/// Âˡ = rownorm(0.5·Āˡ + 0.5·I), Āˡ = mean over heads of layer l (1-based here, as in anchors.md). Âˡ is read a block of
/// rows at a time (<see cref="AdjustedRows"/>), so a long analysis never holds a layer's n×n beyond a block.
/// </summary>
public static class Rollout
{
    /// <summary>
    /// The whole matrix costs L products of n×n matrices and 3·n² doubles: beyond this many tokens it is refused
    /// (one token's row, <see cref="Row"/>, has no limit).
    /// </summary>
    public const int MaxMatrixTokens = 2048;

    /// <summary>Cells of Âˡ read per block: a few MB whatever n.</summary>
    internal const int BlockCells = 1 << 19;

    /// <summary>Rows per block for n tokens.</summary>
    /// <param name="blockRows">a caller's choice (tests: several blocks at small n); 0: a block of about BlockCells</param>
    internal static int BlockRows(int n, int blockRows = 0) =>
        Math.Clamp(blockRows > 0 ? blockRows : BlockCells / Math.Max(1, n), 1, Math.Max(1, n));

    /// <summary>
    /// Rows [rowStart, rowEnd) of Âˡ⁺¹ (<paramref name="layer"/> 0-based), columns [0, cols), into
    /// <paramref name="destination"/> row-major: rownorm(0.5·mean over heads + 0.5·I). Columns past cols must be zero
    /// in every head (a causal model's keys after the block's last query). <paramref name="scratch"/> holds one tile.
    /// </summary>
    public static void AdjustedRows(IAttentionSource attention, int layer, int rowStart, int rowEnd, int cols, Span<double> destination,
        float[] scratch)
    {
        var heads = attention.Heads;
        var rows = rowEnd - rowStart;
        var size = checked(rows * cols);
        destination = destination[..size];
        var tile = scratch.AsSpan(0, size);
        destination.Clear();
        for (var h = 0; h < heads; h++)
        {
            attention.Tile(layer, h, rowStart, rowEnd, 0, cols, tile);
            for (var k = 0; k < size; k++) destination[k] += tile[k];
        }
        for (var r = 0; r < rows; r++)
        {
            var i = rowStart + r;
            var row = destination.Slice(r * cols, cols);
            double sum = 0;
            for (var k = 0; k < cols; k++) sum += row[k] = row[k] / heads * 0.5 + (k == i ? 0.5 : 0);
            for (var k = 0; k < cols; k++) row[k] /= sum;
        }
    }

    /// <summary>Âˡ⁺¹ (<paramref name="layer"/> 0-based) as a whole n×n row-major matrix, a block of rows at a time.</summary>
    public static void Adjusted(IAttentionSource attention, int layer, bool causal, Span<double> destination,
        CancellationToken cancellationToken = default, int blockRows = 0)
    {
        var n = attention.Tokens;
        var block = BlockRows(n, blockRows);
        var scratch = new float[Math.Min(n, block) * n];
        var rows = new double[Math.Min(n, block) * n];
        destination[..(n * n)].Clear();
        for (var start = 0; start < n; start += block)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var end = Math.Min(n, start + block);
            var cols = causal ? end : n;
            AdjustedRows(attention, layer, start, end, cols, rows, scratch);
            for (var i = start; i < end; i++)
                rows.AsSpan((i - start) * cols, cols).CopyTo(destination.Slice(i * n, cols));
        }
    }

    /// <summary>
    /// R¹ = Â¹, Rˡ = Âˡ · R^{l−1}, up to layer <paramref name="layer"/> (0-based: 0 is the first layer): row i is how
    /// much token i's representation after that layer draws on each input token. n×n float32, row-major. Refused
    /// beyond <see cref="MaxMatrixTokens"/>.
    /// </summary>
    public static float[] Compute(IAttentionSource attention, int layer, bool causal = false, CancellationToken cancellationToken = default)
    {
        var n = attention.Tokens;
        EnsureMatrixFits(n);
        using var scope = NewDisposeScope();
        var adjusted = new double[checked(n * n)];
        Tensor? rollout = null;
        for (var l = 0; l <= layer; l++)
        {
            Adjusted(attention, l, causal, adjusted, cancellationToken);
            var a = tensor(adjusted, [n, n], float64);
            rollout = rollout is null ? a : a.matmul(rollout);
        }
        return MemoryMarshal.Cast<byte, float>(rollout!.to(float32).contiguous().bytes).ToArray();
    }

    /// <summary>The refusal of a whole-matrix rollout at long n, in the product's words.</summary>
    public static void EnsureMatrixFits(int tokens)
    {
        if (tokens <= MaxMatrixTokens) return;
        throw new InvalidRequestException(
            $"The whole rollout matrix is limited to {MaxMatrixTokens} tokens (this analysis has {tokens}: a product of " +
            $"{tokens}×{tokens} matrices per layer); ask for one token's rollout with attention/rolloutRow");
    }

    /// <summary>
    /// Row <paramref name="token"/> of R^<paramref name="layer"/>: r = e_token, then r ← r · Âˡ from that layer down to the
    /// first, Âˡ read a block of rows at a time (only the rows where r is nonzero; for a causal model also only the
    /// columns up to each block's last row). O(L·n²) work, O(n) memory beyond one block. Cancellation is checked per
    /// block; the budget before each layer: when it runs out the result is honest about the layers done.
    /// </summary>
    public static RolloutRowResult Row(IAttentionSource attention, int token, int layer, bool causal, TimeSpan? budget = null,
        IProgress<AnalysisProgress>? progress = null, CancellationToken cancellationToken = default, int blockRows = 0)
    {
        var clock = Stopwatch.StartNew();
        var n = attention.Tokens;
        var block = BlockRows(n, blockRows);
        var scratch = new float[block * n];
        var rows = new double[block * n];
        var r = new double[n];
        r[token] = 1;
        var next = new double[n];
        var reached = layer + 1;
        for (var l = layer; l >= 0; l--)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (budget is { } b && clock.Elapsed >= b) break;
            int low = 0, high = n;
            while (low < n && r[low] == 0) low++;
            while (high > low && r[high - 1] == 0) high--;
            Array.Clear(next);
            for (var start = low; start < high; start += block)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var end = Math.Min(high, start + block);
                var cols = causal ? end : n;
                AdjustedRows(attention, l, start, end, cols, rows, scratch);
                for (var k = start; k < end; k++)
                {
                    var weight = r[k];
                    if (weight == 0) continue;
                    var row = rows.AsSpan((k - start) * cols, cols);
                    for (var j = 0; j < cols; j++) next[j] += weight * row[j];
                }
            }
            (r, next) = (next, r);
            reached = l;
            progress?.Report(new AnalysisProgress(layer - l + 1, layer + 1));
        }
        var complete = reached == 0;
        return new RolloutRowResult(token, layer, complete ? r : null, r, reached, complete);
    }
}
