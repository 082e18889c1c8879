using System.Text.Json.Nodes;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Tests.Support;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// An analysis that starts from a recent one's prefix equals a fresh analysis of the same ids: every head's rows
/// (the prefix's and the suffix's), the max- and mean-pooled overviews, the head metrics and the hidden states, within
/// 1e-5 — appended tokens, an edit near the end, chains of reuse, a pooling factor that grows, a sliding window. No
/// reuse across models, for an edit at the start, or for encoders; a wrong rope offset for the suffix is caught.
/// </summary>
[TestClass]
public sealed class PrefixReuseTests
{
    // float32 reordering, not drift: MKL blocks a GEMM by its row count, so a suffix-only forward sums in another order
    // than the full one. 1e-6 held on AVX2/AVX-512 EPYCs; an AVX-512/AMX Xeon gave 3.8e-6 (hidden states, 1,900 tokens).
    // A wrong rope offset for the suffix differs by more than 1e-3 (the test below), far above this.
    private const double Tolerance = 1e-5;
    private static ModelThread _thread = null!;
    private static ModelRegistry _registry = null!;
    private static string _windowed = null!;

    [ClassInitialize]
    public static void Start(TestContext context)
    {
        _thread = new ModelThread();
        _registry = new ModelRegistry(_thread);
        // llama-tiny's weights as a Mistral with a 16-token sliding window: the same weights, another forward.
        _windowed = Directory.CreateTempSubdirectory("av-prefix-window-").FullName;
        File.Copy(Path.Combine(Fixtures.Folder("llama-tiny"), "model.safetensors"), Path.Combine(_windowed, "model.safetensors"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Folder("llama-tiny"), "config.json")))!.AsObject();
        config["model_type"] = "mistral";
        config["sliding_window"] = 16;
        File.WriteAllText(Path.Combine(_windowed, "config.json"), config.ToJsonString());
    }

    [ClassCleanup]
    public static void Stop()
    {
        _registry.Dispose();
        _thread.Dispose();
        Directory.Delete(_windowed, true);
    }

    /// <summary>Recomputes at any size (keepProbabilitiesBytes 0), with its own cache: reuses only its own analyses.</summary>
    private static AttentionService NewService() => new(_registry, new AnalysisCache(1L << 30), _thread) { KeepProbabilitiesBytes = 0 };

    private static Task<StoredAnalysis> Analyze(AttentionService service, string model, long[] ids) =>
        service.AnalyzeIdsAsync(ids, model, CancellationToken.None);

    private static Task<StoredAnalysis> Fresh(string model, long[] ids) => Analyze(NewService(), model, ids);

    private static long[] RandomIds(int count, int vocabulary, int seed)
    {
        var random = new Random(seed);
        return [1, .. Enumerable.Range(0, count - 1).Select(_ => (long)random.Next(3, vocabulary))];
    }

    private sealed record Differences(double Rows, double Max, double Mean, double Metrics, double Hidden)
    {
        public double Worst => new[] { Rows, Max, Mean, Metrics, Hidden }.Max();
        public override string ToString() => $"rows {Rows:E2}, max-pooled {Max:E2}, mean-pooled {Mean:E2}, metrics {Metrics:E2}, hidden {Hidden:E2}";
    }

    /// <summary>The largest differences between two analyses of the same ids, over every head.</summary>
    private static Differences Compare(StoredAnalysis fresh, StoredAnalysis reused, int everyNthRow = 1)
    {
        var n = fresh.Tokens.Count;
        Assert.AreEqual(n, reused.Tokens.Count);
        var (a, b) = ((RecomputedAttention)fresh.Attention, (RecomputedAttention)reused.Attention);
        var rows = Enumerable.Range(0, n).Where(i => i % everyNthRow == 0 || Math.Abs(i - reused.ReusedTokens) <= 2 || i >= n - 3).ToArray();
        double worstRow = 0, worstMax = 0, worstMean = 0;
        var (x, y) = (new float[n], new float[n]);
        Assert.AreEqual(a.Overviews.Factor, b.Overviews.Factor);
        var side = a.Overviews.Side;
        for (var l = 0; l < a.Layers; l++)
            for (var h = 0; h < a.Heads; h++)
            {
                foreach (var i in rows)
                {
                    a.Tile(l, h, i, i + 1, 0, n, x);
                    b.Tile(l, h, i, i + 1, 0, n, y);
                    worstRow = Math.Max(worstRow, Worst(x, y));
                }
                worstMax = Math.Max(worstMax, Worst(a.Overviews.Read(l, h, false, false, 1, 0, side, 0, side),
                    b.Overviews.Read(l, h, false, false, 1, 0, side, 0, side)));
                worstMean = Math.Max(worstMean, Worst(a.Overviews.Read(l, h, false, true, 1, 0, side, 0, side),
                    b.Overviews.Read(l, h, false, true, 1, 0, side, 0, side)));
            }
        double worstMetric = 0;
        foreach (var (m, r) in fresh.Metrics!.Zip(reused.Metrics!))
        {
            Assert.AreEqual((m.Layer, m.Head, m.Sink), (r.Layer, r.Head, r.Sink));
            foreach (var name in HeadMetrics.Names)
                worstMetric = Math.Max(worstMetric, Math.Abs((HeadMetrics.Value(m, name) ?? 0) - (HeadMetrics.Value(r, name) ?? 0)));
        }
        return new Differences(worstRow, worstMax, worstMean, worstMetric, Worst(fresh.LastHiddenState, reused.LastHiddenState));
    }

    private static double Worst(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.AreEqual(a.Length, b.Length);
        double worst = 0;
        for (var i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }

    private static async Task AssertReuseEqualsFresh(string model, long[] first, long[] second, int expectedReuse, int everyNthRow = 1)
    {
        var service = NewService();
        var earlier = await Analyze(service, model, first);
        Assert.AreEqual(0, earlier.ReusedTokens, "nothing to reuse yet");
        var reused = await Analyze(service, model, second);
        Assert.AreEqual(expectedReuse, reused.ReusedTokens);
        var differences = Compare(await Fresh(model, second), reused, everyNthRow);
        Assert.IsLessThanOrEqualTo(Tolerance, differences.Worst, differences.ToString());
        // The earlier analysis is untouched by the one that read its prefix.
        Assert.IsLessThanOrEqualTo(Tolerance, Compare(await Fresh(model, first), earlier, everyNthRow).Worst, "the earlier analysis");
    }

    [TestMethod]
    public async Task AppendedTokensOnLlamaTiny()
    {
        var ids = RandomIds(110, 1000, seed: 1);
        await AssertReuseEqualsFresh(Fixtures.Folder("llama-tiny"), ids[..100], ids, expectedReuse: 64);
    }

    [TestMethod]
    [DataRow("qwen3-tiny")]   // q/k norms before RoPE: the kept keys are normed and rotated
    [DataRow("gemma2-tiny")]  // soft-capped scores, a window of 16 on layer 0, sandwich norms
    [DataRow("gemma3-tiny")]  // local and global rotary tables
    [DataRow("phi3-tiny")]    // partial rotary, fused projections
    public async Task AppendedTokensOnEachDecoderFamily(string fixture)
    {
        var ids = RandomIds(110, 400, seed: 5);
        await AssertReuseEqualsFresh(Fixtures.Folder(fixture), ids[..100], ids, expectedReuse: 64);
    }

    [TestMethod]
    public async Task AppendsShareTheKeptRowsAndABranchCopiesThem()
    {
        var model = Fixtures.Folder("llama-tiny");
        var ids = RandomIds(128, 1000, seed: 8);
        var branchIds = ids[..100].Concat(RandomIds(16, 1000, seed: 9)[1..]).ToArray();
        var service = NewService();
        var first = await Analyze(service, model, ids[..100]);
        var second = await Analyze(service, model, ids[..120]);
        var branch = await Analyze(service, model, branchIds);
        static KeptRows? Rows(StoredAnalysis a) => ((RecomputedAttention)a.Attention).Rows;
        Assert.AreSame(Rows(first), Rows(second), "text typed at the end writes after the earlier rows");
        Assert.AreNotSame(Rows(first), Rows(branch), "the first analysis's storage already holds the second's rows: a copy");
        Assert.AreEqual((64, 64), (second.ReusedTokens, branch.ReusedTokens));
        Assert.AreEqual(120, Rows(first)!.Filled);
        foreach (var (analysis, tokens) in new[] { (first, ids[..100]), (second, ids[..120]), (branch, branchIds) })
            Assert.IsLessThanOrEqualTo(Tolerance, Compare(await Fresh(model, tokens), analysis).Worst, $"{tokens.Length} tokens");
        // The storage outlives the analysis that made it.
        Assert.IsTrue(service.Release(first.Id));
        Assert.IsLessThanOrEqualTo(Tolerance, Compare(await Fresh(model, ids[..120]), second).Worst, "after the first is released");
        var third = await Analyze(service, model, ids);
        Assert.AreSame(Rows(second), Rows(third));
        Assert.IsLessThanOrEqualTo(Tolerance, Compare(await Fresh(model, ids), third).Worst, "a chain of three");
    }

    [TestMethod]
    public async Task AnEditNearTheEndOnLlamaTiny()
    {
        var ids = RandomIds(120, 1000, seed: 2);
        var edited = ids.ToArray();
        edited[100] = edited[100] == 7 ? 8 : 7;
        await AssertReuseEqualsFresh(Fixtures.Folder("llama-tiny"), ids, edited, expectedReuse: 64);
    }

    [TestMethod]
    public async Task ASlidingWindowModel()
    {
        var ids = RandomIds(128, 1000, seed: 3);
        await AssertReuseEqualsFresh(_windowed, ids[..90], ids, expectedReuse: 64);
    }

    [TestMethod]
    public async Task AppendedTokensOnLlamaLongTinyAndAChainOfReuses()
    {
        var model = Fixtures.Folder("llama-long-tiny");
        var ids = Fixtures.Longs(Fixtures.Expected("llama-long-tiny")["s0.input_ids"]);
        Assert.HasCount(2048, ids);
        var service = NewService();
        // 1,000 tokens pool by 4, 2,048 by 8: the second analysis merges the first one's bins 2×2.
        var first = await Analyze(service, model, ids[..1000]);
        var second = await Analyze(service, model, ids[..1900]);
        var third = await Analyze(service, model, ids);
        Assert.AreEqual((4, 8, 8), (first.Attention.Overviews!.Factor, second.Attention.Overviews!.Factor, third.Attention.Overviews!.Factor));
        Assert.AreEqual((0, 960, 1856), (first.ReusedTokens, second.ReusedTokens, third.ReusedTokens));
        foreach (var (analysis, count) in new[] { (second, 1900), (third, 2048) })
        {
            var differences = Compare(await Fresh(model, ids[..count]), analysis, everyNthRow: 7);
            Assert.IsLessThanOrEqualTo(Tolerance, differences.Worst, $"{count} tokens: {differences}");
        }
    }

    [TestMethod]
    public async Task AnEditNearTheEndOnLlamaLongTiny()
    {
        var ids = Fixtures.Longs(Fixtures.Expected("llama-long-tiny")["s0.input_ids"]);
        var edited = ids.ToArray();
        edited[2000] = edited[2000] == 5 ? 6 : 5;
        await AssertReuseEqualsFresh(Fixtures.Folder("llama-long-tiny"), ids, edited, expectedReuse: 1984, everyNthRow: 7);
    }

    [TestMethod]
    public async Task NoReuseWhenTheBudgetCannotKeepTheEarlierAnalysisBesideTheNewOne()
    {
        var model = Fixtures.Folder("llama-long-tiny");
        var ids = Fixtures.Longs(Fixtures.Expected("llama-long-tiny")["s0.input_ids"]);
        var loaded = (await _registry.AcquireAsync(model, CancellationToken.None)).Model;
        var needed = AnalysisMemory.NeededBytes(loaded, ids.Length, keepBytes: 0);
        var earlier = AnalysisMemory.RetainedBytes(loaded, 1900, keepBytes: 0);
        foreach (var (room, expected) in new[] { (earlier / 2, 0), (2 * earlier, 1856) })
        {
            var service = new AttentionService(_registry, new AnalysisCache(needed + room), _thread) { KeepProbabilitiesBytes = 0 };
            await Analyze(service, model, ids[..1900]);
            var second = await Analyze(service, model, ids);
            Assert.AreEqual(expected, second.ReusedTokens, $"room for {room} bytes besides the new analysis");
            Assert.IsLessThanOrEqualTo(Tolerance, Compare(await Fresh(model, ids), second, everyNthRow: 31).Worst);
        }
    }

    [TestMethod]
    public async Task SharedRowsNeedNoRoomInTheBudget()
    {
        // Room for the new analysis and for the earlier one less half of the rows they would share: an extension (text
        // typed at the end) keeps the earlier analysis and reuses it; an edit near the end would copy, so it cannot.
        var model = Fixtures.Folder("llama-long-tiny");
        var ids = Fixtures.Longs(Fixtures.Expected("llama-long-tiny")["s0.input_ids"]);
        var edited = ids.ToArray();
        edited[1880] = edited[1880] == 5 ? 6 : 5;                                   // inside the earlier 1,900 tokens
        var loaded = (await _registry.AcquireAsync(model, CancellationToken.None)).Model;
        var needed = AnalysisMemory.NeededBytes(loaded, ids.Length, keepBytes: 0);
        foreach (var (second, expected) in new[] { (ids, 1856), (edited, 0) })
        {
            var probe = NewService();
            var earlierAttention = (RecomputedAttention)(await Analyze(probe, model, ids[..1900])).Attention;
            var shared = new PrefixStart(earlierAttention, [], 1856, Extends: true).SharedBytes(ids.Length);
            Assert.IsGreaterThan(0L, shared);
            var room = earlierAttention.SizeInBytes - shared / 2;
            var service = new AttentionService(_registry, new AnalysisCache(needed + room), _thread) { KeepProbabilitiesBytes = 0 };
            await Analyze(service, model, ids[..1900]);
            var analysis = await Analyze(service, model, second);
            Assert.AreEqual(expected, analysis.ReusedTokens, second == ids ? "an extension" : "an edit");
            Assert.IsLessThanOrEqualTo(Tolerance, Compare(await Fresh(model, second), analysis, everyNthRow: 31).Worst);
        }
    }

    [TestMethod]
    public async Task NoReuseAfterAnEditAtTheStartOrWithAnotherModel()
    {
        var ids = RandomIds(110, 1000, seed: 4);
        var service = NewService();
        await Analyze(service, Fixtures.Folder("llama-tiny"), ids);
        var edited = ids.ToArray();
        edited[1] = edited[1] == 7 ? 8 : 7;
        var atStart = await Analyze(service, Fixtures.Folder("llama-tiny"), edited);
        Assert.AreEqual(0, atStart.ReusedTokens, "an edit at the start leaves no prefix");
        Assert.IsLessThanOrEqualTo(Tolerance, Compare(await Fresh(Fixtures.Folder("llama-tiny"), edited), atStart).Worst);
        // The same weights and ids, but a sliding window: another forward, so nothing is reused.
        var windowed = await Analyze(service, _windowed, ids);
        Assert.AreEqual(0, windowed.ReusedTokens, "another model's analysis is never reused");
        Assert.IsLessThanOrEqualTo(Tolerance, Compare(await Fresh(_windowed, ids), windowed).Worst);
    }

    [TestMethod]
    public async Task EncodersRecompute()
    {
        var service = NewService();
        var ids = RandomIds(100, 1000, seed: 5);
        ids[0] = 2;
        await Analyze(service, Fixtures.Folder("bert-tiny"), ids[..90]);
        var second = await Analyze(service, Fixtures.Folder("bert-tiny"), ids);
        Assert.AreEqual(0, second.ReusedTokens);
    }

    [TestMethod]
    public async Task AWrongRopeOffsetForTheSuffixIsCaught()
    {
        var model = Fixtures.Folder("llama-tiny");
        var ids = RandomIds(110, 1000, seed: 6);
        var loaded = (LlamaModel)(await _registry.AcquireAsync(model, CancellationToken.None)).Model;
        var fresh = await Fresh(model, ids);
        var service = NewService();
        await Analyze(service, model, ids[..100]);
        loaded.PrefixPositionError = 1;
        StoredAnalysis wrong;
        try
        {
            wrong = await Analyze(service, model, ids);
        }
        finally
        {
            loaded.PrefixPositionError = 0;
        }
        Assert.AreEqual(64, wrong.ReusedTokens);
        var differences = Compare(fresh, wrong);
        Assert.IsGreaterThan(1e-3, differences.Rows, differences.ToString());
        Assert.IsGreaterThan(1e-3, differences.Hidden, differences.ToString());
    }

    [TestMethod]
    public void TheBoundaryIsACommonPrefixAtACheckpointLeavingANewToken()
    {
        static Token[] Tokens(IEnumerable<int> ids, int special = -1) =>
            [.. ids.Select((id, i) => new Token(id, $"t{id}", 0, 0, i <= special))];
        var earlier = Tokens(Enumerable.Range(10, 300));
        Assert.AreEqual(256, PrefixReuse.Boundary(earlier, Tokens(Enumerable.Range(10, 300).Append(5)), earlierFactor: 2));
        Assert.AreEqual(256, PrefixReuse.Boundary(earlier, earlier, earlierFactor: 2), "the same ids still run a last block");
        var diverging = Tokens(Enumerable.Range(10, 200).Concat(Enumerable.Repeat(5, 100)));
        Assert.AreEqual(192, PrefixReuse.Boundary(earlier, diverging, earlierFactor: 2));
        // 20,000 tokens pool by 128: only whole bins of rows resume.
        var long1 = Tokens(Enumerable.Range(10, 20_000));
        var long2 = Tokens(Enumerable.Range(10, 200).Concat(Enumerable.Repeat(5, 19_900)));
        Assert.AreEqual(128, PooledOverviews.FactorFor(20_000));
        Assert.AreEqual(128, PrefixReuse.Boundary(long1, long2, earlierFactor: 128), "whole pooled bins only");
        Assert.AreEqual(0, PrefixReuse.Boundary(earlier, Tokens(Enumerable.Range(10, 63).Append(5)), earlierFactor: 1));
        // A new input that pools finer than the earlier one (300 tokens pool by 2; 100 by 1) cannot split its bins.
        Assert.AreEqual(0, PrefixReuse.Boundary(earlier, Tokens(Enumerable.Range(10, 100)), earlierFactor: 2));
        Assert.AreEqual(64, PrefixReuse.Boundary(earlier, Tokens(Enumerable.Range(10, 100)), earlierFactor: 1));
        Assert.AreEqual(0, PrefixReuse.Boundary(Tokens(Enumerable.Range(10, 300), special: 280),
            Tokens(Enumerable.Range(10, 300).Append(5), special: 280), earlierFactor: 1), "a prefix of special tokens only");
    }

    [TestMethod]
    public async Task TheRpcReportsReusedTokens()
    {
        // llama-long-tiny with a word-level vocabulary: 1,700 words recompute by default (L·H·n² floats > 64 MB).
        var folder = Directory.CreateTempSubdirectory("av-prefix-rpc-").FullName;
        try
        {
            foreach (var file in new[] { "config.json", "model.safetensors" })
                File.Copy(Path.Combine(Fixtures.Folder("llama-long-tiny"), file), Path.Combine(folder, file));
            File.WriteAllLines(Path.Combine(folder, "vocab.txt"),
                ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", .. Enumerable.Range(0, 500).Select(i => $"w{i}")]);
            var random = new Random(7);
            var text = string.Join(' ', Enumerable.Range(0, 1700).Select(_ => $"w{random.Next(500)}"));
            using var backend = new InMemoryBackend();
            var first = await backend.Call("attention/analyze", new { text, modelId = folder });
            Assert.AreEqual(0, first.GetProperty("reusedTokens").GetInt32());
            var second = await backend.Call("attention/analyze", new { text = text + " w1 w2 w3 w4 w5", modelId = folder });
            // [CLS] and the 1,700 words are shared ([SEP] moved): 1,701 tokens, rounded down to 1,664.
            Assert.AreEqual(1664, second.GetProperty("reusedTokens").GetInt32());
            Assert.AreEqual(1707, second.GetProperty("tokens").GetArrayLength());
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }
}
