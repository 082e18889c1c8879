using System.Runtime.InteropServices;
using System.Text.Json;
using AttentionViz.Backend.Rpc;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Tests.Support;
using Nerdbank.Streams;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>The attention/… analysis methods over JSON-RPC, in memory over a duplex stream pair, with their -32602 errors.</summary>
[TestClass]
public sealed class AnalysisRpcTests
{
    private const string FoxText = "The quick brown fox jumps over the lazy dog.";
    private static InMemoryBackend _backend = null!;
    private static BackendHost _host => _backend.Host;
    private static string _id = null!;
    private static int _n;

    [ClassInitialize]
    public static void Start(TestContext context)
    {
        _backend = new InMemoryBackend();
        var analysis = Call("attention/analyze", new { text = FoxText }).GetAwaiter().GetResult();
        _id = analysis.GetProperty("analysisId").GetString()!;
        _n = analysis.GetProperty("tokens").GetArrayLength();
    }

    [ClassCleanup]
    public static void Stop()
    {
        _backend.Dispose();
    }

    private static Task<JsonElement> Call(string method, object parameters) =>
        _backend.Call(method, parameters);

    private static Task<int> ErrorCode(string method, object parameters) => _backend.ErrorCode(method, parameters);

    private static float[] Floats(JsonElement matrix) => MemoryMarshal.Cast<byte, float>(matrix.GetProperty("data").GetBytesFromBase64()).ToArray();

    [TestMethod]
    public async Task Metrics()
    {
        var result = await Call("attention/metrics", new { analysisId = _id });
        Assert.AreEqual(6, result.GetProperty("layers").GetInt32());
        Assert.AreEqual(12, result.GetProperty("heads").GetInt32());
        Assert.IsFalse(result.GetProperty("causal").GetBoolean());
        Assert.AreEqual(0.3, result.GetProperty("sinkThreshold").GetDouble());
        var rows = result.GetProperty("metrics").EnumerateArray().ToList();
        Assert.HasCount(72, rows);
        var names = rows[0].EnumerateObject().Select(p => p.Name).ToHashSet();
        foreach (var name in new[] { "layer", "head", "entropy", "normalizedEntropy", "meanDistance", "firstToken", "cls", "sep", "sink",
                     "previousToken", "self", "duplicateToken", "induction", "selfDistance" })
            Assert.Contains(name, names);
        Assert.AreEqual((5, 11), (rows[71].GetProperty("layer").GetInt32(), rows[71].GetProperty("head").GetInt32()));
        Assert.IsTrue(result.GetProperty("elapsedMs").GetDouble() >= 0);
    }

    [TestMethod]
    public async Task Modularity()
    {
        var result = await Call("attention/modularity", new { analysisId = _id, layer = 1, head = 3 });
        var communities = result.GetProperty("communities").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.HasCount(_n, communities);
        Assert.AreEqual(0, communities[0]);
        Assert.AreEqual(communities.Max() + 1, result.GetProperty("communityCount").GetInt32());
        Assert.IsFalse(result.GetProperty("includeSelfLoops").GetBoolean());
        var q = result.GetProperty("q").GetDouble();
        Assert.IsTrue(q is >= -0.5 and <= 1);
        var mean = await Call("attention/modularity", new { analysisId = _id, layer = -1, head = -1, includeSelfLoops = true });
        Assert.IsTrue(mean.GetProperty("includeSelfLoops").GetBoolean());
    }

    [TestMethod]
    public async Task ModularityOfEveryHead()
    {
        var result = await Call("attention/modularityAll", new { analysisId = _id });
        var heads = result.GetProperty("heads").EnumerateArray().ToList();
        Assert.HasCount(72, heads);
        Assert.AreEqual((1, 3), (heads[15].GetProperty("layer").GetInt32(), heads[15].GetProperty("head").GetInt32()));
        var single = await Call("attention/modularity", new { analysisId = _id, layer = 1, head = 3 });
        Assert.AreEqual(single.GetProperty("q").GetDouble(), heads[15].GetProperty("q").GetDouble());
        Assert.AreEqual(single.GetProperty("communityCount").GetInt32(), heads[15].GetProperty("communityCount").GetInt32());
        Assert.AreEqual((int)JsonRpcErrorCode.InvalidParams, await ErrorCode("attention/modularityAll", new { analysisId = "nope" }));
    }

    [TestMethod]
    public async Task ViewWithOptions()
    {
        var plain = await Call("attention/view", new { analysisId = _id, layer = 0, head = 0 });
        var matrix = Floats(await Call("attention/matrix", new { analysisId = _id, layer = 0, head = 0 }));
        CollectionAssert.AreEqual(matrix, Floats(plain));
        var units = plain.GetProperty("units").EnumerateArray().ToList();
        Assert.HasCount(_n, units);
        Assert.AreEqual("[CLS]", units[0].GetProperty("text").GetString());
        Assert.IsTrue(units[0].GetProperty("special").GetBoolean());
        Assert.AreEqual("quick", FoxText[units[2].GetProperty("start").GetInt32()..units[2].GetProperty("end").GetInt32()]);

        var words = await Call("attention/view", new { analysisId = _id, layer = 0, head = 0, hideSpecial = true, wordLevel = true });
        Assert.AreEqual(9, words.GetProperty("rows").GetInt32());
        var wordUnits = words.GetProperty("units").EnumerateArray().ToList();
        Assert.AreEqual("dog.", wordUnits[^1].GetProperty("text").GetString());
        Assert.AreEqual((9, 10), (wordUnits[^1].GetProperty("firstToken").GetInt32(), wordUnits[^1].GetProperty("lastToken").GetInt32()));
        var data = Floats(words);
        for (var r = 0; r < 9; r++) Assert.AreEqual(1.0, data.Skip(r * 9).Take(9).Sum(), 1e-5);

        var pooled = await Call("attention/view", new { analysisId = _id, layer = 2, head = -1, headReduce = "max", maxSize = 4 });
        Assert.IsTrue(pooled.GetProperty("pooled").GetBoolean());
        Assert.AreEqual(3, pooled.GetProperty("poolFactor").GetInt32());
        Assert.AreEqual(16, Floats(pooled).Length);
        Assert.HasCount(_n, pooled.GetProperty("units").EnumerateArray().ToList());

        // A thumbnail asks for no units: the same cells, and no units property at all.
        var bare = await Call("attention/view",
            new { analysisId = _id, layer = 2, head = -1, headReduce = "max", maxSize = 4, includeUnits = false });
        Assert.IsFalse(bare.TryGetProperty("units", out _));
        CollectionAssert.AreEqual(Floats(pooled), Floats(bare));
        Assert.AreEqual(3, bare.GetProperty("poolFactor").GetInt32());
        var explicitUnits = await Call("attention/view", new { analysisId = _id, layer = 0, head = 0, includeUnits = true });
        Assert.HasCount(_n, explicitUnits.GetProperty("units").EnumerateArray().ToList());
    }

    [TestMethod]
    public async Task Rollout()
    {
        var result = await Call("attention/rollout", new { analysisId = _id });
        Assert.AreEqual(5, result.GetProperty("layer").GetInt32());
        Assert.AreEqual(-1, result.GetProperty("head").GetInt32());
        Assert.AreEqual(_n, result.GetProperty("rows").GetInt32());
        var data = Floats(result);
        Assert.HasCount(_n * _n, data);
        for (var r = 0; r < _n; r++) Assert.AreEqual(1.0, data.Skip(r * _n).Take(_n).Sum(), 1e-5);
        var first = await Call("attention/rollout", new { analysisId = _id, layer = 0, wordLevel = true });
        Assert.AreEqual(11, first.GetProperty("rows").GetInt32());
    }

    [TestMethod]
    public async Task Flow()
    {
        var result = await Call("attention/flow", new { analysisId = _id, token = 4 });
        Assert.AreEqual(4, result.GetProperty("token").GetInt32());
        Assert.AreEqual(5, result.GetProperty("layer").GetInt32());
        var flow = result.GetProperty("flow").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.HasCount(_n, flow);
        Assert.AreEqual(1.0, flow.Sum(), 1e-9);
        var raw = result.GetProperty("raw").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.HasCount(_n, raw);
        Assert.IsTrue(result.GetProperty("complete").GetBoolean());
        var upper = result.GetProperty("upperBound").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.HasCount(_n, upper);
        for (var j = 0; j < _n; j++) Assert.IsLessThanOrEqualTo(upper[j] + 1e-9, raw[j]);
        var budgeted = await Call("attention/flow", new { analysisId = _id, token = 4, layer = 2, timeBudgetMs = 60_000 });
        Assert.IsTrue(budgeted.GetProperty("complete").GetBoolean());
        Assert.AreEqual(2, budgeted.GetProperty("layer").GetInt32());
    }

    [TestMethod]
    public void AnIncompleteFlowSaysSoAndSendsNoNumberItDidNotCompute()
    {
        var partial = new AttentionViz.Backend.Analysis.FlowResult(1, 5, null, [0.5, double.NaN, 0.25], [0.9, 0.6, 0.3], false);
        // The server's own options: null properties are left out, null array elements stay.
        var json = JsonSerializer.SerializeToElement(AnalysisTarget.ToDto(partial, 12.3456), BackendServer.CreateFormatter().JsonSerializerOptions);
        Assert.IsFalse(json.GetProperty("complete").GetBoolean());
        Assert.IsFalse(json.TryGetProperty("flow", out _), "no normalised flow unless complete");
        var raw = json.GetProperty("raw").EnumerateArray().ToArray();
        Assert.AreEqual(0.5, raw[0].GetDouble());
        Assert.AreEqual(JsonValueKind.Null, raw[1].ValueKind);
        Assert.AreEqual(0.6, json.GetProperty("upperBound")[1].GetDouble());
        Assert.AreEqual(12.35, json.GetProperty("elapsedMs").GetDouble());
    }

    [TestMethod]
    public async Task Histograms()
    {
        var weights = await Call("attention/histogram", new { analysisId = _id, bins = 10 });
        var counts = weights.GetProperty("counts").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.HasCount(10, counts);
        Assert.HasCount(11, weights.GetProperty("edges").EnumerateArray().ToList());
        Assert.AreEqual(72L * _n * _n, counts.Sum());
        Assert.AreEqual(counts.Sum(), weights.GetProperty("total").GetInt64());

        var head = await Call("attention/histogram", new { analysisId = _id, layer = 3, head = 2, excludeSpecial = true });
        Assert.AreEqual((long)(_n - 2) * (_n - 2), head.GetProperty("total").GetInt64());
        Assert.HasCount(50, head.GetProperty("counts").EnumerateArray().ToList());

        var metric = await Call("attention/histogram", new { analysisId = _id, metric = "entropy", bins = 8 });
        Assert.AreEqual("entropy", metric.GetProperty("metric").GetString());
        Assert.AreEqual(72L, metric.GetProperty("counts").EnumerateArray().Sum(e => e.GetInt64()));
        var layerMetric = await Call("attention/histogram", new { analysisId = _id, metric = "previousToken", layer = 0 });
        Assert.AreEqual(12L, layerMetric.GetProperty("total").GetInt64());
    }

    [TestMethod]
    public async Task BadParamsAreInvalidParams()
    {
        const int invalid = (int)JsonRpcErrorCode.InvalidParams;
        Assert.AreEqual(invalid, await ErrorCode("attention/metrics", new { analysisId = "nope" }));
        Assert.AreEqual(invalid, await ErrorCode("attention/metrics", new { }));
        Assert.AreEqual(invalid, await ErrorCode("attention/modularity", new { analysisId = _id, layer = 6, head = 0 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/modularity", new { analysisId = _id, layer = 0, head = -2 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/view", new { analysisId = _id, layer = 0, head = 12 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/view", new { analysisId = _id, layer = 0, head = 0, maxSize = 0 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/view", new { analysisId = _id, layer = 0, head = -1, headReduce = "median" }));
        Assert.AreEqual(invalid, await ErrorCode("attention/rollout", new { analysisId = _id, layer = 6 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/flow", new { analysisId = _id, token = 0, timeBudgetMs = 0 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/flow", new { analysisId = _id, token = 0, timeBudgetMs = 600_001 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/rollout", new { analysisId = "nope" }));
        Assert.AreEqual(invalid, await ErrorCode("attention/flow", new { analysisId = _id, token = _n }));
        Assert.AreEqual(invalid, await ErrorCode("attention/flow", new { analysisId = _id, token = -1 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/flow", new { analysisId = _id, token = 0, layer = -2 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/histogram", new { analysisId = _id, bins = 0 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/histogram", new { analysisId = _id, bins = 1001 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/histogram", new { analysisId = _id, metric = "beauty" }));
        Assert.AreEqual(invalid, await ErrorCode("attention/histogram", new { analysisId = _id, layer = -1 }));
        Assert.AreEqual(invalid, await ErrorCode("attention/histogram", new { analysisId = _id, head = 12 }));
        // The server is still fine.
        Assert.AreEqual(6, (await Call("attention/metrics", new { analysisId = _id })).GetProperty("layers").GetInt32());
    }
}
