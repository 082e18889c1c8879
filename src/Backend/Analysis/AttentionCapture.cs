using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Tokenization;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>Layer k of L done, for a client's progress display.</summary>
public readonly record struct AnalysisProgress(int LayersDone, int Layers);

/// <summary>
/// What a long analysis keeps from a blocked forward: each layer's recomputable state, every head's pooled overviews
/// and the head metrics' sums, all taken from the blocks as they go by (no block is held past its turn).
/// </summary>
public sealed class AttentionCapture(int layers, int heads, IReadOnlyList<Token> tokens, bool causal,
    IProgress<AnalysisProgress>? progress) : IAttentionObserver, IDisposable
{
    private readonly LayerState?[] _states = new LayerState?[layers];
    private readonly PooledOverviews _overviews = new(layers, heads, tokens.Count);
    private readonly HeadMetricSums _metrics = new(layers, heads, tokens, causal);
    private bool _built;
    private Tensor[]? _kept;   // queries, keys, log-sum-exp: (layers, …) each
    private readonly (long, long) _started = PhaseTimers.Start();

    /// <summary>One pass over the block's rows feeds both the overviews and the metrics; heads run in parallel.</summary>
    public unsafe void Block(int layer, int rowStart, int colStart, Tensor probabilities)
    {
        using var block = probabilities.contiguous();
        var (rows, cols) = ((int)block.shape[1], (int)block.shape[2]);
        var data = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(block.bytes));
        Parallel.For(0, heads, () => new double[HeadMetricSums.ScratchLength(cols)], (head, _, scratch) =>
        {
            var values = new ReadOnlySpan<float>((float*)data + (long)head * rows * cols, rows * cols);
            for (var r = 0; r < rows; r++)
            {
                var row = values.Slice(r * cols, cols);
                _overviews.AddRow(layer, head, rowStart + r, colStart, row);
                _metrics.AddRow(layer, head, rowStart + r, colStart, row, scratch);
            }
            return scratch;
        }, _ => { });
    }

    public void Layer(int layer, Tensor queries, Tensor keys, Tensor logSumExp, AttentionRule rule)
    {
        _states[layer]?.Dispose();
        // Every layer's state goes into one allocation per kind, made at the first layer: kept per layer, the long-lived
        // copies sat between the forward's temporaries in the heap, which then kept growing (measured at 8,192 tokens).
        _kept ??= [Whole(queries), Whole(keys), Whole(logSumExp)];
        _states[layer] = new LayerState(Keep(0, layer, queries), Keep(1, layer, keys), Keep(2, layer, logSumExp), rule);
        progress?.Report(new AnalysisProgress(layer + 1, layers));
    }

    /// <summary>(layers, …) of <paramref name="perLayer"/>'s shape, outside the forward's dispose scopes.</summary>
    private Tensor Whole(Tensor perLayer) => empty([layers, .. perLayer.shape], dtype: float32).DetachFromDisposeScope();

    /// <summary>A copy of one layer's tensor in its slot of the whole; the slot's view keeps the storage alive.</summary>
    private Tensor Keep(int kind, int layer, Tensor t) => _kept![kind][layer].copy_(t).DetachFromDisposeScope();

    private void ReleaseWholes()
    {
        foreach (var whole in _kept ?? []) whole.Dispose();
        _kept = null;
    }

    /// <summary>The attention source and the metrics; the capture hands its tensors over and owns nothing after.</summary>
    public (RecomputedAttention Attention, HeadMetric[] Metrics) Build(ModelThread? modelThread)
    {
        if (_states.Any(s => s is null)) throw new InvalidOperationException("the forward did not report every layer");
        _built = true;
        ReleaseWholes();
        PhaseTimers.Stop("forward.total", _started);
        PhaseTimers.Report($"{layers} layers, {tokens.Count} tokens");
        return (new RecomputedAttention(_states!, heads, tokens.Count, _overviews, modelThread), _metrics.Finish());
    }

    public void Dispose()
    {
        ReleaseWholes();
        if (_built) return;
        foreach (var s in _states) s?.Dispose();
        _overviews.Dispose();
    }
}
