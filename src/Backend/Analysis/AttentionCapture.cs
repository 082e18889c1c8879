using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using AttentionViz.Backend.Tokenization;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>Layer k of L done, for a client's progress display.</summary>
public readonly record struct AnalysisProgress(int LayersDone, int Layers);

/// <summary>
/// What a long analysis keeps from a blocked forward: each layer's recomputable state, every head's pooled overviews
/// and the head metrics' sums, all taken from the blocks as they go by (no block is held past its turn). A causal
/// analysis also keeps the values and the metrics' checkpoints; one that starts from an earlier analysis's prefix
/// (a <see cref="PrefixStart"/>) takes that prefix's rows from it and sees only the suffix's rows go by.
/// </summary>
public sealed class AttentionCapture : IAttentionObserver, IValueObserver, IDisposable
{
    private readonly int _layers, _heads;
    private readonly IProgress<AnalysisProgress>? _progress;
    private readonly PrefixStart? _start;
    private readonly LayerState?[] _states;
    private readonly PooledOverviews _overviews;
    private readonly HeadMetricSums _metrics;
    private bool _built;
    private readonly Tensor?[] _kept = new Tensor?[4];   // queries, keys, log-sum-exp, values: (layers, …) each
    private readonly Tensor?[] _values;                    // each layer's slot of the values, until its Layer call
    private readonly (long, long) _started = PhaseTimers.Start();

    public AttentionCapture(int layers, int heads, IReadOnlyList<Token> tokens, bool causal, IProgress<AnalysisProgress>? progress,
        PrefixStart? start = null)
    {
        (_layers, _heads, _progress, _start) = (layers, heads, progress, start);
        _states = new LayerState?[layers];
        _values = new Tensor?[layers];
        _overviews = new PooledOverviews(layers, heads, tokens.Count);
        _metrics = new HeadMetricSums(layers, heads, tokens, causal, checkpoints: causal);
        if (start is null) return;
        try
        {
            _overviews.ResumeFrom(start.Earlier.Overviews, start.Length);
            _metrics.ResumeFrom(start.Earlier.Checkpoints!, start.Length);
        }
        catch
        {
            _overviews.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs of rows of every head in parallel; each run's rows feed the overviews and the metrics while they are in
    /// cache. Runs are as long as a pooled bin (at least <see cref="RowRuns.DefaultRows"/>), so none shares a bin.
    /// </summary>
    public unsafe void Block(int layer, int rowStart, int colStart, Tensor probabilities)
    {
        using var block = probabilities.contiguous();
        var (rows, cols) = ((int)block.shape[1], (int)block.shape[2]);
        var data = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(block.bytes));
        var runs = new RowRuns(_heads, rowStart, rows, Math.Max(RowRuns.DefaultRows, _overviews.Factor));
        var sums = new RunSums(runs);
        Parallel.For(0, runs.All.Length, () => new float[2 * cols], (i, _, scratch) =>
        {
            var run = runs.All[i];
            var values = new ReadOnlySpan<float>((float*)data + ((long)run.Head * rows + run.Start - rowStart) * cols, run.Rows * cols);
            _overviews.AddRows(layer, run.Head, run.Start, run.Rows, colStart, cols, values, scratch.AsSpan(0, cols), scratch.AsSpan(cols));
            _metrics.SumRun(layer, run, colStart, cols, values, sums);
            return scratch;
        }, _ => { });
        _metrics.Merge(layer, sums);
    }

    public void Values(int layer, Tensor values)
    {
        _values[layer]?.Dispose();
        _values[layer] = Keep(3, layer, values, null);
    }

    public void Layer(int layer, Tensor queries, Tensor keys, Tensor logSumExp, AttentionRule rule)
    {
        _states[layer]?.Dispose();
        var earlier = _start is { } start ? start.Earlier.State(layer) : null;
        // The prefix's queries and normalisers come from the earlier analysis, copied (it may still be read).
        _states[layer] = new LayerState(Keep(0, layer, queries, earlier?.Queries), Keep(1, layer, keys, null),
            Keep(2, layer, logSumExp, earlier?.LogSumExp), rule, _values[layer]);
        _values[layer] = null;
        _progress?.Report(new AnalysisProgress(layer + 1, _layers));
    }

    /// <summary>(layers, …) of <paramref name="perLayer"/>'s shape, outside the forward's dispose scopes.</summary>
    private Tensor Whole(Tensor perLayer)
    {
        long[] shape = [_layers, .. perLayer.shape];
        shape[2] = _overviews.Tokens;                                          // a suffix's rows are the tail of n
        return empty(shape, dtype: float32).DetachFromDisposeScope();
    }

    /// <summary>
    /// A copy of one layer's tensor in its slot of the whole, after the earlier analysis's prefix rows when there are
    /// fewer rows than tokens; the slot's view keeps the storage alive. Every layer's state of a kind goes into one
    /// allocation, made at the first layer: kept per layer, the long-lived copies sat between the forward's temporaries
    /// in the heap, which then kept growing (measured at 8,192 tokens).
    /// </summary>
    private Tensor Keep(int kind, int layer, Tensor t, Tensor? earlier)
    {
        _kept[kind] ??= Whole(t);
        var slot = _kept[kind]![layer];
        var prefix = slot.shape[1] - t.shape[1];
        if (prefix > 0) slot.narrow(1, 0, prefix).copy_(earlier!.narrow(1, 0, prefix));
        slot.narrow(1, prefix, t.shape[1]).copy_(t);
        return slot.DetachFromDisposeScope();
    }

    private void ReleaseWholes()
    {
        for (var kind = 0; kind < _kept.Length; kind++)
        {
            _kept[kind]?.Dispose();
            _kept[kind] = null;
        }
    }

    /// <summary>The attention source and the metrics; the capture hands its tensors over and owns nothing after.</summary>
    public (RecomputedAttention Attention, HeadMetric[] Metrics) Build(ModelThread? modelThread)
    {
        if (_states.Any(s => s is null)) throw new InvalidOperationException("the forward did not report every layer");
        _built = true;
        ReleaseWholes();
        PhaseTimers.Stop("forward.total", _started);
        PhaseTimers.Report($"{_layers} layers, {_overviews.Tokens} tokens");
        return (new RecomputedAttention(_states!, _heads, _overviews.Tokens, _overviews, modelThread) { Checkpoints = _metrics.Checkpoints },
            _metrics.Finish());
    }

    public void Dispose()
    {
        ReleaseWholes();
        if (_built) return;
        foreach (var s in _states) s?.Dispose();
        foreach (var v in _values) v?.Dispose();
        _overviews.Dispose();
    }
}
