using System.Diagnostics;
using System.Runtime.CompilerServices;
using AttentionViz.Backend.Models;

namespace AttentionViz.Backend.Analysis;

public sealed record MetricsResult(int Layers, int Heads, bool Causal, double SinkThreshold, HeadMetric[] Metrics, double ElapsedMs);

/// <summary>A viewed matrix, possibly max-pooled for display (see attention/matrix): Units label the rows and columns before pooling.</summary>
public sealed record ViewResult(int Rows, int Cols, int Layer, int Head, bool Pooled, int PoolFactor, float[] Data, ViewUnit[] Units);

public sealed record HeadModularity(int Layer, int Head, double Q, int CommunityCount);

public sealed record ViewRequest(int Layer, int Head, ViewOptions Options, int? MaxSize = null, string? HeadReduce = null);

/// <summary>
/// The analysis area (head metrics, modularity, rollout, flow, views, histograms) over stored analyses. TorchSharp work
/// runs on the model thread (one OpenMP team); the graph algorithms run on the thread pool.
/// </summary>
public sealed class AttentionAnalytics(AttentionService service, ModelThread? modelThread = null)
{
    private readonly ConditionalWeakTable<AttentionAnalysis, HeadMetric[]> _metrics = new();

    private Task<T> OnModelThread<T>(Func<CancellationToken, T> work, CancellationToken cancellationToken) =>
        modelThread is null ? Task.Run(() => work(cancellationToken), cancellationToken) : modelThread.RunAsync(work, cancellationToken);

    public async Task<MetricsResult> MetricsAsync(string analysisId, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var metrics = await MetricsOf(analysis, cancellationToken);
        return new MetricsResult(analysis.Model.Layers, analysis.Model.Heads, analysis.Model.Causal, HeadMetrics.SinkThreshold, metrics, clock.Elapsed.TotalMilliseconds);
    }

    private async Task<HeadMetric[]> MetricsOf(AttentionAnalysis analysis, CancellationToken cancellationToken)
    {
        if (_metrics.TryGetValue(analysis, out var cached)) return cached;
        var metrics = await OnModelThread(ct => HeadMetrics.Compute(analysis.Attention, analysis.Tokens, analysis.Model.Causal, ct), cancellationToken);
        _metrics.AddOrUpdate(analysis, metrics);
        return metrics;
    }

    public async Task<ModularityResult> ModularityAsync(string analysisId, int layer, int head, bool includeSelfLoops, CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        CheckLayerHead(analysis, layer, head, allowMean: true);
        var n = analysis.Tokens.Count;
        var matrix = new float[n * n];
        analysis.Attention.Matrix(layer, head, matrix);
        return await Task.Run(() => Modularity.Compute(matrix, n, includeSelfLoops, cancellationToken), cancellationToken);
    }

    /// <summary>Q and the community count of every layer × head (ordered by layer, then head), the heads spread over the cores.</summary>
    public async Task<HeadModularity[]> ModularityAllAsync(string analysisId, bool includeSelfLoops, CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var attention = lease.Analysis.Attention;
        var (layers, heads, n) = (attention.Layers, attention.Heads, attention.Tokens);
        var result = new HeadModularity[layers * heads];
        var options = new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) };
        await Task.Run(() => Parallel.For(0, result.Length, options, k =>
        {
            var m = Modularity.Compute(attention.Head(k / heads, k % heads), n, includeSelfLoops, cancellationToken);
            result[k] = new HeadModularity(k / heads, k % heads, m.Q, m.CommunityCount);
        }), cancellationToken);
        return result;
    }

    public ViewResult View(string analysisId, ViewRequest request)
    {
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        CheckLayerHead(analysis, request.Layer, request.Head, allowMean: true);
        CheckMaxSize(request.MaxSize);
        var n = analysis.Tokens.Count;
        var matrix = new float[n * n];
        switch (request.HeadReduce ?? "mean")
        {
            case "mean":
                analysis.Attention.Matrix(request.Layer, request.Head, matrix);
                break;
            case "max":
                MaxOver(analysis.Attention, request.Layer, request.Head, matrix);
                break;
            default:
                throw new InvalidRequestException($"headReduce must be \"mean\" or \"max\"; got \"{request.HeadReduce}\".");
        }
        return Finish(matrix, analysis, request.Layer, request.Head, request.Options, request.MaxSize);
    }

    /// <summary>Rollout up to <paramref name="layer"/> (−1 or null: the last layer), with the view options.</summary>
    public async Task<ViewResult> RolloutAsync(string analysisId, int? layer, ViewOptions options, int? maxSize, CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var upTo = ResolveLayer(analysis, layer);
        CheckMaxSize(maxSize);
        var matrix = await OnModelThread(_ => Rollout.Compute(analysis.Attention, upTo), cancellationToken);
        return Finish(matrix, analysis, upTo, -1, options, maxSize);
    }

    /// <summary>Flow's default time budget: keeps the panel responsive at 512 tokens on a loaded 2-core machine.</summary>
    public const int DefaultFlowBudgetMs = 3000;
    public const int MaxFlowBudgetMs = 600_000;

    /// <summary>Attention flow for one token within <paramref name="timeBudgetMs"/> (null: the default).</summary>
    public async Task<FlowResult> FlowAsync(string analysisId, int token, int? layer, int? timeBudgetMs = null, CancellationToken cancellationToken = default)
    {
        var budget = timeBudgetMs ?? DefaultFlowBudgetMs;
        if (budget is < 1 or > MaxFlowBudgetMs)
            throw new InvalidRequestException($"timeBudgetMs must be between 1 and {MaxFlowBudgetMs}, got {budget}.");
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var upTo = ResolveLayer(analysis, layer);
        var n = analysis.Tokens.Count;
        if (token < 0 || token >= n) throw new InvalidRequestException($"token {token} is out of range: the analysis has {n} tokens (0..{n - 1}).");
        return await Task.Run(() => AttentionFlow.Compute(analysis.Attention, token, upTo, TimeSpan.FromMilliseconds(budget), cancellationToken), cancellationToken);
    }

    /// <summary>Histogram of attention weights, or of one metric across all heads when <paramref name="metric"/> is given.</summary>
    public async Task<Histogram> HistogramAsync(string analysisId, int? layer, int? head, int? bins, bool excludeSpecial, string? metric, CancellationToken cancellationToken = default)
    {
        using var lease = service.Acquire(analysisId);
        var analysis = lease.Analysis;
        var binCount = bins ?? Histograms.DefaultBins;
        if (binCount < 1 || binCount > Histograms.MaxBins)
            throw new InvalidRequestException($"bins must be between 1 and {Histograms.MaxBins}; got {binCount}.");
        if (layer is { } l) CheckLayerHead(analysis, l, 0, allowMean: false);
        if (head is { } h) CheckLayerHead(analysis, 0, h, allowMean: false);
        if (metric is not null)
        {
            if (!HeadMetrics.Names.Contains(metric))
                throw new InvalidRequestException($"Unknown metric '{metric}'; known: {string.Join(", ", HeadMetrics.Names)}.");
            var metrics = await MetricsOf(analysis, cancellationToken);
            var values = metrics
                .Where(m => (layer is null || m.Layer == layer) && (head is null || m.Head == head))
                .Select(m => HeadMetrics.Value(m, metric)).OfType<double>().ToList();
            return Histograms.Values(values, binCount);
        }
        return await OnModelThread(_ => Histograms.Weights(analysis.Attention, analysis.Tokens, analysis.Model.Causal, layer, head, binCount, excludeSpecial), cancellationToken);
    }

    private static ViewResult Finish(float[] matrix, AttentionAnalysis analysis, int layer, int head, ViewOptions options, int? maxSize)
    {
        var viewed = AttentionViews.Apply(matrix, analysis.Tokens, options);
        var size = viewed.Size;
        var factor = MatrixOps.PoolFactor(size, maxSize ?? size);
        if (factor == 1) return new ViewResult(size, size, layer, head, false, 1, viewed.Data, viewed.Units);
        var pooled = MatrixOps.MaxPool(viewed.Data, size, factor);
        var m = (size + factor - 1) / factor;
        return new ViewResult(m, m, layer, head, true, factor, pooled, viewed.Units);
    }

    /// <summary>Element-wise max over heads (head −1) and/or layers (layer −1).</summary>
    internal static void MaxOver(AttentionTensor attention, int layer, int head, Span<float> destination)
    {
        var n2 = attention.Tokens * attention.Tokens;
        destination = destination[..n2];
        destination.Fill(float.NegativeInfinity);
        for (var l = 0; l < attention.Layers; l++)
        {
            if (layer >= 0 && l != layer) continue;
            for (var h = 0; h < attention.Heads; h++)
                if (head < 0 || h == head) System.Numerics.Tensors.TensorPrimitives.Max(destination, attention.Head(l, h), destination);
        }
    }

    private static int ResolveLayer(AttentionAnalysis analysis, int? layer)
    {
        var layers = analysis.Model.Layers;
        if (layer is null or -1) return layers - 1;
        if (layer < 0 || layer >= layers)
            throw new InvalidRequestException($"layer {layer} is out of range: the model has {layers} layers (0..{layers - 1}, or -1 for the last).");
        return layer.Value;
    }

    private static void CheckMaxSize(int? maxSize)
    {
        if (maxSize is < 1) throw new InvalidRequestException($"maxSize must be at least 1; got {maxSize}.");
    }

    private static void CheckLayerHead(AttentionAnalysis analysis, int layer, int head, bool allowMean)
    {
        var (layers, heads) = (analysis.Model.Layers, analysis.Model.Heads);
        var low = allowMean ? -1 : 0;
        var mean = allowMean ? ", or -1 for all" : "";
        if (layer < low || layer >= layers)
            throw new InvalidRequestException($"layer {layer} is out of range: the model has {layers} layers (0..{layers - 1}{mean}).");
        if (head < low || head >= heads)
            throw new InvalidRequestException($"head {head} is out of range: the model has {heads} heads (0..{heads - 1}{mean}).");
    }
}
