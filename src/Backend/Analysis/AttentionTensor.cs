using System.Buffers;
using System.Runtime.InteropServices;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// Every layer's and head's attention of one analysis, in one contiguous buffer laid out [layer, head, query, key]
/// (row = query token, column = key token). Buffers come from a pool: first-touching fresh memory costs more here
/// than the forward pass that fills it.
/// </summary>
public sealed class AttentionTensor : IAttentionSource
{
    /// <summary>
    /// Arrays up to this many floats (128 MB: MiniLM's whole 512-token window rounds up to it) are pooled for the next
    /// analysis; bigger ones are the GC's once released, so that a 400 MB analysis does not stay resident after it
    /// (#13 point 16: RSS 252 MB before, 649 MB after its release while pooled, back to the reference without).
    /// </summary>
    internal const int PooledFloats = 1 << 25;

    private static readonly ArrayPool<float> Pool = ArrayPool<float>.Create(maxArrayLength: PooledFloats, maxArraysPerBucket: 4);
    private float[]? _buffer;

    public int Layers { get; }
    public int Heads { get; }
    public int Tokens { get; }
    public long Length => (long)Layers * Heads * Tokens * Tokens;
    public long SizeInBytes => Length * sizeof(float);

    /// <summary>Layers the forward already found finite as it wrote them (the attention kernel checks each row's sum),
    /// which the analysis's non-finite check need not read again: 75 MB at 512 tokens. Null: none.</summary>
    internal bool[]? CheckedFinite { get; set; }

    /// <summary>The most one analysis's probabilities may take (and the pool's largest array): 1 GB.</summary>
    public const long BudgetBytes = 1L << 30;

    public AttentionTensor(int layers, int heads, int tokens)
    {
        EnsureFits(layers, heads, tokens);
        (Layers, Heads, Tokens) = (layers, heads, tokens);
        _buffer = Length <= PooledFloats ? Pool.Rent((int)Length) : GC.AllocateUninitializedArray<float>((int)Length);
    }

    /// <summary>
    /// Refuses, before anything is allocated, an analysis whose L·H·n² float32 probabilities exceed
    /// <see cref="BudgetBytes"/>. Sizes are 64-bit: n² alone overflows an int from n = 46,341.
    /// </summary>
    public static void EnsureFits(int layers, int heads, int tokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        // At most (2^31)^2 · 4 for the token part and 2^62 for the rest: held in double to compare without overflow.
        var bytes = (double)layers * heads * tokens * tokens * sizeof(float);
        if (bytes <= BudgetBytes) return;
        var maxTokens = (long)Math.Floor(Math.Sqrt(BudgetBytes / ((double)layers * heads * sizeof(float))));
        var needed = bytes >= long.MaxValue ? long.MaxValue : (long)bytes;
        throw new MemoryBudgetException(needed, BudgetBytes,
            $"analyze at most {maxTokens} tokens with this model ({layers} layers × {heads} heads)");
    }

    /// <summary>The array of every layer's probabilities, layer after layer (the forward writes into it).</summary>
    internal float[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(AttentionTensor));

    /// <summary>Whether the array goes back to the pool when the analysis is released (the next analysis reuses it).</summary>
    internal bool IsPooled => _buffer is { } buffer && buffer.Length <= PooledFloats;

    /// <summary>The pooled array itself, so tests can see that a released analysis's memory is reused.</summary>
    internal object? PooledArray => _buffer;

    public Span<float> All => Buffer.AsSpan(0, (int)Length);

    /// <summary>All heads of one layer: [head, query, key].</summary>
    public Span<float> Layer(int layer) => Buffer.AsSpan(layer * Heads * Tokens * Tokens, Heads * Tokens * Tokens);

    /// <summary>One head's matrix: [query, key].</summary>
    public ReadOnlySpan<float> Head(int layer, int head) =>
        Buffer.AsSpan((layer * Heads + head) * Tokens * Tokens, Tokens * Tokens);

    public bool IsStored => true;

    public PooledOverviews? Overviews => null;

    public void Tile(int layer, int head, int rowStart, int rowEnd, int colStart, int colEnd, Span<float> destination)
    {
        var matrix = Head(layer, head);
        var width = colEnd - colStart;
        if (width == Tokens)
        {
            matrix.Slice(rowStart * Tokens, (rowEnd - rowStart) * Tokens).CopyTo(destination);
            return;
        }
        for (var row = rowStart; row < rowEnd; row++)
            matrix.Slice(row * Tokens + colStart, width).CopyTo(destination.Slice((row - rowStart) * width, width));
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null && buffer.Length <= PooledFloats) Pool.Return(buffer);
    }

    public static ReadOnlySpan<byte> AsBytes(ReadOnlySpan<float> values) => MemoryMarshal.AsBytes(values);
}
