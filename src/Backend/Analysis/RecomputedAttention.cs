using System.Runtime.InteropServices;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// One layer's recomputable state: queries (H, n, D) and keys (KV, n, D) as the scores used them, each query's
/// log-sum-exp (H, n), and the rule (scale, causal, window, soft-cap); for a causal model also the values (KV, n, D), so that a
/// later analysis sharing a prefix can start from this one (<see cref="PrefixReuse"/>). Owned tensors, contiguous
/// float32, never written after the forward.
/// </summary>
public sealed class LayerState(Tensor queries, Tensor keys, Tensor logSumExp, AttentionRule rule, Tensor? values = null,
    int? rows = null) : IDisposable
{
    /// <summary>(H, capacity, D): rows beyond <see cref="Rows"/> belong to later analyses of the chain (<see cref="KeptRows"/>).</summary>
    public Tensor Queries { get; } = queries;
    /// <summary>(KV, capacity, D)</summary>
    public Tensor Keys { get; } = keys;
    /// <summary>(H, capacity)</summary>
    public Tensor LogSumExp { get; } = logSumExp;
    public AttentionRule Rule { get; } = rule;
    /// <summary>(KV, capacity, D), or null</summary>
    public Tensor? Values { get; } = values;

    /// <summary>This analysis's rows (tokens) of each tensor.</summary>
    public int Rows { get; } = rows ?? (int)queries.shape[1];

    public long SizeInBytes =>
        (Queries.NumberOfElements + Keys.NumberOfElements + LogSumExp.NumberOfElements + (Values?.NumberOfElements ?? 0))
        / Queries.shape[1] * Rows * sizeof(float);

    public void Dispose()
    {
        Queries.Dispose();
        Keys.Dispose();
        LogSumExp.Dispose();
        Values?.Dispose();
    }
}

/// <summary>
/// Attention recomputed on demand from what the forward kept: p(i, j) = exp(score(q_i·k_j) − lse_i) where the rule lets
/// query i see key j, else 0 — the forward's own arithmetic (<see cref="BlockedAttention"/>), in float32. A few cells
/// (a hover row) are dot products here; a bigger tile is one matrix product on the model thread.
/// </summary>
public sealed class RecomputedAttention : IAttentionSource
{
    /// <summary>Tiles up to this many cells are computed with dot products on the calling thread.</summary>
    private const int SmallTile = 1 << 16;

    private readonly LayerState[] _layers;
    private readonly ModelThread? _modelThread;
    private readonly int _headDim, _repeats;

    public RecomputedAttention(LayerState[] layers, int heads, int tokens, PooledOverviews overviews, ModelThread? modelThread)
    {
        (_layers, Heads, Tokens, Overviews, _modelThread) = (layers, heads, tokens, overviews, modelThread);
        _headDim = (int)layers[0].Queries.shape[2];
        _repeats = heads / (int)layers[0].Keys.shape[0];
    }

    public int Layers => _layers.Length;
    public int Heads { get; }
    public int Tokens { get; }
    public bool IsStored => false;
    public PooledOverviews Overviews { get; }
    PooledOverviews? IAttentionSource.Overviews => Overviews;

    /// <summary>A causal analysis's metric checkpoints, so that a later one sharing a prefix resumes the sums.</summary>
    public MetricCheckpoints? Checkpoints { get; init; }

    /// <summary>The storage its state is a view of, shared with the analyses of its chain (<see cref="KeptRows"/>).</summary>
    public KeptRows? Rows { get; init; }

    /// <summary>True when a later analysis can start from this one's prefix: it kept values and checkpoints.</summary>
    public bool Resumable => Checkpoints is not null && _layers.All(l => l.Values is not null);

    public long SizeInBytes => _layers.Sum(l => l.SizeInBytes) + Overviews.SizeInBytes + (Checkpoints?.SizeInBytes ?? 0);

    /// <summary>Layer <paramref name="layer"/>'s kept state.</summary>
    public LayerState State(int layer) => _layers[layer];

    /// <summary>What the kept state of an analysis of this shape takes, without the overviews (values: causal models).</summary>
    public static long StateBytes(int layers, int heads, int kvHeads, int headDim, int tokens, bool keepsValues = false) =>
        (long)layers * tokens * ((long)(heads + (keepsValues ? 2 : 1) * kvHeads) * headDim + heads) * sizeof(float);

    public void Tile(int layer, int head, int rowStart, int rowEnd, int colStart, int colEnd, Span<float> destination)
    {
        var cells = (long)(rowEnd - rowStart) * (colEnd - colStart);
        if (cells <= SmallTile)
        {
            DotTile(layer, head, rowStart, rowEnd, colStart, colEnd, destination);
            return;
        }
        var result = _modelThread is null
            ? MatrixTile(layer, head, rowStart, rowEnd, colStart, colEnd)
            : _modelThread.Run(() => MatrixTile(layer, head, rowStart, rowEnd, colStart, colEnd));
        result.AsSpan().CopyTo(destination);
    }

    private void DotTile(int layer, int head, int rowStart, int rowEnd, int colStart, int colEnd, Span<float> destination)
    {
        var state = _layers[layer];
        var (n, d) = (Tokens, _headDim);
        // Spans over the tensors' own memory (CPU, contiguous; a head's rows start every capacity rows): no copy for a hover row.
        var capacity = (int)state.Queries.shape[1];
        var queries = MemoryMarshal.Cast<byte, float>(state.Queries.bytes).Slice(head * capacity * d, n * d);
        var keys = MemoryMarshal.Cast<byte, float>(state.Keys.bytes).Slice(head / _repeats * capacity * d, n * d);
        var lse = MemoryMarshal.Cast<byte, float>(state.LogSumExp.bytes).Slice(head * capacity, n);
        var rule = state.Rule;
        var width = colEnd - colStart;
        for (var i = rowStart; i < rowEnd; i++)
        {
            var row = destination.Slice((i - rowStart) * width, width);
            var q = queries.Slice(i * d, d);
            var (first, end) = (state.Rule.FirstKey(i), state.Rule.EndKey(i, n));
            for (var j = colStart; j < colEnd; j++)
                row[j - colStart] = j >= first && j < end
                    ? MathF.Exp(rule.Score(Dot(q, keys.Slice(j * d, d))) - lse[i])
                    : 0f;
        }
    }

    /// <summary>q·k summed in double: closer to the exact score than any float32 order, so within the forward's own rounding.</summary>
    private static float Dot(ReadOnlySpan<float> q, ReadOnlySpan<float> k)
    {
        double sum = 0;
        for (var t = 0; t < q.Length; t++) sum += (double)q[t] * k[t];
        return (float)sum;
    }

    private float[] MatrixTile(int layer, int head, int rowStart, int rowEnd, int colStart, int colEnd)
    {
        using var scope = NewDisposeScope();
        var state = _layers[layer];
        var q = state.Queries[head].narrow(0, rowStart, rowEnd - rowStart);            // (rows, D)
        var k = state.Keys[head / _repeats].narrow(0, colStart, colEnd - colStart);     // (cols, D)
        var scores = state.Rule.Scores(q.matmul(k.t()));                             // (rows, cols)
        var i = arange(rowStart, rowEnd, dtype: int64).unsqueeze(1);
        var j = arange(colStart, colEnd, dtype: int64).unsqueeze(0);
        var visible = state.Rule.Causal ? j <= i : ones(rowEnd - rowStart, colEnd - colStart, dtype: @bool);
        if (state.Rule.Window is { } window) visible = visible.logical_and(j > i - window);
        scores.masked_fill_(visible.logical_not(), float.NegativeInfinity);
        var lse = state.LogSumExp[head].narrow(0, rowStart, rowEnd - rowStart).unsqueeze(1);
        var p = scores.sub_(lse).exp_();
        return MemoryMarshal.Cast<byte, float>(p.contiguous().bytes).ToArray();
    }

    public void Dispose()
    {
        foreach (var l in _layers) l.Dispose();
        Overviews.Dispose();
        Rows?.Dispose();
    }
}
