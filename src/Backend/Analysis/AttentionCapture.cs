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
    private readonly KeptRows _rows;
    private readonly int _sharedRows;                      // rows of _rows that are the earlier analysis's, when extending it
    private readonly Tensor?[] _values;                    // each layer's view of the values, until its Layer call
    private readonly (long, long) _started = PhaseTimers.Start();

    public AttentionCapture(int layers, int heads, IReadOnlyList<Token> tokens, bool causal, IProgress<AnalysisProgress>? progress,
        PrefixStart? start = null)
    {
        (_layers, _heads, _progress, _start) = (layers, heads, progress, start);
        _states = new LayerState?[layers];
        _values = new Tensor?[layers];
        _overviews = new PooledOverviews(layers, heads, tokens.Count);
        _metrics = new HeadMetricSums(layers, heads, tokens, causal, checkpoints: causal);
        var n = tokens.Count;
        if (start is { Extends: true, Earlier.Rows: { } rows } && rows.TryExtend(start.Earlier.Tokens, n))
            (_rows, _sharedRows) = (rows.Acquire(), start.Earlier.Tokens);
        else
            _rows = KeptRows.For(n);
        if (start is null) return;
        try
        {
            _overviews.ResumeFrom(start.Earlier.Overviews, start.Length);
            _metrics.ResumeFrom(start.Earlier.Checkpoints!, start.Length);
        }
        catch
        {
            Dispose();
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
        // On the kernels' team, as the attention that made the block: the .NET pool's threads would spin beside it.
        KernelTeam.For(runs.All.Length, i =>
        {
            var run = runs.All[i];
            var values = new ReadOnlySpan<float>((float*)data + ((long)run.Head * rows + run.Start - rowStart) * cols, run.Rows * cols);
            var scratch = Scratch(2 * cols);
            _overviews.AddRows(layer, run.Head, run.Start, run.Rows, colStart, cols, values, scratch.AsSpan(0, cols), scratch.AsSpan(cols, cols));
            _metrics.SumRun(layer, run, colStart, cols, values, sums);
        });
        _metrics.Merge(layer, sums);
    }

    [ThreadStatic] private static float[]? _scratch;

    /// <summary>This thread's scratch of at least <paramref name="length"/> floats (a block's row, twice).</summary>
    private static float[] Scratch(int length) => _scratch is { } s && s.Length >= length ? s : _scratch = new float[length];

    public void Values(int layer, Tensor values)
    {
        _values[layer]?.Dispose();
        _values[layer] = Keep(KeptRows.Values, layer, values, null);
    }

    public void Layer(int layer, Tensor queries, Tensor keys, Tensor logSumExp, AttentionRule rule)
    {
        _states[layer]?.Dispose();
        var earlier = _start is { } start ? start.Earlier.State(layer) : null;
        // The prefix's queries and normalisers are the earlier analysis's: shared when extending it, else copied.
        _states[layer] = new LayerState(Keep(KeptRows.Queries, layer, queries, earlier?.Queries), Keep(KeptRows.Keys, layer, keys, null),
            Keep(KeptRows.LogSumExp, layer, logSumExp, earlier?.LogSumExp), rule, _values[layer], _overviews.Tokens);
        _values[layer] = null;
        _progress?.Report(new AnalysisProgress(layer + 1, _layers));
    }

    /// <summary>
    /// One layer's tensor (rows from n − its rows: a suffix's queries are the tail of n) in its layer's slot of the
    /// kept rows, and the slot (all its capacity: contiguous; the analysis reads its first n rows), which keeps the
    /// storage alive. Rows before the suffix are the
    /// earlier analysis's: already there when extending it, else copied from it. One allocation per kind for every
    /// layer: kept per layer, the long-lived copies sat between the forward's temporaries in the heap, which then kept
    /// growing (measured at 8,192 tokens).
    /// </summary>
    private Tensor Keep(int kind, int layer, Tensor t, Tensor? earlier)
    {
        var n = _overviews.Tokens;
        var slot = _rows.Whole(kind, _layers, t)[layer];                       // (first, capacity, …)
        var first = n - (int)t.shape[1];
        var from = Math.Max(first, _sharedRows);
        if (_sharedRows == 0 && first > 0) slot.narrow(1, 0, first).copy_(earlier!.narrow(1, 0, first));
        slot.narrow(1, from, n - from).copy_(t.narrow(1, from - first, n - from));
        return slot.DetachFromDisposeScope();
    }

    /// <summary>The attention source and the metrics; the capture hands its tensors over and owns nothing after.</summary>
    public (RecomputedAttention Attention, HeadMetric[] Metrics) Build(ModelThread? modelThread)
    {
        if (_states.Any(s => s is null)) throw new InvalidOperationException("the forward did not report every layer");
        _built = true;
        if (_sharedRows == 0) _rows.Fill(_overviews.Tokens);
        PhaseTimers.Stop("forward.total", _started);
        PhaseTimers.Report($"{_layers} layers, {_overviews.Tokens} tokens");
        var attention = new RecomputedAttention(_states!, _heads, _overviews.Tokens, _overviews, modelThread)
        {
            Checkpoints = _metrics.Checkpoints, Rows = _rows,
        };
        return (attention, _metrics.Finish());
    }

    public void Dispose()
    {
        if (_built) return;
        if (_sharedRows > 0) _rows.GiveBack(_sharedRows, _overviews.Tokens);
        _rows.Dispose();
        foreach (var s in _states) s?.Dispose();
        foreach (var v in _values) v?.Dispose();
        _overviews.Dispose();
    }
}
