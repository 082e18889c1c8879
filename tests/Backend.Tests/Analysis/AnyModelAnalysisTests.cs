using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Rendering;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// Every analysis behind the panel's tabs on models loaded from disk, not only the embedded encoder: the decoder
/// fixtures (nanoGPT's GPT-2, llama2.c's Llama) and bert-tiny, with their input ids from ../shared/fixtures. Values
/// are checked against the fixture's own attention (computed by the independent implementation), not against
/// this project's output.
/// </summary>
[TestClass]
public sealed class AnyModelAnalysisTests
{
    private static BackendHost _host = null!;

    [ClassInitialize]
    public static void Start(TestContext context) => _host = new BackendHost();

    [ClassCleanup]
    public static void Stop() => _host.Dispose();

    [TestMethod]
    [DataRow("gpt2-tiny", true)]
    [DataRow("llama-tiny", true)]
    [DataRow("qwen3-tiny", true)]
    [DataRow("gemma2-tiny", true)]
    [DataRow("gemma3-tiny", true)]
    [DataRow("phi3-tiny", true)]
    [DataRow("bert-tiny", false)]
    public async Task EveryViewWorksAndFollowsTheFixturesAttention(string fixture, bool causal)
    {
        var expected = Fixtures.Expected(fixture);
        var ids = Fixtures.Longs(expected["s0.input_ids"]);
        var attentions = expected["s0.attentions"];                                    // (L, H, n, n) from the reference
        var (layers, heads, n) = ((int)attentions.shape[0], (int)attentions.shape[1], ids.Length);
        var analysis = await _host.Service.AnalyzeIdsAsync(ids, Fixtures.Folder(fixture), CancellationToken.None);
        var analytics = new AnalysisQueries(_host.Service);
        Assert.AreEqual((layers, heads, causal), (analysis.Model.Layers, analysis.Model.Heads, analysis.Model.Causal));
        float Reference(int l, int h, int q, int k) => attentions[l, h, q, k].item<float>();

        // Heads tab: one row per layer × head; previous-token score as defined in anchors.md, from the reference.
        var metrics = await analytics.MetricsAsync(analysis.Id);
        Assert.HasCount(layers * heads, metrics.Metrics);
        Assert.AreEqual(causal, metrics.Causal);
        foreach (var m in metrics.Metrics)
        {
            var previous = Enumerable.Range(1, n - 1).Average(i => (double)Reference(m.Layer, m.Head, i, i - 1));
            Assert.AreEqual(previous, m.PreviousToken, 1e-4, $"previous-token score L{m.Layer} H{m.Head}");
            Assert.IsTrue(m.NormalizedEntropy is >= 0 and <= 1 + 1e-9, $"normalised entropy L{m.Layer} H{m.Head}: {m.NormalizedEntropy}");
        }
        var modularity = await analytics.ModularityAllAsync(analysis.Id, includeSelfLoops: false);
        Assert.HasCount(layers * heads, modularity);
        Assert.IsTrue(modularity.All(m => m.Q is >= -0.5 and <= 1 && m.CommunityCount >= 1));

        // Heatmap/Graph/Lines: attention/view of one head with the view options (no special tokens in these ids).
        var view = analytics.View(analysis.Id, new ViewRequest(layers - 1, heads - 1, new ViewOptions(HideSpecial: true, WordLevel: false)));
        Assert.AreEqual(n, view.Rows);
        for (var q = 0; q < n; q++)
            for (var k = 0; k < n; k++)
                Assert.AreEqual(Reference(layers - 1, heads - 1, q, k), view.Data[q * n + k], 1e-4, $"view ({q}, {k})");

        // Rollout tab: rows sum to 1; a decoder's rollout stays lower-triangular, its first token draws only on itself.
        var rollout = await analytics.RolloutAsync(analysis.Id, null, new ViewOptions(), null);
        for (var i = 0; i < n; i++)
        {
            Assert.AreEqual(1.0, rollout.Data.Skip(i * n).Take(n).Sum(), 1e-4, $"rollout row {i}");
            if (causal)
                for (var j = i + 1; j < n; j++) Assert.AreEqual(0f, rollout.Data[i * n + j], $"rollout ({i}, {j}) above the diagonal");
        }
        if (causal) Assert.AreEqual(1f, rollout.Data[0], 1e-6);

        // Flow: complete and exact within the default budget; a decoder's last token can draw on every earlier one, its
        // first on itself only.
        var last = await analytics.FlowAsync(analysis.Id, n - 1, null);
        Assert.IsTrue(last.Complete);
        Assert.AreEqual(1.0, last.Flow!.Sum(), 1e-9);
        var first = await analytics.FlowAsync(analysis.Id, 0, null);
        if (causal)
        {
            Assert.AreEqual(1.0, first.Flow![0], 1e-9);
            Assert.IsTrue(first.Flow.Skip(1).All(v => v == 0), "the first token of a decoder sees nothing else");
        }

        // Distributions: every weight counted; causal rows count only their visible keys when special tokens are excluded.
        var weights = await analytics.HistogramAsync(analysis.Id, null, null, 20, excludeSpecial: false, metric: null);
        Assert.IsGreaterThan(0L, weights.Total);
        var entropy = await analytics.HistogramAsync(analysis.Id, null, null, 10, excludeSpecial: false, metric: "entropy");
        Assert.AreEqual(layers * heads, entropy.Total);

        // Export Heatmap PNG: the mean and the grid render.
        var image = AttentionRenderer.Heatmap(analysis, -1, -1, new RenderOptions(CellSize: 8));
        Assert.AreEqual(n, image.Layout.Cells);
        var grid = AttentionRenderer.Grid(analysis, new RenderOptions(Size: 32));
        Assert.AreEqual(n, grid.Layout.Cells);
        foreach (var t in expected.Values) t.Dispose();
    }
}
