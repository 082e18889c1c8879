using System.Runtime.InteropServices;
using System.Text.Json;
using AttentionViz.Backend.Rpc;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Tests.Support;
using Nerdbank.Streams;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>Every method and error path of the protocol, in memory over a duplex stream pair.</summary>
[TestClass]
public sealed class RpcServerTests
{
    private static InMemoryBackend _backend = null!;
    private static BackendHost _host => _backend.Host;
    private const string FoxText = "The quick brown fox jumps over the lazy dog.";

    [ClassInitialize]
    public static void Start(TestContext _)
    {
        _backend = new InMemoryBackend();
    }

    [ClassCleanup]
    public static void Stop()
    {
        _backend.Dispose();
    }

    private static Task<JsonElement> Call(string method, object? parameters = null, CancellationToken cancellationToken = default) =>
        _backend.Call(method, parameters, cancellationToken);

    private static Task<int> ErrorCode(string method, object? parameters) => _backend.ErrorCode(method, parameters);

    private static float[] Floats(JsonElement matrix) => MemoryMarshal.Cast<byte, float>(matrix.GetProperty("data").GetBytesFromBase64()).ToArray();

    [TestMethod]
    public async Task InitializeReportsVersions()
    {
        var result = await Call("initialize", new { clientName = "tests", clientVersion = "1" });
        Assert.AreEqual(ProtocolInfo.ProtocolVersion, result.GetProperty("protocolVersion").GetString());
        Assert.IsFalse(string.IsNullOrEmpty(result.GetProperty("serverVersion").GetString()));
        Assert.AreEqual("default", result.GetProperty("defaultModel").GetString());
    }

    [TestMethod]
    public async Task AnalyzeWithoutAddedSpecialTokensKeepsTheTextsTokensAlone()
    {
        static string[] Texts(JsonElement analysis) =>
            analysis.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("text").GetString()!).ToArray();
        var with = Texts(await Call("attention/analyze", new { text = FoxText }));
        var without = Texts(await Call("attention/analyze", new { text = FoxText, addSpecialTokens = false }));
        Assert.AreEqual(("[CLS]", "[SEP]"), (with[0], with[^1]));
        CollectionAssert.AreEqual(with[1..^1], without, "the same tokens, nothing added (a rendered chat template brings its own)");
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams,
            await ErrorCode("attention/analyze", new { text = "a", textPair = "b", addSpecialTokens = false }));
    }

    [TestMethod]
    public async Task ModelsListHasTheEmbeddedDefault()
    {
        var models = (await Call("models/list")).EnumerateArray().ToList();
        var model = models.Single(m => m.GetProperty("id").GetString() == "default");
        Assert.AreEqual("bert", model.GetProperty("architecture").GetString());
        Assert.AreEqual(6, model.GetProperty("layers").GetInt32());
        Assert.AreEqual(12, model.GetProperty("heads").GetInt32());
        Assert.AreEqual("embedded", model.GetProperty("source").GetString());
    }

    [TestMethod]
    public async Task AnalyzeThenMatrixGivesTheModelsRealAttention()
    {
        var expected = Fixtures.Expected("minilm-real");
        var analysis = await Call("attention/analyze", new { text = FoxText });
        var tokens = analysis.GetProperty("tokens").EnumerateArray().ToList();
        CollectionAssert.AreEqual(Fixtures.Longs(expected["s0.input_ids"]), tokens.Select(t => (long)t.GetProperty("id").GetInt32()).ToArray());
        Assert.IsTrue(tokens[0].GetProperty("special").GetBoolean());
        Assert.AreEqual("quick", FoxText[tokens[2].GetProperty("start").GetInt32()..tokens[2].GetProperty("end").GetInt32()]);
        Assert.IsFalse(analysis.GetProperty("truncated").GetBoolean());
        var model = analysis.GetProperty("model");
        Assert.IsFalse(model.GetProperty("causal").GetBoolean());
        var id = analysis.GetProperty("analysisId").GetString();

        var n = tokens.Count;
        var attentions = expected["s0.attentions"];                                  // (L, H, T, T)
        foreach (var (layer, head) in new[] { (0, 0), (3, 7), (5, 11) })
        {
            var matrix = await Call("attention/matrix", new { analysisId = id, layer, head });
            Assert.AreEqual(n, matrix.GetProperty("rows").GetInt32());
            Assert.IsFalse(matrix.GetProperty("pooled").GetBoolean());
            Fixtures.AssertClose(attentions[layer, head], tensor(Floats(matrix), [n, n]), 1e-4, $"layer {layer} head {head}");
        }
        var meanHeads = await Call("attention/matrix", new { analysisId = id, layer = 2, head = -1 });
        Fixtures.AssertClose(attentions[2].mean([0]), tensor(Floats(meanHeads), [n, n]), 1e-4, "mean of heads");
        var meanAll = await Call("attention/matrix", new { analysisId = id, layer = -1, head = -1 });
        Fixtures.AssertClose(attentions.mean([0, 1]), tensor(Floats(meanAll), [n, n]), 1e-4, "mean of layers and heads");
        var meanLayers = await Call("attention/matrix", new { analysisId = id, layer = -1, head = 4 });
        Fixtures.AssertClose(attentions[.., 4].mean([0]), tensor(Floats(meanLayers), [n, n]), 1e-4, "mean of layers for head 4");
    }

    /// <summary>
    /// A decoder fixture's folder with a word-level tokenizer.json (token "w{id}" is id), so that text reaches the model
    /// as the fixture's ids over the protocol.
    /// </summary>
    private static (string Folder, string Text) FixtureWithWordTokenizer(string fixture, long[] ids)
    {
        var folder = Directory.CreateTempSubdirectory($"avz-rpc-{fixture}-").FullName;
        foreach (var file in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(Fixtures.Folder(fixture), file), Path.Combine(folder, file));
        var vocab = new System.Text.Json.Nodes.JsonObject();
        for (var i = 0; i < 400; i++) vocab[$"w{i}"] = i;
        var tokenizer = new System.Text.Json.Nodes.JsonObject
        {
            ["version"] = "1.0", ["added_tokens"] = new System.Text.Json.Nodes.JsonArray(), ["normalizer"] = null,
            ["pre_tokenizer"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "WhitespaceSplit" },
            ["post_processor"] = null, ["decoder"] = null,
            ["model"] = new System.Text.Json.Nodes.JsonObject
            {
                ["type"] = "WordPiece", ["unk_token"] = "w0", ["continuing_subword_prefix"] = "##", ["max_input_chars_per_word"] = 100,
                ["vocab"] = vocab,
            },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJsonString());
        return (folder, string.Join(" ", ids.Select(i => $"w{i}")));
    }

    [TestMethod]
    [DataRow("qwen3-tiny", "Qwen3", 1, null)]
    [DataRow("gemma2-tiny", "Gemma 2", 2, 16)]
    [DataRow("gemma3-tiny", "Gemma 3", 2, 12)]
    [DataRow("phi3-tiny", "Phi-3", 4, null)]
    public async Task DecoderFamiliesAreListedAndAnalyzedWithTheFixturesAttention(string fixture, string family, int kvHeads, int? window)
    {
        var expected = Fixtures.Expected(fixture);
        var ids = Fixtures.Longs(expected["s1.input_ids"]);
        var (folder, text) = FixtureWithWordTokenizer(fixture, ids);
        var listed = (await Call("models/list", new { paths = new[] { folder } })).EnumerateArray()
            .Single(m => m.GetProperty("id").GetString() == folder);
        Assert.AreEqual((family, 2, 4, kvHeads), (listed.GetProperty("family").GetString(), listed.GetProperty("layers").GetInt32(),
            listed.GetProperty("heads").GetInt32(), listed.GetProperty("keyValueHeads").GetInt32()));
        // A null window is left out on the wire.
        Assert.AreEqual(window, listed.TryGetProperty("slidingWindow", out var w) && w.ValueKind != JsonValueKind.Null ? w.GetInt32() : null);
        Assert.IsGreaterThan(0L, listed.GetProperty("sizeBytes").GetInt64());

        var analysis = await Call("attention/analyze", new { text, modelId = folder });
        CollectionAssert.AreEqual(ids, analysis.GetProperty("tokens").EnumerateArray().Select(t => (long)t.GetProperty("id").GetInt32()).ToArray());
        Assert.IsTrue(analysis.GetProperty("model").GetProperty("causal").GetBoolean());
        var id = analysis.GetProperty("analysisId").GetString();
        var attentions = expected["s1.attentions"];                                  // (L, H, T, T)
        var n = ids.Length;
        for (var layer = 0; layer < 2; layer++)
            for (var head = 0; head < 4; head++)
            {
                var matrix = await Call("attention/matrix", new { analysisId = id, layer, head });
                Fixtures.AssertClose(attentions[layer, head], tensor(Floats(matrix), [n, n]), 1e-4, $"{fixture} layer {layer} head {head}");
            }
    }

    [TestMethod]
    public async Task SentencePairGetsSegmentsAndTheTokenizersTemplate()
    {
        var analysis = await Call("attention/analyze", new { text = "Where is the cat?", textPair = "On the mat." });
        var tokens = analysis.GetProperty("tokens").EnumerateArray().ToList();
        CollectionAssert.AreEqual(new[] { "[CLS]", "where", "is", "the", "cat", "?", "[SEP]", "on", "the", "mat", ".", "[SEP]" },
            tokens.Select(t => t.GetProperty("text").GetString()).ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1 }, tokens.Select(t => t.GetProperty("typeId").GetInt32()).ToArray());
        Assert.AreEqual("mat", "On the mat."[tokens[9].GetProperty("start").GetInt32()..tokens[9].GetProperty("end").GetInt32()]);

        // The segment embedding changes the numbers: the same ids as one segment give different attention.
        var id = analysis.GetProperty("analysisId").GetString();
        var single = await Call("attention/analyze", new { text = "Where is the cat? [SEP] On the mat." });
        var pairMatrix = Floats(await Call("attention/matrix", new { analysisId = id, layer = 0, head = 0 }));
        var singleMatrix = Floats(await Call("attention/matrix",
            new { analysisId = single.GetProperty("analysisId").GetString(), layer = 0, head = 0 }));
        Assert.HasCount(pairMatrix.Length, singleMatrix);
        Assert.IsGreaterThan(1e-4, pairMatrix.Zip(singleMatrix).Max(p => Math.Abs(p.First - p.Second)));
    }

    [TestMethod]
    public async Task MatrixWithMaxSizeIsMaxPooled()
    {
        var id = (await Call("attention/analyze", new { text = FoxText })).GetProperty("analysisId").GetString();
        var full = Floats(await Call("attention/matrix", new { analysisId = id, layer = 1, head = 2 }));
        var pooled = await Call("attention/matrix", new { analysisId = id, layer = 1, head = 2, maxSize = 5 });
        Assert.IsTrue(pooled.GetProperty("pooled").GetBoolean());
        var factor = pooled.GetProperty("poolFactor").GetInt32();
        Assert.AreEqual(3, factor);                                                   // ceil(12 / 5)
        Assert.AreEqual(4, pooled.GetProperty("rows").GetInt32());
        var data = Floats(pooled);
        var expected = Enumerable.Range(0, 3).SelectMany(r => Enumerable.Range(0, 3).Select(c => (r, c))).Max(p => full[p.r * 12 + p.c]);
        Assert.AreEqual(expected, data[0]);
        Assert.AreEqual(Enumerable.Range(9, 3).SelectMany(r => Enumerable.Range(9, 3).Select(c => full[r * 12 + c])).Max(), data[15]);
    }

    [TestMethod]
    public async Task RowFromAndToWithTopK()
    {
        var id = (await Call("attention/analyze", new { text = FoxText })).GetProperty("analysisId").GetString();
        var full = Floats(await Call("attention/matrix", new { analysisId = id, layer = 0, head = 0 }));
        var from = await Call("attention/row", new { analysisId = id, layer = 0, head = 0, token = 3, direction = "from", topK = 3 });
        CollectionAssert.AreEqual(full.Skip(36).Take(12).ToArray(), from.GetProperty("scores").EnumerateArray().Select(e => e.GetSingle()).ToArray());
        var top = from.GetProperty("top").EnumerateArray().ToList();
        Assert.HasCount(3, top);
        var best = full.Skip(36).Take(12).Select((s, i) => (s, i)).MaxBy(p => p.s);
        Assert.AreEqual(best.i, top[0].GetProperty("token").GetInt32());
        Assert.IsGreaterThanOrEqualTo(top[1].GetProperty("score").GetSingle(), top[0].GetProperty("score").GetSingle());

        var to = await Call("attention/row", new { analysisId = id, layer = 0, head = 0, token = 3, direction = "to" });
        CollectionAssert.AreEqual(Enumerable.Range(0, 12).Select(r => full[r * 12 + 3]).ToArray(),
            to.GetProperty("scores").EnumerateArray().Select(e => e.GetSingle()).ToArray());
        Assert.HasCount(5, to.GetProperty("top").EnumerateArray().ToList());
    }

    [TestMethod]
    public async Task LongTextIsTruncatedNotRejected()
    {
        var text = string.Concat(Enumerable.Repeat("attention is all you need ", 300));
        var analysis = await Call("attention/analyze", new { text });
        Assert.IsTrue(analysis.GetProperty("truncated").GetBoolean());
        var tokens = analysis.GetProperty("tokens").EnumerateArray().ToList();
        Assert.HasCount(512, tokens);
        Assert.AreEqual("[SEP]", tokens[^1].GetProperty("text").GetString());
        var truncatedAt = analysis.GetProperty("truncatedAt").GetInt32();
        Assert.AreEqual(tokens[^2].GetProperty("end").GetInt32(), truncatedAt);

        var limited = await Call("attention/analyze", new { text, maxTokens = 10 });
        Assert.HasCount(10, limited.GetProperty("tokens").EnumerateArray().ToList());
        Assert.IsTrue(limited.GetProperty("truncated").GetBoolean());
    }

    [TestMethod]
    public async Task OneMegabyteIsTruncatedQuickly()
    {
        var text = new string('x', 20) + string.Concat(Enumerable.Repeat("lorem ipsum dolor sit amet, ", (1 << 20) / 28));
        Assert.IsGreaterThan(1_000_000, text.Length);
        var analysis = await Call("attention/analyze", new { text });
        Assert.IsTrue(analysis.GetProperty("truncated").GetBoolean());
        Assert.HasCount(512, analysis.GetProperty("tokens").EnumerateArray().ToList());
    }

    [TestMethod]
    public async Task LoneSurrogatesAreAnalyzedNotFatal()
    {
        var analysis = await Call("attention/analyze", new { text = "ok \ud800 then \udc00 end" });
        var texts = analysis.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("text").GetString()).ToList();
        CollectionAssert.Contains(texts, "ok");
        CollectionAssert.Contains(texts, "end");
    }

    [TestMethod]
    public async Task BadRequestsAreClearErrorsAndTheServerSurvives()
    {
        var id = (await Call("attention/analyze", new { text = FoxText })).GetProperty("analysisId").GetString();
        Assert.AreEqual((int)JsonRpcErrorCode.MethodNotFound, await ErrorCode("attention/nonsense", new { }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/matrix", new { analysisId = "nope", layer = 0, head = 0 }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/matrix", new { analysisId = id, layer = 6, head = 0 }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/matrix", new { analysisId = id, layer = 0, head = 12 }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/matrix", new { analysisId = id, layer = -2, head = 0 }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams,
            await ErrorCode("attention/matrix", new { analysisId = id, layer = 0, head = 0, maxSize = 0 }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams,
            await ErrorCode("attention/row", new { analysisId = id, layer = 0, head = 0, token = 99 }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams,
            await ErrorCode("attention/row", new { analysisId = id, layer = 0, head = 0, token = 1, direction = "sideways" }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/analyze", new { }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/analyze", new { text = "" }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/analyze", new { text = " \t\n " }));
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/analyze", new { text = "hi", maxTokens = 2 }));
        Assert.AreEqual((int)AppErrorCode.ModelLoadFailed, await ErrorCode("attention/analyze", new { text = "hi", modelId = "/nonexistent/model" }));
        Assert.AreEqual((int)AppErrorCode.ModelLoadFailed, await ErrorCode("attention/analyze", new { text = "hi", modelId = "relative/name" }));

        var again = await Call("attention/matrix", new { analysisId = id, layer = 0, head = 0 });
        Assert.AreEqual(12, again.GetProperty("rows").GetInt32());
    }

    [TestMethod]
    [DataRow("truncated")]
    [DataRow("header beyond file")]
    [DataRow("overlapping offsets")]
    [DataRow("wrong dtype")]
    public async Task HostileWeightsAreModelFileErrors(string corruption)
    {
        var folder = Directory.CreateTempSubdirectory("avz-hostile").FullName;
        var source = Fixtures.Folder("bert-tiny");
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
        var weights = File.ReadAllBytes(Path.Combine(source, "model.safetensors"));
        var headerLength = (int)BitConverter.ToUInt64(weights, 0);
        var header = System.Text.Encoding.UTF8.GetString(weights, 8, headerLength);
        byte[] Rebuild(string newHeader)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(newHeader.PadRight(headerLength));
            Assert.AreEqual(headerLength, bytes.Length, "the edit must keep the header length");
            return [.. weights[..8], .. bytes, .. weights[(8 + headerLength)..]];
        }
        var corrupted = corruption switch
        {
            "truncated" => weights[..(weights.Length / 2)],
            "header beyond file" => [.. BitConverter.GetBytes((ulong)weights.Length * 4), .. weights[8..]],
            "overlapping offsets" => Rebuild(PointSecondTensorAtFirst(header)),
            "wrong dtype" => Rebuild(header.Replace("\"F32\"", "\"F64\"")),
            _ => throw new ArgumentOutOfRangeException(nameof(corruption)),
        };
        File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), corrupted);
        var code = await ErrorCode("attention/analyze", new { text = "hi", modelId = folder });
        Assert.AreEqual((int)AppErrorCode.ModelFileInvalid, code, corruption);
        Assert.HasCount(12, (await Call("attention/analyze", new { text = FoxText })).GetProperty("tokens").EnumerateArray().ToList());
    }

    /// <summary>Makes the second tensor's data_offsets overlap the first tensor's bytes.</summary>
    private static string PointSecondTensorAtFirst(string header)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(header)!.AsObject();
        var second = json.Where(p => p.Key != "__metadata__").Skip(1).First().Value!;
        var offsets = second["data_offsets"]!.AsArray();
        var length = offsets[1]!.GetValue<long>() - offsets[0]!.GetValue<long>();
        second["data_offsets"] = new System.Text.Json.Nodes.JsonArray(0, length);
        return json.ToJsonString();
    }

    [TestMethod]
    public async Task ReleasedAnalysesAreGoneAndTheirMemoryIsReused()
    {
        var first = (await Call("attention/analyze", new { text = FoxText })).GetProperty("analysisId").GetString()!;
        object? firstArray;
        using (var lease = _host.Service.Acquire(first))
            firstArray = ((AttentionViz.Backend.Analysis.AttentionTensor)lease.Analysis.Attention).PooledArray;
        var released = await Call("attention/release", new { analysisId = first });
        Assert.IsTrue(released.GetProperty("released").GetBoolean());
        Assert.AreEqual(-32602, await ErrorCode("attention/matrix", new { analysisId = first, layer = 0, head = 0 }), "a released id is unknown");
        Assert.IsFalse((await Call("attention/release", new { analysisId = first })).GetProperty("released").GetBoolean(),
            "releasing twice is harmless");
        Assert.AreEqual(-32602, await ErrorCode("attention/release", new { }), "analysisId is required");

        // The same text again: the released analysis's pooled array comes back instead of fresh memory.
        var second = (await Call("attention/analyze", new { text = FoxText })).GetProperty("analysisId").GetString()!;
        using var again = _host.Service.Acquire(second);
        Assert.IsNotNull(firstArray);
        Assert.AreSame(firstArray, ((AttentionViz.Backend.Analysis.AttentionTensor)again.Analysis.Attention).PooledArray);
    }

    [TestMethod]
    public void ARequestHoldingALeaseKeepsAReleasedAnalysisAlive()
    {
        using var attention = new AttentionViz.Backend.Analysis.AttentionTensor(1, 1, 2);
        var cache = new AttentionViz.Backend.Analysis.AnalysisCache(1 << 20);
        var analysis = new AttentionViz.Backend.Analysis.StoredAnalysis
        {
            Id = "a", Model = new("m", "bert", 1, 1, false), Tokens = [new(1, "x", 0, 1, false), new(2, "y", 2, 3, false)],
            Truncated = false, Attention = attention, LastHiddenState = new float[2], HiddenSize = 1,
        };
        cache.Add(analysis);
        var lease = cache.Acquire("a")!;
        Assert.IsTrue(cache.Remove("a"));
        Assert.AreEqual(0, cache.Count);
        Assert.IsNull(cache.Acquire("a"), "gone for new requests");
        Assert.AreEqual(4, attention.All.Length, "the running request still reads its buffer");
        lease.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => attention.All.Length, "returned to the pool after the last lease");
    }

    [TestMethod]
    public async Task CancelledAnalyzeLeavesTheServerUsable()
    {
        var longText = string.Concat(Enumerable.Repeat("the model attends to every token here ", 120));
        // The first request keeps the model thread busy; the second is cancelled while it waits.
        var busy = Call("attention/analyze", new { text = longText });
        using var cts = new CancellationTokenSource();
        var cancelled = Call("attention/analyze", new { text = longText }, cts.Token);
        cts.Cancel();
        await Assert.ThrowsAsync<OperationCanceledException>(() => cancelled);
        await busy;
        var after = await Call("attention/analyze", new { text = FoxText });
        Assert.HasCount(12, after.GetProperty("tokens").EnumerateArray().ToList());
    }
}
