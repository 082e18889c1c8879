using System.Runtime.InteropServices;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// Attention recomputed from the kept queries, keys and normalisers is the attention: it equals the stored
/// probabilities of the same forward (2e-6: a score's dot product rounds in another order than the forward's
/// matrix product) and the independent fixtures (1e-4), through every read the protocol
/// uses — whole heads, windows, rows and columns, pooled overviews and means, metrics.
/// </summary>
[TestClass]
public sealed class RecomputedAttentionTests
{
    private static ModelThread _thread = null!;
    private static ModelRegistry _registry = null!;
    private static AttentionService _stored = null!, _recomputed = null!;

    [ClassInitialize]
    public static void Start(TestContext context)
    {
        _thread = new ModelThread();
        _registry = new ModelRegistry(_thread);
        _stored = new AttentionService(_registry, new AnalysisCache(1L << 30), _thread);
        _recomputed = new AttentionService(_registry, new AnalysisCache(1L << 30), _thread) { KeepProbabilitiesBytes = 0 };
    }

    [ClassCleanup]
    public static void Stop()
    {
        _registry.Dispose();
        _thread.Dispose();
    }

    private static async Task<(StoredAnalysis Stored, StoredAnalysis Recomputed, Tensor Expected)> Both(string fixture, string sequence)
    {
        var expected = Fixtures.Expected(fixture);
        var ids = Fixtures.Longs(expected[$"{sequence}.input_ids"]);
        var stored = await _stored.AnalyzeIdsAsync(ids, Fixtures.Folder(fixture), CancellationToken.None);
        var recomputed = await _recomputed.AnalyzeIdsAsync(ids, Fixtures.Folder(fixture), CancellationToken.None);
        Assert.IsTrue(stored.Attention.IsStored);
        Assert.IsFalse(recomputed.Attention.IsStored, "keepProbabilitiesBytes 0 recomputes");
        return (stored, recomputed, expected[$"{sequence}.attentions"]);
    }

    private static float MaxDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.AreEqual(a.Length, b.Length);
        var max = 0f;
        for (var i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    private static float[] Floats(Tensor t) => MemoryMarshal.Cast<byte, float>(t.to(float32).contiguous().bytes).ToArray();

    [TestMethod]
    [DataRow("llama-tiny", "s0")]
    [DataRow("llama-tiny", "s1")]
    [DataRow("qwen3-tiny", "s1")]
    [DataRow("gemma2-tiny", "s0")]   // soft-capped scores, recomputed as c·tanh(q·k·scale / c)
    [DataRow("gemma2-tiny", "s1")]
    [DataRow("gemma3-tiny", "s1")]
    [DataRow("phi3-tiny", "s1")]
    public async Task EveryHeadEqualsTheStoredProbabilitiesAndTheFixture(string fixture, string sequence)
    {
        var (stored, recomputed, expected) = await Both(fixture, sequence);
        var (layers, heads) = (stored.Model.Layers, stored.Model.Heads);
        // A soft-capped score is c·tanh(…): tanh's implementations (vectorised in the forward, scalar or libtorch's here)
        // differ by up to 2 ulps of a value below 1, i.e. c · 1.2e-7 in the score (6e-6 for Gemma 2's c = 50).
        var cap = (ModelFolder.ReadConfig(Fixtures.Folder(fixture)) as DecoderConfig)?.AttnLogitSoftcapping ?? 0;
        var bound = 2e-6f + (float)cap * 1.2e-7f;
        for (var l = 0; l < layers; l++)
            for (var h = 0; h < heads; h++)
            {
                var (onDemand, kept, reference) = (recomputed.Attention.Head(l, h), stored.Attention.Head(l, h), Floats(expected[l, h]));
                // The same float32 arithmetic, but a score's dot product rounds in another order than the forward's
                // matrix product: measured up to 1.3e-6 here.
                Assert.IsLessThanOrEqualTo(bound, MaxDifference(kept, onDemand), $"L{l} H{h} vs stored");
                Assert.IsLessThanOrEqualTo(1e-4f, MaxDifference(reference, onDemand), $"{fixture} L{l} H{h} vs the fixture");
                Assert.IsLessThanOrEqualTo(MaxDifference(reference, kept) + bound, MaxDifference(reference, onDemand),
                    $"L{l} H{h}: recomputed is as close to the reference as stored");
            }
    }

    [TestMethod]
    public async Task WindowsRowsAndColumnsAreSlicesOfTheFullMatrix()
    {
        var (stored, recomputed, _) = await Both("llama-tiny", "s1");
        var n = stored.Tokens.Count;
        var random = new Random(7);
        // A window is a slice of its own analysis's full head (stored vs recomputed is the test above).
        foreach (var analysis in new[] { stored, recomputed })
        {
            var full = analysis.Attention.Head(1, 3);
            for (var trial = 0; trial < 20; trial++)
            {
                var (r0, c0) = (random.Next(n - 1), random.Next(n - 1));
                var (r1, c1) = (random.Next(r0 + 1, n + 1), random.Next(c0 + 1, n + 1));
                var view = AttentionViews.View(analysis, new ViewRequest(1, 3, new ViewOptions(), RowRange: [r0, r1], ColRange: [c0, c1]));
                Assert.AreEqual((r1 - r0, c1 - c0, false), (view.Rows, view.Cols, view.Pooled));
                Assert.AreEqual((r0, r1, c0, c1), (view.RowStart, view.RowEnd, view.ColStart, view.ColEnd));
                for (var r = r0; r < r1; r++)
                    for (var c = c0; c < c1; c++)
                        Assert.AreEqual(full[r * n + c], view.Data[(r - r0) * (c1 - c0) + c - c0], 1e-6f, $"({r}, {c}) of [{r0},{r1})×[{c0},{c1})");
            }
        }
        var onDemandFull = recomputed.Attention.Head(1, 3);
        var row = _recomputed.Row(recomputed.Id, 1, 3, 57, "from", 5);
        var column = _recomputed.Row(recomputed.Id, 1, 3, 57, "to", 5);
        Assert.IsLessThanOrEqualTo(1e-6f, MaxDifference(onDemandFull.AsSpan(57 * n, n), row.Scores));
        Assert.IsLessThanOrEqualTo(1e-6f, MaxDifference(MatrixOps.Column(onDemandFull, n, 57), column.Scores));
    }

    [TestMethod]
    public async Task PooledMeansEqualTheMeanOfTheFixturesHeadMatrices()
    {
        var (_, recomputed, expected) = await Both("llama-tiny", "s1");
        var n = recomputed.Tokens.Count;                                             // 100 tokens, pooled by 4 to 25
        var mean = Floats(expected.mean([0, 1]));                                   // the reference's mean over all heads
        foreach (var pooling in new[] { "mean", "max" })
        {
            var view = AttentionViews.View(recomputed, new ViewRequest(-1, -1, new ViewOptions(), MaxSize: 25, Pooling: pooling));
            Assert.AreEqual((25, 4, pooling), (view.Rows, view.PoolFactor, view.Pooling));
            for (var br = 0; br < 25; br++)
                for (var bc = 0; bc < 25; bc++)
                {
                    var block = Enumerable.Range(0, 16).Select(k => mean[(br * 4 + k / 4) * n + bc * 4 + k % 4]).ToArray();
                    var want = pooling == "mean" ? block.Average() : block.Max();
                    Assert.AreEqual(want, view.Data[br * 25 + bc], 1e-5, $"{pooling} block ({br}, {bc})");
                }
        }
    }

    [TestMethod]
    public async Task MetricsSummedDuringTheForwardEqualTheStoredOnes()
    {
        var (stored, recomputed, _) = await Both("llama-tiny", "s1");
        Assert.IsNotNull(recomputed.Metrics, "summed during the forward");
        var fromStored = HeadMetrics.Compute(stored.Attention, stored.Tokens, causal: true);
        foreach (var (a, b) in fromStored.Zip(recomputed.Metrics))
        {
            Assert.AreEqual((a.Layer, a.Head), (b.Layer, b.Head));
            var pairs = new[]
            {
                (a.Entropy, b.Entropy), (a.NormalizedEntropy, b.NormalizedEntropy), (a.MeanDistance, b.MeanDistance),
                (a.FirstToken, b.FirstToken), (a.PreviousToken, b.PreviousToken), (a.Self, b.Self),
                (a.DuplicateToken, b.DuplicateToken), (a.Induction, b.Induction), (a.SelfDistance, b.SelfDistance),
            };
            foreach (var (want, got) in pairs) Assert.AreEqual(want, got, 1e-5 * Math.Max(1, Math.Abs(want)), $"L{a.Layer} H{a.Head}");
        }
    }

    [TestMethod]
    public async Task AWrongNormaliserOrScaleIsCaught()
    {
        // The checks above would fail on a recomputation that is slightly off: here the same state, a 1% scale error.
        var (stored, recomputed, _) = await Both("llama-tiny", "s1");
        var source = (RecomputedAttention)recomputed.Attention;
        var wrongLayers = Enumerable.Range(0, source.Layers).Select(l => source.State(l)).Select(s =>
            new LayerState(s.Queries.clone(), s.Keys.clone(), s.LogSumExp.clone(), s.Rule with { Scale = s.Rule.Scale * 1.01 })).ToArray();
        using var wrong = new RecomputedAttention(wrongLayers, source.Heads, source.Tokens, new PooledOverviews(2, 4, source.Tokens), null);
        Assert.IsGreaterThan(1e-4f, MaxDifference(stored.Attention.Head(1, 0), wrong.Head(1, 0)));
    }
}
