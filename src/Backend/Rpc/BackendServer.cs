using System.Text.Json;
using System.Text.Json.Serialization;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using AttentionViz.Backend.Storage;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace AttentionViz.Backend.Rpc;

/// <summary>A handler object that reports `$/progress`: handed the connection once it exists.</summary>
internal interface IProgressTarget
{
    void Attach(StreamJsonRpc.JsonRpc rpc);
}

/// <summary>
/// The protocol surface: thin handlers that validate and delegate to <see cref="AttentionService"/>. Their exceptions
/// become JSON-RPC errors in one place, <see cref="BackendJsonRpc"/>.
/// </summary>
public sealed class BackendServer(AttentionService service, IReadOnlyList<object> areaTargets)
{
    private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _shutdownRequested;
    private StreamJsonRpc.JsonRpc? _rpc;

    /// <summary>Completes with the process exit code when the client sends <c>exit</c>.</summary>
    public Task<int> ExitRequested => _exit.Task;

    [JsonRpcMethod("initialize", UseSingleObjectParameterDeserialization = true)]
    public InitializeResult Initialize(InitializeParams? request = null)
    {
        if (request?.ClientName is { } client)
            Log.Info($"client: {Log.Clip(client, 200)} {Log.Clip(request.ClientVersion ?? "", 100)}");
        if (request?.AllowPickle is { } allowPickle)
        {
            service.Models.AllowPickle = allowPickle;
            if (allowPickle) Log.Warn("the client opted in to PyTorch pickle checkpoints (pytorch_model.bin); " +
                "they load through a restricted unpickler");
        }
        return new InitializeResult(ProtocolInfo.ServerVersion, ProtocolInfo.ProtocolVersion, ModelRegistry.DefaultId);
    }

    [JsonRpcMethod("shutdown")]
    public object? Shutdown()
    {
        _shutdownRequested = true;
        return null;
    }

    [JsonRpcMethod("exit")]
    public void Exit() => _exit.TrySetResult(_shutdownRequested ? 0 : 1);

    [JsonRpcMethod("models/list", UseSingleObjectParameterDeserialization = true)]
    public Task<ModelListEntry[]> ListModelsAsync(ModelsListParams? request = null) =>
        Task.Run(() => service.Models.List(request?.Paths).Select(ModelListEntry.From).ToArray());

    [JsonRpcMethod("attention/analyze", UseSingleObjectParameterDeserialization = true)]
    public async Task<AnalyzeResult> AnalyzeAsync(AnalyzeParams request, CancellationToken cancellationToken)
    {
        var text = request?.Text ?? throw RequestChecks.Missing("text");
        var options = new AnalyzeOptions(text, request.ModelId, request.MaxTokens, request.TextPair, request.AddSpecialTokens);
        var progress = request.WorkDoneToken is { } token && _rpc is { } rpc ? new WorkDoneReporter(rpc, token) : null;
        progress?.Begin();
        StoredAnalysis analysis;
        try
        {
            analysis = await service.AnalyzeAsync(options, cancellationToken, progress);
        }
        finally
        {
            progress?.End();
        }
        return new AnalyzeResult(analysis.Id, analysis.Model,
            analysis.Tokens.Select(TokenDto.From).ToArray(),
            analysis.Truncated, analysis.TruncatedAt, Math.Round(analysis.ElapsedMs, 2), analysis.Attention.SizeInBytes,
            analysis.Window, analysis.ReusedTokens);
    }

    /// <summary>The view with default options (see <see cref="AttentionViews.View"/>), without the units.</summary>
    [JsonRpcMethod("attention/matrix", UseSingleObjectParameterDeserialization = true)]
    public Task<MatrixDto> MatrixAsync(MatrixParams request)
    {
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var view = new ViewRequest(request!.Layer, request.Head, new ViewOptions(), request.MaxSize, RowRange: request.RowRange,
            ColRange: request.ColRange);
        return Task.Run(() =>
        {
            using var lease = service.Acquire(id);
            var v = AttentionViews.View(lease.Analysis, view);
            var data = AttentionTensor.AsBytes(v.Data).ToArray();
            return new MatrixDto(v.Rows, v.Cols, v.Layer, v.Head, v.Pooled, v.PoolFactor, data, [v.RowStart, v.RowEnd],
                [v.ColStart, v.ColEnd]);
        });
    }

    [JsonRpcMethod("attention/row", UseSingleObjectParameterDeserialization = true)]
    public Task<RowDto> RowAsync(RowParams request)
    {
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        return Task.Run(() =>
        {
            var r = service.Row(id, request!.Layer, request.Head, request.Token, request.Direction ?? "from", request.TopK);
            return new RowDto(r.Scores, r.Top.Select(t => new TopEntry(t.Token, t.Score)).ToArray());
        });
    }

    [JsonRpcMethod("attention/release", UseSingleObjectParameterDeserialization = true)]
    public Task<ReleaseResult> ReleaseAsync(ReleaseParams request) =>
        Task.FromResult(new ReleaseResult(service.Release(RequestChecks.AnalysisId(request?.AnalysisId))));

    public static SystemTextJsonFormatter CreateFormatter()
    {
        var formatter = new BackendFormatter();
        formatter.JsonSerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        formatter.JsonSerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        formatter.JsonSerializerOptions.Converters.Add(new UnitsJsonConverter());
        return formatter;
    }

    /// <summary>
    /// Serves JSON-RPC with LSP framing until the client sends exit or closes the input. Returns the exit code: 1 when the
    /// stream was lost (the guard or StreamJsonRpc failed), so that the client restarts the backend.
    /// </summary>
    public async Task<int> RunAsync(Stream input, Stream output)
    {
        // Bad frames are answered by the guard; StreamJsonRpc sees only well-formed messages (see FrameGuard).
        var guard = new FrameGuard(input, output);
        var handler = new HeaderDelimitedMessageHandler(guard.RpcPipe, CreateFormatter());
        object[] targets = [this, .. areaTargets];
        using var rpc = new BackendJsonRpc(handler, targets);
        _rpc = rpc;
        var options = new JsonRpcTargetOptions { MethodNameTransform = CommonMethodNameTransforms.CamelCase };
        foreach (var target in targets)
        {
            rpc.AddLocalRpcTarget(target, options);
            if (target is IProgressTarget reporting) reporting.Attach(rpc);
        }
        guard.Start();
        rpc.StartListening();
        var finished = await Task.WhenAny(rpc.Completion, ExitRequested);
        var code = 0;
        if (finished == ExitRequested) code = await ExitRequested;
        else
        {
            try
            {
                await rpc.Completion;
            }
            catch (Exception e)
            {
                Log.Error($"protocol stream lost ({e.Message}): exiting with code 1 so that the client restarts the backend");
                code = 1;
            }
        }
        // Replies (e.g. to shutdown) may still be on their way through the guard: closing the connection lets it finish.
        rpc.Dispose();
        await Task.WhenAny(guard.Writing, Task.Delay(TimeSpan.FromSeconds(2)));
        return code;
    }

    /// <summary>LSP work-done progress for one long request: begin, a report per layer, end, under the client's token.</summary>
    internal sealed class WorkDoneReporter(StreamJsonRpc.JsonRpc rpc, string token, string title = "Analyzing attention")
        : IProgress<AnalysisProgress>
    {
        private readonly Lock _order = new();

        public void Begin() => Send(new WorkDoneProgress("begin", title, Cancellable: true, Percentage: 0));

        public void Report(AnalysisProgress value) =>
            Send(new WorkDoneProgress("report", Message: $"layer {value.LayersDone} of {value.Layers}",
                Percentage: 100 * value.LayersDone / Math.Max(1, value.Layers)));

        public void End() => Send(new WorkDoneProgress("end"));

        private void Send(WorkDoneProgress value)
        {
            // Sent in order, never awaited by the forward: a slow client must not hold the model thread.
            lock (_order) _ = rpc.NotifyWithParameterObjectAsync("$/progress", new ProgressParams(token, value));
        }
    }
}
