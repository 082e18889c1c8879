namespace AttentionViz.Backend.Analysis;

/// <summary>
/// Where every consumer reads an analysis's attention from, a tile at a time: stored probabilities
/// (<see cref="AttentionTensor"/>) or probabilities recomputed from the queries and keys the forward kept
/// (<see cref="RecomputedAttention"/>). Row = query token, column = key token; masked entries are exactly 0.
/// </summary>
public interface IAttentionSource : IDisposable
{
    int Layers { get; }
    int Heads { get; }
    int Tokens { get; }

    /// <summary>What the source holds in memory.</summary>
    long SizeInBytes { get; }

    /// <summary>True when reading a tile costs a copy; false when it costs a recomputation (prefer the overviews).</summary>
    bool IsStored { get; }

    /// <summary>Pooled overviews kept during the forward, or null (a stored source pools its own matrices).</summary>
    PooledOverviews? Overviews { get; }

    /// <summary>
    /// Head <paramref name="head"/> of layer <paramref name="layer"/> (both ≥ 0), rows [rowStart, rowEnd) × columns
    /// [colStart, colEnd), into <paramref name="destination"/> row-major.
    /// </summary>
    void Tile(int layer, int head, int rowStart, int rowEnd, int colStart, int colEnd, Span<float> destination);
}

/// <summary>Reads built on <see cref="IAttentionSource.Tile"/> that several consumers share.</summary>
public static class AttentionSources
{
    /// <summary>Head (layer, head)'s whole n×n matrix.</summary>
    public static void Head(this IAttentionSource source, int layer, int head, Span<float> destination) =>
        source.Tile(layer, head, 0, source.Tokens, 0, source.Tokens, destination);

    /// <summary>Head (layer, head)'s whole n×n matrix, as a new array.</summary>
    public static float[] Head(this IAttentionSource source, int layer, int head)
    {
        var matrix = new float[source.Tokens * source.Tokens];
        source.Head(layer, head, matrix);
        return matrix;
    }

    /// <summary>All heads of one layer, [head, query, key] (H·n·n floats).</summary>
    public static void Layer(this IAttentionSource source, int layer, Span<float> destination)
    {
        var n2 = source.Tokens * source.Tokens;
        for (var h = 0; h < source.Heads; h++) source.Head(layer, h, destination.Slice(h * n2, n2));
    }

    /// <summary>
    /// The rows [rowStart, rowEnd) × columns [colStart, colEnd) of layer/head, where −1 combines heads or layers by
    /// their mean (<paramref name="max"/> false) or element-wise maximum.
    /// </summary>
    public static void Combined(this IAttentionSource source, int layer, int head, bool max,
        int rowStart, int rowEnd, int colStart, int colEnd, Span<float> destination)
    {
        var size = (rowEnd - rowStart) * (colEnd - colStart);
        destination = destination[..size];
        if (layer >= 0 && head >= 0)
        {
            source.Tile(layer, head, rowStart, rowEnd, colStart, colEnd, destination);
            return;
        }
        // A stored analysis's rows are read in place; another source's go through a pooled scratch tile.
        var stored = source as AttentionTensor;
        var scratch = stored is not null && colEnd - colStart == source.Tokens ? null
            : size <= AttentionViews.PooledTileCells ? System.Buffers.ArrayPool<float>.Shared.Rent(size) : new float[size];
        var count = 0;
        if (max) destination.Fill(float.NegativeInfinity);
        else destination.Clear();
        for (var l = 0; l < source.Layers; l++)
        {
            if (layer >= 0 && l != layer) continue;
            for (var h = 0; h < source.Heads; h++)
            {
                if (head >= 0 && h != head) continue;
                ReadOnlySpan<float> values;
                if (scratch is null) values = stored!.Head(l, h).Slice(rowStart * source.Tokens, size);
                else
                {
                    source.Tile(l, h, rowStart, rowEnd, colStart, colEnd, scratch);
                    values = scratch.AsSpan(0, size);
                }
                if (max) System.Numerics.Tensors.TensorPrimitives.Max(destination, values, destination);
                else System.Numerics.Tensors.TensorPrimitives.Add(destination, values, destination);
                count++;
            }
        }
        if (scratch is not null && size <= AttentionViews.PooledTileCells) System.Buffers.ArrayPool<float>.Shared.Return(scratch);
        if (!max) System.Numerics.Tensors.TensorPrimitives.Multiply(destination, 1f / count, destination);
    }

    /// <summary>The whole matrix of layer/head (−1: the mean over heads or layers), n×n.</summary>
    public static void Matrix(this IAttentionSource source, int layer, int head, Span<float> destination) =>
        source.Combined(layer, head, max: false, 0, source.Tokens, 0, source.Tokens, destination);
}
