using System.Text.Json;
using System.Text.Json.Serialization;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Platform;
using AttentionViz.Backend.Storage;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace AttentionViz.Backend.Rpc;

/// <summary>
/// The protocol surface: thin handlers that validate, delegate to <see cref="AttentionService"/> and turn expected
/// failures into JSON-RPC errors with a message a user can act on. Unexpected ones are logged with their stack to
/// stderr and answered without it.
/// </summary>
public sealed class BackendServer(AttentionService service, IReadOnlyList<object> areaTargets)
{
    private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _shutdownRequested;

    /// <summary>Completes with the process exit code when the client sends <c>exit</c>.</summary>
    public Task<int> ExitRequested => _exit.Task;

    [JsonRpcMethod("initialize", UseSingleObjectParameterDeserialization = true)]
    public InitializeResult Initialize(InitializeParams? request = null)
    {
        if (request?.ClientName is { } client) Log.Info($"client: {client} {request.ClientVersion}");
        if (request?.AllowPickle is { } allowPickle)
        {
            service.Models.AllowPickle = allowPickle;
            if (allowPickle) Log.Warn("the client opted in to PyTorch pickle checkpoints (pytorch_model.bin); they load through a restricted unpickler");
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
        Guard(() => Task.Run(() => service.Models.List(request?.Paths).Select(ModelListEntry.From).ToArray()));

    [JsonRpcMethod("attention/analyze", UseSingleObjectParameterDeserialization = true)]
    public Task<AnalyzeResult> AnalyzeAsync(AnalyzeParams request, CancellationToken cancellationToken) => Guard(async () =>
    {
        if (request?.Text is null) throw new InvalidRequestException("Missing parameter 'text'.");
        var analysis = await service.AnalyzeAsync(new AnalyzeOptions(request.Text, request.ModelId, request.MaxTokens, request.TextPair), cancellationToken);
        return new AnalyzeResult(analysis.Id, analysis.Model,
            analysis.Tokens.Select(TokenDto.From).ToArray(),
            analysis.Truncated, analysis.TruncatedAt, Math.Round(analysis.ElapsedMs, 2));
    });

    [JsonRpcMethod("attention/matrix", UseSingleObjectParameterDeserialization = true)]
    public Task<MatrixDto> MatrixAsync(MatrixParams request) => Guard(() =>
    {
        var m = service.Matrix(RequireId(request?.AnalysisId), request!.Layer, request.Head, request.MaxSize);
        return Task.FromResult(new MatrixDto(m.Rows, m.Cols, m.Layer, m.Head, m.Pooled, m.PoolFactor, m.Data));
    });

    [JsonRpcMethod("attention/row", UseSingleObjectParameterDeserialization = true)]
    public Task<RowDto> RowAsync(RowParams request) => Guard(() =>
    {
        var r = service.Row(RequireId(request?.AnalysisId), request!.Layer, request.Head, request.Token, request.Direction ?? "from", request.TopK);
        return Task.FromResult(new RowDto(r.Scores, r.Top.Select(t => new TopEntry(t.Token, t.Score)).ToArray()));
    });

    [JsonRpcMethod("attention/release", UseSingleObjectParameterDeserialization = true)]
    public Task<ReleaseResult> ReleaseAsync(ReleaseParams request) =>
        Guard(() => Task.FromResult(new ReleaseResult(service.Release(RequireId(request?.AnalysisId)))));

    private static string RequireId(string? id) => id ?? throw new InvalidRequestException("Missing parameter 'analysisId'.");

    /// <summary>Maps expected failures to JSON-RPC errors; shared by every area's target.</summary>
    public static async Task<T> Guard<T>(Func<Task<T>> handler)
    {
        try
        {
            return await handler();
        }
        catch (OperationCanceledException)
        {
            throw; // StreamJsonRpc answers -32800 (RequestCanceled).
        }
        catch (InvalidRequestException e)
        {
            throw new LocalRpcException(e.Message) { ErrorCode = (int)JsonRpcErrorCode.InvalidParams };
        }
        catch (ModelLoadException e)
        {
            Log.Error(e.Message);
            throw new LocalRpcException(e.Message) { ErrorCode = (int)AppErrorCode.ModelLoadFailed };
        }
        catch (ModelFormatException e)
        {
            Log.Error(e.Message);
            throw new LocalRpcException(e.Message) { ErrorCode = (int)AppErrorCode.ModelFileInvalid };
        }
        catch (Exception e) when (e is not LocalRpcException)
        {
            Log.Error($"internal error: {e}");
            throw new LocalRpcException($"Internal error: {e.Message} (details in the backend log)") { ErrorCode = (int)AppErrorCode.InternalError };
        }
    }

    public static SystemTextJsonFormatter CreateFormatter()
    {
        var formatter = new SystemTextJsonFormatter();
        formatter.JsonSerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        formatter.JsonSerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        return formatter;
    }

    /// <summary>Serves JSON-RPC with LSP framing until the client sends exit or closes the input. Returns the exit code.</summary>
    public async Task<int> RunAsync(Stream input, Stream output)
    {
        var handler = new HeaderDelimitedMessageHandler(output, input, CreateFormatter());
        using var rpc = new JsonRpc(handler);
        var options = new JsonRpcTargetOptions { MethodNameTransform = CommonMethodNameTransforms.CamelCase };
        rpc.AddLocalRpcTarget(this, options);
        foreach (var target in areaTargets) rpc.AddLocalRpcTarget(target, options);
        rpc.StartListening();
        var finished = await Task.WhenAny(rpc.Completion, ExitRequested);
        if (finished == ExitRequested) return await ExitRequested;
        try
        {
            await rpc.Completion;
        }
        catch (Exception e)
        {
            Log.Error($"connection closed with an error: {e.Message}");
        }
        return 0;
    }
}
