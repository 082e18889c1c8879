using System.Text.Json;
using AttentionViz.Backend.Rpc;
using AttentionViz.Backend.Tests.Support;
using Nerdbank.Streams;
using StreamJsonRpc;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>
/// Each class of failure over JSON-RPC (docs/protocol.md, "Errors"): its code, words the user can act on, and never a
/// .NET stack or type name in the reply.
/// </summary>
[TestClass]
public sealed class ErrorModelTests
{
    private static InMemoryBackend _backend = null!;

    [ClassInitialize]
    public static void Start(TestContext _) => _backend = new InMemoryBackend();

    [ClassCleanup]
    public static void Stop() => _backend.Dispose();

    /// <summary>The reply's code and message; fails if the call succeeds or the reply carries data.</summary>
    private static async Task<(int Code, string Message)> Failure(JsonRpc client, string method, object? parameters)
    {
        var error = await Assert.ThrowsAsync<RemoteRpcException>(() =>
            client.InvokeWithParameterObjectAsync<JsonElement>(method, parameters ?? new { }));
        // StreamJsonRpc's client raises -32601 and -32602 as RemoteMethodNotFoundException, and -32003 (its own
        // ResponseSerializationFailure) as RemoteSerializationException.
        var (code, data) = error switch
        {
            RemoteInvocationException invocation => (invocation.ErrorCode, invocation.ErrorData),
            RemoteMethodNotFoundException notFound => ((int)notFound.ErrorCode, notFound.ErrorData),
            RemoteSerializationException serialization => ((int?)serialization.ErrorCode ?? 0, serialization.ErrorData),
            _ => throw new AssertFailedException($"unexpected {error.GetType().Name}: {error.Message}"),
        };
        AssertPlain(error.Message, data);
        return (code, error.Message);
    }

    internal static void AssertPlain(string message, object? data)
    {
        Assert.IsNull(data, $"error.data must stay empty (the stack belongs in the log): {data}");
        Assert.DoesNotContain("   at ", message);
        Assert.DoesNotContain("System.", message, "no .NET type names");
        Assert.DoesNotContain("AttentionViz.", message, "no .NET type names");
    }

    /// <summary>Params of the wrong JSON type, by case (anonymous objects cannot be data rows).</summary>
    private static object WrongTypes(int row) => row switch
    {
        0 => new { analysisId = "x", layer = "not a number", head = 0 },
        1 => new { analysisId = "x", layer = 0, head = 0, maxSize = "big" },
        2 => new { text = 5 },
        3 => new { analysisId = "x", layer = 0, head = 0, token = 1.5 },
        4 => new { allowPickle = "yes" },
        5 => new { paths = "/tmp" },
        6 => new { analysisId = "x", scaleMax = "one" },
        7 => new { analysisId = "x", format = new[] { "csv" } },
        _ => throw new ArgumentOutOfRangeException(nameof(row)),
    };

    [TestMethod]
    [DataRow(0, "attention/matrix", "'layer' must be an integer")]
    [DataRow(1, "attention/view", "'maxSize' must be an integer")]
    [DataRow(2, "attention/analyze", "'text' must be a string")]
    [DataRow(3, "attention/row", "'token' must be an integer")]
    [DataRow(4, "initialize", "'allowPickle' must be true or false")]
    [DataRow(5, "models/list", "'paths' must be an array of strings")]
    [DataRow(6, "render/png", "'scaleMax' must be a number")]
    [DataRow(7, "attention/export", "'format' must be a string")]
    public async Task WrongParameterTypesNameTheParameterAndTheType(int row, string method, string words)
    {
        // Before the error model these were -32000 "could not be converted to AttentionViz.Backend.Rpc.…Params"
        // with the .NET stack in error.data.
        var (code, message) = await Failure(ClientOf(_backend), method, WrongTypes(row));
        Assert.AreEqual((int)AppErrorCode.InvalidParams, code, message);
        StringAssert.Contains(message, words);
        StringAssert.Contains(message, method);
    }

    [TestMethod]
    public async Task ExpectedFailuresKeepTheirCodeAndMessage()
    {
        var client = ClientOf(_backend);
        var unknown = await Failure(client, "attention/view", new { analysisId = "nope", layer = 0, head = 0 });
        Assert.AreEqual(((int)AppErrorCode.InvalidParams, "Unknown analysisId 'nope' (it may have been evicted: analyze again)."), unknown);
        var missing = await Failure(client, "attention/metrics", new { });
        Assert.AreEqual(((int)AppErrorCode.InvalidParams, "Missing parameter 'analysisId'."), missing);
        var model = await Failure(client, "attention/analyze", new { text = "hi", modelId = "/nonexistent/model" });
        Assert.AreEqual((int)AppErrorCode.ModelLoadFailed, model.Code);
        StringAssert.Contains(model.Message, "/nonexistent/model");
    }

    [TestMethod]
    public async Task TheSharedChecksWordTheSameMistakeTheSameWay()
    {
        var client = ClientOf(_backend);
        var id = (await _backend.Call("attention/analyze", new { text = "Hello world" })).GetProperty("analysisId").GetString();
        const string layer = "layer 6 is out of range: the model has 6 layers (0..5, or -1 for the mean).";
        foreach (var method in new[] { "attention/matrix", "attention/view", "attention/row", "render/png", "attention/modularity" })
            Assert.AreEqual(((int)AppErrorCode.InvalidParams, layer),
                await Failure(client, method, new { analysisId = id, layer = 6, head = 0, token = 0 }), method);
        var max = await Failure(client, "attention/view", new { analysisId = id, layer = 6, head = 0, headReduce = "max" });
        StringAssert.Contains(max.Message, "or -1 for the maximum");
        var reduce = await Failure(client, "attention/view", new { analysisId = id, layer = 0, head = 0, headReduce = "median" });
        Assert.AreEqual("headReduce must be \"mean\" or \"max\"; got \"median\".", reduce.Message);
    }

    [TestMethod]
    public async Task ChoicesBoundsAndMissingParamsAreWordedByTheSharedChecks()
    {
        var client = ClientOf(_backend);
        var id = (await _backend.Call("attention/analyze", new { text = "Hello world" })).GetProperty("analysisId").GetString();
        var metric = await Failure(client, "attention/histogram", new { analysisId = id, metric = "beauty" });
        StringAssert.StartsWith(metric.Message, "metric must be \"entropy\", \"normalizedEntropy\", ");
        StringAssert.EndsWith(metric.Message, " or \"selfDistance\"; got \"beauty\".");
        var topK = await Failure(client, "attention/row", new { analysisId = id, layer = 0, head = 0, token = 0, direction = "from", topK = -1 });
        Assert.AreEqual("topK must be at least 0; got -1.", topK.Message);
        var colorMap = await Failure(client, "render/png", new { analysisId = id, colorMap = "jet" });
        Assert.AreEqual("colorMap must be \"viridis\" or \"greys\"; got \"jet\".", colorMap.Message);
        var theme = await Failure(client, "render/png", new { analysisId = id, theme = "sepia" });
        Assert.AreEqual("theme must be \"light\" or \"dark\"; got \"sepia\".", theme.Message);
        var path = await Failure(client, "attention/export", new { analysisId = id, format = "csv" });
        Assert.AreEqual(((int)AppErrorCode.InvalidParams, "Missing parameter 'path'."), path);
        // Choices of rendering options still ignore case.
        await _backend.Call("render/png", new { analysisId = id, colorMap = "Greys", theme = "DARK", size = 8 });
    }

    /// <summary>A target whose handlers fail the ways the backend's code can, served by the backend's JsonRpc.</summary>
    public sealed class FailingTarget
    {
        [JsonRpcMethod("test/bug")]
        public int Bug() => throw new InvalidOperationException("the index went negative");

        [JsonRpcMethod("test/badFile")]
        public int BadFile() => throw new InvalidDataException("The BPE unk_token \"<unk>\" is not in the vocabulary.");

        [JsonRpcMethod("test/unsupported")]
        public Task<int> Unsupported() => Task.FromException<int>(new NotSupportedException("BPE dropout is not supported."));

        [JsonRpcMethod("test/format")]
        public async Task<int> Format()
        {
            await Task.Yield();
            throw new ModelFormatException("/m/model.safetensors: tensor 'w': truncated");
        }
    }

    [TestMethod]
    [DataRow("test/bug", (int)AppErrorCode.InternalError, "Internal error: the index went negative (details in the backend log)")]
    [DataRow("test/badFile", (int)AppErrorCode.ModelFileInvalid, "The BPE unk_token \"<unk>\" is not in the vocabulary.")]
    [DataRow("test/unsupported", (int)AppErrorCode.ModelLoadFailed, "BPE dropout is not supported.")]
    [DataRow("test/format", (int)AppErrorCode.ModelFileInvalid, "/m/model.safetensors: tensor 'w': truncated")]
    public async Task UnexpectedAndLibraryExceptionsAreMappedOnce(string method, int code, string message)
    {
        var (serverStream, clientStream) = FullDuplexStream.CreatePair();
        using var server = new BackendJsonRpc(
            new HeaderDelimitedMessageHandler(serverStream, serverStream, BackendServer.CreateFormatter()), [new FailingTarget()]);
        server.AddLocalRpcTarget(new FailingTarget());
        server.StartListening();
        using var client = new JsonRpc(new HeaderDelimitedMessageHandler(clientStream, clientStream, BackendServer.CreateFormatter()));
        client.StartListening();
        Assert.AreEqual((code, message), await Failure(client, method, null));
    }

    [TestMethod]
    public void UnexpectedFailuresKeepTheirStackForTheLogOnly()
    {
        Exception thrown;
        try { throw new InvalidOperationException("boom"); }
        catch (InvalidOperationException e) { thrown = e; }
        var failure = ErrorMapping.Describe(new AggregateException(thrown));
        Assert.AreEqual(AppErrorCode.InternalError, failure.Code);
        Assert.AreEqual("Internal error: boom", failure.Message);
        StringAssert.Contains(failure.LogLine, "   at ", "the log line keeps the stack");
        Assert.IsNull(ErrorMapping.Describe(new InvalidRequestException("bad")).LogLine, "a caller's mistake is not logged");
    }

    [TestMethod]
    [DataRow(AppErrorCode.InvalidParams, 2)]
    [DataRow(AppErrorCode.ModelLoadFailed, 1)]
    [DataRow(AppErrorCode.ModelFileInvalid, 1)]
    [DataRow(AppErrorCode.InternalError, 1)]
    [DataRow(AppErrorCode.RequestCanceled, 130)]
    public void ExitCodesFollowTheCode(AppErrorCode code, int exitCode) => Assert.AreEqual(exitCode, ErrorMapping.ExitCode(code));

    private static JsonRpc ClientOf(InMemoryBackend backend) => backend.Client;
}
