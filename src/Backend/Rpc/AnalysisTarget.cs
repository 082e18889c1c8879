using AttentionViz.Backend.Analysis;
using StreamJsonRpc;

namespace AttentionViz.Backend.Rpc;

// The analysis area of the protocol (docs/protocol.md, "Analysis"): head metrics, modularity, rollout, flow, views,
// histograms. Names are camelCase on the wire.

public sealed record MetricsParams(string? AnalysisId);
public sealed record MetricsDto(int Layers, int Heads, bool Causal, double SinkThreshold, HeadMetric[] Metrics, double ElapsedMs);

public sealed record ModularityParams(string? AnalysisId, int Layer, int Head, bool IncludeSelfLoops = false);
public sealed record ModularityDto(int Layer, int Head, double Q, int[] Communities, int CommunityCount, bool IncludeSelfLoops);

public sealed record ModularityAllParams(string? AnalysisId, bool IncludeSelfLoops = false);
public sealed record ModularityAllDto(bool IncludeSelfLoops, HeadModularity[] Heads, double ElapsedMs);

/// <param name="RowRange">[start, end) of the rows, in units after the view options; null: all</param>
/// <param name="ColRange">[start, end) of the columns, in units; null: all</param>
/// <param name="Pooling">how a block is pooled when the window is bigger than maxSize: "max" (default) or "mean"</param>
/// <param name="IncludeUnits">false: the answer leaves out `units` (a thumbnail, or a client that has them already); default true</param>
public sealed record ViewParams(string? AnalysisId, int Layer, int Head, bool HideSpecial = false, bool WordLevel = false, int? MaxSize = null,
    string? HeadReduce = null, int[]? RowRange = null, int[]? ColRange = null, string? Pooling = null, bool IncludeUnits = true);
public sealed record RolloutParams(string? AnalysisId, int? Layer = null, bool HideSpecial = false, bool WordLevel = false, int? MaxSize = null);
/// <param name="RowRange">the rows served, [start, end) in units, before pooling</param>
/// <param name="ColRange">the columns served, [start, end) in units, before pooling</param>
/// <param name="Pooling">"max" or "mean": how the served blocks were pooled</param>
/// <param name="Units">the rows' and columns' units; absent when the request said includeUnits: false</param>
public sealed record ViewDto(int Rows, int Cols, int Layer, int Head, bool Pooled, int PoolFactor, ReadOnlyMemory<byte> Data, ViewUnit[]? Units,
    int[] RowRange, int[] ColRange, string Pooling);

/// <param name="TimeBudgetMs">wall time allowed (default 60000, 1 … 600000); layers not reached leave the answer incomplete</param>
/// <param name="WorkDoneToken">LSP's work-done token: when given, the server reports `$/progress` under it (layer k of L)</param>
public sealed record RolloutRowParams(string? AnalysisId, int Token, int? Layer = null, int? TimeBudgetMs = null, string? WorkDoneToken = null);
/// <param name="Scores">row `token` of the rollout up to `layer` (sums to 1); null unless complete</param>
/// <param name="Partial">the layers applied so far, `layer` down to `reachedLayer` (equal to scores when complete)</param>
/// <param name="ReachedLayer">the lowest layer applied: 0 when complete, `layer` + 1 when none was</param>
public sealed record RolloutRowDto(int Token, int Layer, double[]? Scores, double[] Partial, int ReachedLayer, bool Complete, double ElapsedMs);

/// <param name="Sections">named UTF-16 ranges [start, end) of the analysed text; they must not overlap</param>
/// <param name="Query">the query tokens' range (tokens whose first character lies in it); null: the last token</param>
/// <param name="Layer">−1 (default): the mean over layers</param>
/// <param name="Head">−1 (default): the mean over heads</param>
public sealed record SectionsParams(string? AnalysisId, TextSection[]? Sections, TextRange? Query = null, int Layer = -1, int Head = -1,
    bool ExcludeSpecial = false);
public sealed record TextRange(int Start, int End);
public sealed record SectionsDto(SectionMass[] Sections, double[][] Matrix, double Sink, SectionQuery Query, int Layer, int Head,
    bool ExcludeSpecial, double ElapsedMs);

public sealed record DiffParams(string? AnalysisIdA, string? AnalysisIdB);
/// <param name="Alignment">pairs [i, j]: token i of A is token j of B</param>
/// <param name="Heads">per head (by layer, then head): the mean total-variation distance of aligned rows, 0 … 1</param>
public sealed record DiffDto(int[][] Alignment, HeadChange[] Heads, double ElapsedMs);

public sealed record FlowParams(string? AnalysisId, int Token, int? Layer = null, int? TimeBudgetMs = null);
/// <summary>Raw[j] is null for inputs not reached within the budget; Flow is null unless Complete.</summary>
public sealed record FlowDto(int Token, int Layer, double[]? Flow, double?[] Raw, double[] UpperBound, bool Complete, double ElapsedMs);

public sealed record HistogramParams(string? AnalysisId, int? Layer = null, int? Head = null, int? Bins = null, bool ExcludeSpecial = false,
    string? Metric = null);
public sealed record HistogramDto(long[] Counts, double[] Edges, double Min, double Max, long Total, string? Metric);

/// <summary>Thin handlers over <see cref="AnalysisQueries"/>; <see cref="BackendJsonRpc"/> answers their errors.</summary>
public sealed class AnalysisTarget(AnalysisQueries analytics) : IProgressTarget
{
    private StreamJsonRpc.JsonRpc? _rpc;

    void IProgressTarget.Attach(StreamJsonRpc.JsonRpc rpc) => _rpc = rpc;

    [JsonRpcMethod("attention/metrics", UseSingleObjectParameterDeserialization = true)]
    public async Task<MetricsDto> MetricsAsync(MetricsParams request, CancellationToken cancellationToken)
    {
        var m = await analytics.MetricsAsync(RequestChecks.AnalysisId(request?.AnalysisId), cancellationToken);
        return new MetricsDto(m.Layers, m.Heads, m.Causal, m.SinkThreshold, m.Metrics, Math.Round(m.ElapsedMs, 2));
    }

    [JsonRpcMethod("attention/modularity", UseSingleObjectParameterDeserialization = true)]
    public async Task<ModularityDto> ModularityAsync(ModularityParams request, CancellationToken cancellationToken)
    {
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var r = await analytics.ModularityAsync(id, request!.Layer, request.Head, request.IncludeSelfLoops, cancellationToken);
        return new ModularityDto(request.Layer, request.Head, r.Q, r.Communities, r.CommunityCount, request.IncludeSelfLoops);
    }

    [JsonRpcMethod("attention/modularityAll", UseSingleObjectParameterDeserialization = true)]
    public async Task<ModularityAllDto> ModularityAllAsync(ModularityAllParams request, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var heads = await analytics.ModularityAllAsync(id, request!.IncludeSelfLoops, cancellationToken);
        return new ModularityAllDto(request.IncludeSelfLoops, heads, Math.Round(clock.Elapsed.TotalMilliseconds, 2));
    }

    [JsonRpcMethod("attention/view", UseSingleObjectParameterDeserialization = true)]
    public Task<ViewDto> ViewAsync(ViewParams request)
    {
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var options = new ViewOptions(request!.HideSpecial, request.WordLevel);
        var view = new ViewRequest(request.Layer, request.Head, options, request.MaxSize, request.HeadReduce, request.RowRange,
            request.ColRange, request.Pooling);
        // Off the dispatcher: a window of a long analysis may be recomputed (on the model thread).
        return Task.Run(() => ToDto(analytics.View(id, view), request.IncludeUnits));
    }

    [JsonRpcMethod("attention/rollout", UseSingleObjectParameterDeserialization = true)]
    public async Task<ViewDto> RolloutAsync(RolloutParams request, CancellationToken cancellationToken)
    {
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        return ToDto(await analytics.RolloutAsync(id, request!.Layer, new ViewOptions(request.HideSpecial, request.WordLevel), request.MaxSize,
            cancellationToken));
    }

    [JsonRpcMethod("attention/rolloutRow", UseSingleObjectParameterDeserialization = true)]
    public async Task<RolloutRowDto> RolloutRowAsync(RolloutRowParams request, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var progress = request!.WorkDoneToken is { } token && _rpc is { } rpc
            ? new BackendServer.WorkDoneReporter(rpc, token, "Attention rollout")
            : null;
        progress?.Begin();
        try
        {
            var r = await analytics.RolloutRowAsync(id, request.Token, request.Layer, request.TimeBudgetMs, progress, cancellationToken);
            return new RolloutRowDto(r.Token, r.Layer, r.Scores, r.Partial, r.ReachedLayer, r.Complete,
                Math.Round(clock.Elapsed.TotalMilliseconds, 2));
        }
        finally
        {
            progress?.End();
        }
    }

    [JsonRpcMethod("attention/sections", UseSingleObjectParameterDeserialization = true)]
    public async Task<SectionsDto> SectionsAsync(SectionsParams request, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var sections = request!.Sections ?? throw RequestChecks.Missing("sections");
        var query = request.Query is { } q ? (q.Start, q.End) : ((int, int)?)null;
        var r = await analytics.SectionsAsync(id, sections, query, request.Layer, request.Head, request.ExcludeSpecial, cancellationToken);
        return new SectionsDto(r.Sections, r.Matrix, r.Sink, r.Query, request.Layer, request.Head, request.ExcludeSpecial,
            Math.Round(clock.Elapsed.TotalMilliseconds, 2));
    }

    [JsonRpcMethod("attention/diff", UseSingleObjectParameterDeserialization = true)]
    public async Task<DiffDto> DiffAsync(DiffParams request, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var a = request?.AnalysisIdA ?? throw RequestChecks.Missing("analysisIdA");
        var b = request.AnalysisIdB ?? throw RequestChecks.Missing("analysisIdB");
        var r = await analytics.DiffAsync(a, b, cancellationToken);
        return new DiffDto(r.Alignment, r.Heads, Math.Round(clock.Elapsed.TotalMilliseconds, 2));
    }

    [JsonRpcMethod("attention/flow", UseSingleObjectParameterDeserialization = true)]
    public async Task<FlowDto> FlowAsync(FlowParams request, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var f = await analytics.FlowAsync(id, request!.Token, request.Layer, request.TimeBudgetMs, cancellationToken);
        return ToDto(f, clock.Elapsed.TotalMilliseconds);
    }

    /// <summary>Inputs not computed within the budget (NaN) go out as null: JSON has no NaN.</summary>
    internal static FlowDto ToDto(FlowResult f, double elapsedMs) =>
        new(f.Token, f.Layer, f.Flow, f.Raw.Select(v => double.IsNaN(v) ? (double?)null : v).ToArray(), f.UpperBound, f.Complete,
            Math.Round(elapsedMs, 2));

    [JsonRpcMethod("attention/histogram", UseSingleObjectParameterDeserialization = true)]
    public async Task<HistogramDto> HistogramAsync(HistogramParams request, CancellationToken cancellationToken)
    {
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var h = await analytics.HistogramAsync(id, request!.Layer, request.Head, request.Bins, request.ExcludeSpecial,
            request.Metric, cancellationToken);
        return new HistogramDto(h.Counts, h.Edges, h.Min, h.Max, h.Total, request.Metric);
    }

    /// <param name="includeUnits">false for the model view's thumbnails: at 512 tokens each answer's units were ~46 KB of
    /// JSON, most of the grid's 91 answers (4 MB) for the host to parse and post on.</param>
    private static ViewDto ToDto(ViewResult v, bool includeUnits = true) =>
        new(v.Rows, v.Cols, v.Layer, v.Head, v.Pooled, v.PoolFactor, AttentionTensor.AsBytes(v.Data).ToArray(), includeUnits ? v.Units : null,
            [v.RowStart, v.RowEnd], [v.ColStart, v.ColEnd], v.Pooling);
}
