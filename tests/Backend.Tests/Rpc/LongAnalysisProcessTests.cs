using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>
/// Long analyses over the real backend process: a cancelled one frees what it had built (RSS after the next analysis
/// within 10% of RSS after an equal uncancelled one), it stops within about a block, and the server stays usable after
/// a cancellation and after a budget refusal (-32004). Rollout of one row reports progress and can be cancelled.
/// </summary>
[TestClass]
public sealed class LongAnalysisProcessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);
    private const int Layers = 12;
    private const int Tokens = 2048;
    private static string _model = null!;

    public TestContext TestContext { get; set; } = null!;

    /// <summary>
    /// A Llama with random weights (12 layers × 8 heads of 32, no GQA, hidden 256) and the real Llama-2 tokenizer: at
    /// 2,048 tokens its forward takes seconds and what it keeps (queries, keys, normalisers, overviews) is a few
    /// hundred MB, so a leak of a cancelled analysis shows in RSS.
    /// </summary>
    [ClassInitialize]
    public static void BuildModel(TestContext context)
    {
        _model = Directory.CreateTempSubdirectory("avz-long-llama").FullName;
        var tokenizer = Path.Combine(Fixtures.RepoRoot, "tests", "reference", "tokenizer", "node_modules", "@lenml", "tokenizer-llama2", "models");
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(tokenizer, file), Path.Combine(_model, file));
        const int hidden = 256, inner = 512, vocabulary = 32_000;
        File.WriteAllText(Path.Combine(_model, "config.json"), new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama", ["vocab_size"] = vocabulary,
            ["hidden_size"] = hidden, ["intermediate_size"] = inner, ["num_hidden_layers"] = Layers, ["num_attention_heads"] = 8,
            ["num_key_value_heads"] = 8, ["hidden_act"] = "silu", ["max_position_embeddings"] = 8192, ["rope_theta"] = 10_000.0,
            ["rms_norm_eps"] = 1e-5, ["tie_word_embeddings"] = true, ["torch_dtype"] = "float32",
        }.ToJsonString());
        var random = new Random(10);
        var tensors = new List<(string, string, long[], ReadOnlyMemory<byte>)>();
        void Add(string name, long[] shape, Func<float> value)
        {
            var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (var i = 0; i < data.Length; i++) data[i] = value();
            tensors.Add((name, "F32", shape, MemoryMarshal.AsBytes(data.AsSpan()).ToArray()));
        }
        float Normal() => (float)(0.02 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        Add("model.embed_tokens.weight", [vocabulary, hidden], Normal);
        for (var l = 0; l < Layers; l++)
        {
            var p = $"model.layers.{l}.";
            Add(p + "input_layernorm.weight", [hidden], () => 1);
            foreach (var projection in new[] { "q_proj", "k_proj", "v_proj", "o_proj" })
                Add($"{p}self_attn.{projection}.weight", [hidden, hidden], Normal);
            Add(p + "post_attention_layernorm.weight", [hidden], () => 1);
            Add(p + "mlp.gate_proj.weight", [inner, hidden], Normal);
            Add(p + "mlp.up_proj.weight", [inner, hidden], Normal);
            Add(p + "mlp.down_proj.weight", [hidden, inner], Normal);
        }
        Add("model.norm.weight", [hidden], () => 1);
        SafetensorsWriter.Write(Path.Combine(_model, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    [ClassCleanup]
    public static void RemoveModel() => Directory.Delete(_model, recursive: true);

    private static readonly string LongText = string.Join(' ', Enumerable.Range(0, 9000).Select(i =>
        new[] { "attention", "reads", "every", "token", "before", "it", "writes", "the", "next", "one;", "long", "prompts", "cost", "memory" }
            [(i * 7 + i / 13) % 14]));

    /// <summary>Measurements go to the test log and, with ATTENTIONVIZ_TIMINGS set, to that file.</summary>
    private void Report(string line)
    {
        TestContext.WriteLine(line);
        if (Environment.GetEnvironmentVariable("ATTENTIONVIZ_TIMINGS") is { Length: > 0 } file) File.AppendAllLines(file, [line]);
    }

    private static long RssBytes(Process process)
    {
        var line = File.ReadAllLines($"/proc/{process.Id}/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    /// <summary>Sends analyze with a work-done token and reads until its answer; the times of the layer reports.</summary>
    private static async Task<(JsonObject Answer, List<double> ReportMs)> Analyze(RawRpcClient client, string token, int tokens,
        Func<int, double, bool>? cancelAt = null)
    {
        var clock = Stopwatch.StartNew();
        var id = client.Send("attention/analyze", new { text = LongText, modelId = _model, maxTokens = tokens, workDoneToken = token });
        var reports = new List<double>();
        var cancelled = false;
        while (true)
        {
            var message = await client.ReadAsync(Timeout);
            if (message["method"]?.GetValue<string>() == "$/progress" && message["params"]!["token"]!.GetValue<string>() == token
                && message["params"]!["value"]!["kind"]!.GetValue<string>() == "report")
            {
                reports.Add(clock.Elapsed.TotalMilliseconds);
                if (!cancelled && cancelAt?.Invoke(reports.Count, clock.Elapsed.TotalMilliseconds) == true)
                {
                    client.Send("$/cancelRequest", new { id }, notification: true);
                    cancelled = true;
                    reports.Add(-clock.Elapsed.TotalMilliseconds);                     // when the cancellation went out
                }
            }
            if (message["id"]?.GetValue<int>() == id)
            {
                reports.Add(clock.Elapsed.TotalMilliseconds);                         // when the answer came
                return (message, reports);
            }
        }
    }

    private static async Task AnalyzeAndRelease(RawRpcClient client, string token)
    {
        var (answer, _) = await Analyze(client, token, Tokens);
        var result = answer["result"] ?? throw new AssertFailedException(answer.ToJsonString() + client.Stderr);
        Assert.AreEqual(Tokens, result["tokens"]!.AsArray().Count);
        var released = await client.CallAsync("attention/release", new { analysisId = result["analysisId"]!.GetValue<string>() });
        Assert.IsTrue(released["result"]!["released"]!.GetValue<bool>());
    }

    [TestMethod]
    public async Task ACancelledLongAnalysisStopsWithinABlockAndFreesItsMemory()
    {
        await using var client = RawRpcClient.Start("serve");
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);

        // Steady state: equal analyses, each released, until the process's memory has settled (pools filled, pages
        // kept by the allocator); the reference is RSS after the last of them.
        var (first, firstReports) = await Analyze(client, "warm", Tokens);
        Assert.IsNotNull(first["result"], first.ToJsonString() + client.Stderr);
        Assert.HasCount(Layers + 1, firstReports, "a report per layer, then the answer");
        await client.CallAsync("attention/release", new { analysisId = first["result"]!["analysisId"]!.GetValue<string>() });
        await AnalyzeAndRelease(client, "warm-2");
        await AnalyzeAndRelease(client, "warm-3");
        var reference = RssBytes(client.Process);

        // Cancelled once half of the layers are done: the answer is -32800, within about one query block.
        var (cancelled, times) = await Analyze(client, "doomed", Tokens, (layersDone, _) => layersDone == Layers / 2);
        Assert.AreEqual(-32800, cancelled["error"]?["code"]?.GetValue<int>(), cancelled.ToJsonString());
        var sentAt = -times.Single(t => t < 0);
        var latency = times[^1] - sentAt;
        var layerMs = (firstReports[Layers - 1] - firstReports[0]) / (Layers - 1);
        // A layer is many blocks (BlockedAttention's query blocks): stopping within one is well within a layer. Loose,
        // for a shared, noisy machine.
        Assert.IsLessThan(Math.Max(1000, layerMs), latency, $"cancellation took {latency:F0} ms; a layer takes {layerMs:F0} ms");

        // The next equal analysis: what the cancelled one built must be gone.
        await AnalyzeAndRelease(client, "after");
        var after = RssBytes(client.Process);
        Report($"a layer of the uncancelled analysis: {layerMs:F0} ms; cancellation answered after {latency:F0} ms; " +
            $"RSS after equal analyses {reference >> 20} MB, after a cancelled one and the next {after >> 20} MB");
        Assert.IsLessThanOrEqualTo(reference * 1.10, (double)after,
            $"RSS {after >> 20} MB after a cancelled analysis and the next, against {reference >> 20} MB without cancellation");

        // Still usable.
        var ok = await client.CallAsync("attention/analyze", new { text = "still here", modelId = _model }, Timeout);
        Assert.IsNotNull(ok["result"], ok.ToJsonString());
    }

    /// <summary>
    /// #13 point 16: a backend that analysed a long input gives its memory back when the analysis is released (it
    /// kept its peak, 8.2 GB after an 860-token Qwen analysis, until restarted). Reference: the model loaded and a
    /// short analysis done and released; then a long analysis with what the panel asks of it (the Heads tab's metrics,
    /// a pooled heatmap of every layer), released. Both ways an analysis is kept: recomputable state (2,048 tokens),
    /// and stored probabilities (1,024 tokens, 400 MB of them, with ATTENTIONVIZ_KEEP_PROBABILITIES_MB raised).
    /// </summary>
    [TestMethod]
    [DataRow(Tokens, null, DisplayName = "recomputable, 2048 tokens")]
    [DataRow(1024, "1024", DisplayName = "stored probabilities, 1024 tokens")]
    public async Task ReleasingALongAnalysisGivesItsMemoryBack(int tokens, string? keepMb)
    {
        var environment = new Dictionary<string, string>();
        if (keepMb is not null) environment["ATTENTIONVIZ_KEEP_PROBABILITIES_MB"] = keepMb;
        await using var client = RawRpcClient.StartWith(environment, "serve");
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
        var small = await client.CallAsync("attention/analyze", new { text = "a short prompt", modelId = _model }, Timeout);
        var smallId = small["result"]?["analysisId"]?.GetValue<string>() ?? throw new AssertFailedException(small.ToJsonString());
        await client.CallAsync("attention/metrics", new { analysisId = smallId }, Timeout);
        await client.CallAsync("attention/release", new { analysisId = smallId });
        var before = RssBytes(client.Process);

        var (answer, _) = await Analyze(client, "long", tokens);
        var id = answer["result"]?["analysisId"]?.GetValue<string>() ?? throw new AssertFailedException(answer.ToJsonString() + client.Stderr);
        Assert.IsNotNull((await client.CallAsync("attention/metrics", new { analysisId = id }, Timeout))["result"]);
        for (var layer = 0; layer < Layers; layer++)
            Assert.IsNotNull((await client.CallAsync("attention/view", new { analysisId = id, layer, head = 0, maxSize = 256 }, Timeout))["result"]);
        var held = RssBytes(client.Process);
        var peak = PeakRssBytes(client.Process);
        Assert.IsTrue((await client.CallAsync("attention/release", new { analysisId = id }))["result"]!["released"]!.GetValue<bool>());
        await Returned(client, 1);
        var after = RssBytes(client.Process);
        var kind = keepMb is null ? "recomputable" : "stored";
        Report($"RSS with the model loaded {before >> 20} MB; peak during a {tokens}-token analysis ({kind}) " +
            $"{peak >> 20} MB, {held >> 20} MB while it is held; after its release {after >> 20} MB");
        // Sensitivity, not the property: what the analysis holds must stand well above the release check's slack
        // (before × 5 % + 32 MB, ~46 MB here), or a release that returned nothing would pass. Held: ~208 MB above the
        // reference at 2,048 tokens (recomputable), ~420 MB at 1,024 (stored).
        Assert.IsGreaterThan(before + (150L << 20), held, "the analysis holds enough for a difference to show");
        Assert.IsLessThanOrEqualTo(before * 1.05 + (32 << 20), (double)after,
            $"RSS after the release {after >> 20} MB against {before >> 20} MB before the analysis (peak {peak >> 20} MB)");
    }

    /// <summary>Waits (up to 10 s) for the backend's <paramref name="count"/>th report that it returned a released analysis's memory.</summary>
    private static async Task Returned(RawRpcClient client, int count)
    {
        const string line = "returned memory after a released analysis";
        for (var waited = Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(50))
            if (client.Stderr.Split(line).Length - 1 >= count) return;
        throw new AssertFailedException($"the backend did not report returning the memory ({count}):\n{client.Stderr}");
    }

    private static long PeakRssBytes(Process process)
    {
        var line = File.ReadAllLines($"/proc/{process.Id}/status").Single(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    [TestMethod]
    public async Task ModularityPastItsLimitIsRefusedInWords()
    {
        await using var client = RawRpcClient.Start("serve");
        await client.CallAsync("initialize", new { });
        const int n = Modularity.MaxTokens + 64;
        var analysis = await client.CallAsync("attention/analyze", new { text = LongText, modelId = _model, maxTokens = n }, Timeout);
        var id = analysis["result"]!["analysisId"]!.GetValue<string>();
        foreach (var (method, args) in new (string, object)[]
                 {
                     ("attention/modularity", new { analysisId = id, layer = 0, head = 0 }), ("attention/modularityAll", new { analysisId = id }),
                 })
        {
            var refused = await client.CallAsync(method, args, Timeout);
            Assert.AreEqual(-32602, refused["error"]?["code"]?.GetValue<int>(), refused.ToJsonString());
            StringAssert.Contains(refused["error"]!["message"]!.GetValue<string>(),
                $"Modularity is limited to {Modularity.MaxTokens} tokens (this analysis has {n}");
        }
        var metrics = await client.CallAsync("attention/metrics", new { analysisId = id }, Timeout);
        Assert.IsNotNull(metrics["result"], "the same analysis still answers");
    }

    [TestMethod]
    public async Task ABudgetRefusalLeavesTheServerUsable()
    {
        await using var client = RawRpcClient.StartWith(new Dictionary<string, string> { ["ATTENTIONVIZ_CACHE_MB"] = "200" }, "serve");
        await client.CallAsync("initialize", new { });
        var refused = await client.CallAsync("attention/analyze", new { text = LongText, modelId = _model, maxTokens = 8192 }, Timeout);
        Assert.AreEqual(-32004, refused["error"]?["code"]?.GetValue<int>(), refused.ToJsonString());
        var message = refused["error"]!["message"]!.GetValue<string>();
        StringAssert.Contains(message, "the budget is 200 MB");
        var most = int.Parse(System.Text.RegularExpressions.Regex.Match(message, @"at most (\d+) tokens").Groups[1].Value);
        var ok = await client.CallAsync("attention/analyze", new { text = LongText, modelId = _model, maxTokens = Math.Min(most, 512) }, Timeout);
        Assert.IsNotNull(ok["result"], ok.ToJsonString() + client.Stderr);
        Assert.IsNotNull((await client.CallAsync("models/list", new { }))["result"]);
    }

    [TestMethod]
    public async Task RolloutOfOneRowReportsProgressAndCancels()
    {
        await using var client = RawRpcClient.Start("serve");
        await client.CallAsync("initialize", new { });
        // Long enough that the row takes seconds: the cancellation below arrives while it runs.
        const int n = Tokens;
        var analysis = await client.CallAsync("attention/analyze", new { text = LongText, modelId = _model, maxTokens = n }, Timeout);
        var id = analysis["result"]!["analysisId"]!.GetValue<string>();

        var call = client.Send("attention/rolloutRow", new { analysisId = id, token = n - 1, workDoneToken = "rollout" });
        var kinds = new List<string>();
        JsonObject answer;
        while (true)
        {
            var message = await client.ReadAsync(Timeout);
            if (message["method"]?.GetValue<string>() == "$/progress") kinds.Add(message["params"]!["value"]!["kind"]!.GetValue<string>());
            if (message["id"]?.GetValue<int>() == call) { answer = message; break; }
        }
        var result = answer["result"] ?? throw new AssertFailedException(answer.ToJsonString());
        Report($"rolloutRow of token {n - 1} at {n} tokens ({Layers} layers, recomputed): {result["elapsedMs"]} ms");
        Assert.IsTrue(result["complete"]!.GetValue<bool>());
        Assert.AreEqual(0, result["reachedLayer"]!.GetValue<int>());
        var scores = result["scores"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        Assert.HasCount(n, scores);
        Assert.AreEqual(1.0, scores.Sum(), 1e-9);
        // end may arrive after the answer: begin, a report per layer, then the answer.
        CollectionAssert.AreEqual(new[] { "begin" }.Concat(Enumerable.Repeat("report", Layers)).ToArray(), kinds.Take(Layers + 1).ToArray());

        // A tiny budget: an honest partial answer, no scores.
        var partial = (await client.CallAsync("attention/rolloutRow", new { analysisId = id, token = n - 1, timeBudgetMs = 1 }))["result"]!;
        Assert.IsFalse(partial["complete"]!.GetValue<bool>());
        Assert.IsNull(partial["scores"]);
        Assert.IsGreaterThan(0, partial["reachedLayer"]!.GetValue<int>());

        // Cancelled: -32800, and the server answers the next request.
        var doomed = client.Send("attention/rolloutRow", new { analysisId = id, token = n - 1 });
        client.Send("$/cancelRequest", new { id = doomed }, notification: true);
        var cancelled = await client.ResponseAsync(doomed, Timeout);
        Assert.AreEqual(-32800, cancelled["error"]?["code"]?.GetValue<int>(), cancelled.ToJsonString());
        var again = (await client.CallAsync("attention/rolloutRow", new { analysisId = id, token = 3, layer = 0 }, Timeout))["result"]!;
        Assert.IsTrue(again["complete"]!.GetValue<bool>());
    }
}
