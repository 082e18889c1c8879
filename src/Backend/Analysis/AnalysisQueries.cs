using System.Diagnostics;
using System.Runtime.CompilerServices;
using AttentionViz.Backend.Models;

namespace AttentionViz.Backend.Analysis;

public sealed record MetricsResult(int Layers, int Heads, bool Causal, double SinkThreshold, HeadMetric[] Metrics, double ElapsedMs);

public sealed record HeadModularity(int Layer, int Head, double Q, int CommunityCount);

/// <summary>
/// The analysis area (head metrics, modularity, rollout, flow, views, histograms) over stored analyses. TorchSharp work
/// runs on the model thread (one OpenMP team); the graph algorithms run on the thread pool.
/// </summary>
public sealed class AnalysisQueries(AttentionService service, ModelThread? modelThread = null)
{
    private readonly ConditionalWeakTable<StoredAnalysis, HeadMetric[]> _metrics = new();

    private Task<T> OnModelThread<T>(Func<CancellationToken, T> work, CancellationToken cancellationToken) =>
        modelThread is null ? Task.Run(() => work(cancellationToken), cancellationToken) : modelThread.RunAsync(work, cancellationToken);

    public async Task<MetricsResult> MetricsAsync(string analysisId, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var metrics = await MetricsOf(analysis, cancellationToken);
        return new MetricsResult(analysis.Model.Layers, analysis.Model.Heads, analysis.Model.Causal, HeadMetrics.SinkThreshold, metrics,
            clock.Elapsed.TotalMilliseconds);
    }

    private async Task<HeadMetric[]> MetricsOf(StoredAnalysis analysis, CancellationToken cancellationToken)
    {
        if (analysis.Metrics is { } summed) return summed;
        if (_metrics.TryGetValue(analysis, out var cached)) return cached;
        var metrics = await OnModelThread(ct => HeadMetrics.Compute(analysis.Attention, analysis.Tokens, analysis.Model.Causal, ct),
            cancellationToken);
        _metrics.AddOrUpdate(analysis, metrics);
        return metrics;
    }

    public async Task<ModularityResult> ModularityAsync(string analysisId, int layer, int head, bool includeSelfLoops,
        CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        RequestChecks.LayerHead(analysis.Model.Layers, analysis.Model.Heads, layer, head, RequestChecks.MinusOneIsMean);
        var n = analysis.Tokens.Count;
        Modularity.EnsureFits(n);
        var matrix = new float[checked(n * n)];
        analysis.Attention.Matrix(layer, head, matrix);
        return await Task.Run(() => Modularity.Compute(matrix, n, includeSelfLoops, cancellationToken), cancellationToken);
    }

    /// <summary>Q and the community count of every layer × head (ordered by layer, then head), the heads spread over the cores.</summary>
    public async Task<HeadModularity[]> ModularityAllAsync(string analysisId, bool includeSelfLoops, CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var attention = lease.Analysis.Attention;
        var (layers, heads, n) = (attention.Layers, attention.Heads, attention.Tokens);
        Modularity.EnsureFits(n);
        var result = new HeadModularity[layers * heads];
        var options = new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) };
        await Task.Run(() => Parallel.For(0, result.Length, options, k =>
        {
            var matrix = new float[checked(n * n)];
            attention.Head(k / heads, k % heads, matrix);
            var m = Modularity.Compute(matrix, n, includeSelfLoops, cancellationToken);
            result[k] = new HeadModularity(k / heads, k % heads, m.Q, m.CommunityCount);
        }), cancellationToken);
        return result;
    }

    public ViewResult View(string analysisId, ViewRequest request)
    {
        using var lease = service.Acquire(analysisId);
        return AttentionViews.View(lease.Analysis, request);
    }

    /// <summary>Rollout up to <paramref name="layer"/> (−1 or null: the last layer), with the view options.</summary>
    public async Task<ViewResult> RolloutAsync(string analysisId, int? layer, ViewOptions options, int? maxSize,
        CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var upTo = ResolveLayer(analysis, layer);
        RequestChecks.MaxSize(maxSize);
        Rollout.EnsureMatrixFits(analysis.Tokens.Count);
        var matrix = await OnModelThread(ct => Rollout.Compute(analysis.Attention, upTo, analysis.Model.Causal, ct), cancellationToken);
        return AttentionViews.Shape(matrix, analysis, upTo, -1, options, maxSize);
    }

    /// <summary>One token's rollout row's default time budget: 8,000 tokens of a 30-layer model on a loaded 2-core machine.</summary>
    public const int DefaultRolloutRowBudgetMs = 60_000;

    /// <summary>
    /// Row <paramref name="token"/> of the rollout up to <paramref name="layer"/>, a block of rows at a time on the thread
    /// pool (a recomputed tile takes its turn on the model thread, so other requests interleave).
    /// </summary>
    public async Task<RolloutRowResult> RolloutRowAsync(string analysisId, int token, int? layer, int? timeBudgetMs = null,
        IProgress<AnalysisProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var budget = timeBudgetMs ?? DefaultRolloutRowBudgetMs;
        RequestChecks.Between("timeBudgetMs", budget, 1, MaxFlowBudgetMs);
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var upTo = ResolveLayer(analysis, layer);
        RequestChecks.Token(analysis.Tokens.Count, token);
        return await Task.Run(() => Rollout.Row(analysis.Attention, token, upTo, analysis.Model.Causal, TimeSpan.FromMilliseconds(budget),
            progress, cancellationToken), cancellationToken);
    }

    /// <summary>Flow's default time budget: keeps the panel responsive at 512 tokens on a loaded 2-core machine.</summary>
    public const int DefaultFlowBudgetMs = 3000;
    public const int MaxFlowBudgetMs = 600_000;

    /// <summary>Attention flow for one token within <paramref name="timeBudgetMs"/> (null: the default).</summary>
    public async Task<FlowResult> FlowAsync(string analysisId, int token, int? layer, int? timeBudgetMs = null,
        CancellationToken cancellationToken = default)
    {
        var budget = timeBudgetMs ?? DefaultFlowBudgetMs;
        RequestChecks.Between("timeBudgetMs", budget, 1, MaxFlowBudgetMs);
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var upTo = ResolveLayer(analysis, layer);
        var n = analysis.Tokens.Count;
        RequestChecks.Token(n, token);
        AttentionFlow.EnsureFits(n, upTo + 1, analysis.Model.Causal, AnalysisMemory.BudgetFromEnvironment());
        return await Task.Run(() => AttentionFlow.Compute(analysis.Attention, token, upTo, TimeSpan.FromMilliseconds(budget), cancellationToken,
            analysis.Model.Causal), cancellationToken);
    }

    /// <summary>Histogram of attention weights, or of one metric across all heads when <paramref name="metric"/> is given.</summary>
    public async Task<Histogram> HistogramAsync(string analysisId, int? layer, int? head, int? bins, bool excludeSpecial, string? metric,
        CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var binCount = bins ?? Histograms.DefaultBins;
        RequestChecks.Between("bins", binCount, 1, Histograms.MaxBins);
        if (layer is { } l) RequestChecks.Layer(analysis.Model.Layers, l);
        if (head is { } h) RequestChecks.Head(analysis.Model.Heads, h);
        if (metric is not null)
        {
            RequestChecks.OneOf("metric", metric, HeadMetrics.Names);
            var metrics = await MetricsOf(analysis, cancellationToken);
            var values = metrics
                .Where(m => (layer is null || m.Layer == layer) && (head is null || m.Head == head))
                .Select(m => HeadMetrics.Value(m, metric)).OfType<double>().ToList();
            return Histograms.Values(values, binCount);
        }
        return await OnModelThread(ct => Histograms.Weights(analysis.Attention, analysis.Tokens, analysis.Model.Causal, layer, head, binCount,
            excludeSpecial, ct), cancellationToken);
    }

    /// <summary>Attention summed by section (<see cref="SectionAttention"/>); layer/head −1 (the default) is the mean.</summary>
    public async Task<SectionAttentionResult> SectionsAsync(string analysisId, IReadOnlyList<TextSection> sections, (int Start, int End)? query,
        int layer, int head, bool excludeSpecial, CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        RequestChecks.LayerHead(analysis.Model.Layers, analysis.Model.Heads, layer, head, RequestChecks.MinusOneIsMean);
        return await OnModelThread(
            ct => SectionAttention.Compute(analysis.Attention, analysis.Tokens, sections, query, layer, head, excludeSpecial, ct), cancellationToken);
    }

    /// <summary>The attention diff of two analyses (<see cref="AttentionDiff"/>).</summary>
    public async Task<AttentionDiffResult> DiffAsync(string analysisIdA, string analysisIdB, CancellationToken cancellationToken = default)
    {
        using var leaseA = service.Acquire(analysisIdA);
        using var leaseB = service.Acquire(analysisIdB);
        var (a, b) = (leaseA.Analysis, leaseB.Analysis);
        return await OnModelThread(ct => AttentionDiff.Compute(a.Attention, a.Tokens, b.Attention, b.Tokens, ct), cancellationToken);
    }

    private static int ResolveLayer(StoredAnalysis analysis, int? layer)
    {
        var layers = analysis.Model.Layers;
        if (layer is null or -1) return layers - 1;
        RequestChecks.Layer(layers, layer.Value, RequestChecks.MinusOneIsLast);
        return layer.Value;
    }
}
