using System.Runtime.InteropServices;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// ../shared/fixtures/llama-long-tiny: 2,048 ids through a Llama, computed by an independent float64 implementation
/// of HF's modeling code. Too big to keep every probability by default (134 MB), so the analysis recomputes them:
/// its rows, its max- and mean-pooled overviews of every head and its hidden states must match the reference.
/// </summary>
[TestClass]
public sealed class LongInputFixtureTests
{
    private static BackendHost _host = null!;
    private static Dictionary<string, Tensor> _expected = null!;
    private static StoredAnalysis _analysis = null!;

    [ClassInitialize]
    public static async Task Start(TestContext context)
    {
        _host = new BackendHost();
        _expected = Fixtures.Expected("llama-long-tiny");
        var ids = Fixtures.Longs(_expected["s0.input_ids"]);
        _analysis = await _host.Service.AnalyzeIdsAsync(ids, Fixtures.Folder("llama-long-tiny"), CancellationToken.None);
    }

    [ClassCleanup]
    public static void Stop() => _host.Dispose();

    private static float[] Floats(Tensor t) => MemoryMarshal.Cast<byte, float>(t.to(float32).contiguous().bytes).ToArray();

    private static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.HasCount(expected.Length, actual);
        var worst = expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second));
        Assert.IsLessThanOrEqualTo(tolerance, worst, $"{what}: max |expected − actual| = {worst:E3}");
    }

    [TestMethod]
    public void ItIsALongAnalysisThatRecomputes()
    {
        Assert.AreEqual(2048, _analysis.Tokens.Count);
        Assert.IsFalse(_analysis.Attention.IsStored);
        const long probabilities = 2L * 4 * 2048 * 2048 * sizeof(float);                 // 134 MB
        Assert.IsLessThan(probabilities / 4, _analysis.Attention.SizeInBytes, "it keeps far less than the probabilities");
    }

    [TestMethod]
    public void RowsOfEveryHeadMatch()
    {
        var rowIndex = Fixtures.Longs(_expected["s0.row_index"]);
        var rows = _expected["s0.rows"];                                             // (L, H, 64, 2048)
        for (var l = 0; l < 2; l++)
            for (var h = 0; h < 4; h++)
                for (var k = 0; k < rowIndex.Length; k++)
                {
                    var token = (int)rowIndex[k];
                    var row = _host.Service.Row(_analysis.Id, l, h, token, "from", 5);
                    AssertClose(Floats(rows[l, h, k]), row.Scores, 1e-4, $"L{l} H{h} row {token}");
                }
    }

    [TestMethod]
    [DataRow("max")]
    [DataRow("mean")]
    public void PooledOverviewsOfEveryHeadMatch(string pooling)
    {
        var expected = _expected[$"s0.{pooling}_pooled_32"];                         // (L, H, 64, 64)
        var queries = new AnalysisQueries(_host.Service);
        for (var l = 0; l < 2; l++)
            for (var h = 0; h < 4; h++)
            {
                var view = queries.View(_analysis.Id, new ViewRequest(l, h, new ViewOptions(), MaxSize: 64, Pooling: pooling));
                Assert.AreEqual((64, 64, 32), (view.Rows, view.Cols, view.PoolFactor));
                AssertClose(Floats(expected[l, h]), view.Data, 1e-4, $"{pooling}-pooled L{l} H{h}");
            }
        // The mean over all heads: exact when recomputing it is cheap (it is here, 8 heads × 2048²).
        var all = queries.View(_analysis.Id, new ViewRequest(-1, -1, new ViewOptions(), MaxSize: 64, Pooling: pooling));
        Assert.AreEqual((64, 32), (all.Rows, all.PoolFactor));
        var headsMean = Floats(expected.mean([0, 1]));
        if (pooling == "mean") AssertClose(headsMean, all.Data, 1e-4, "mean-pooled mean over all heads");
        else
            for (var k = 0; k < headsMean.Length; k++)
                Assert.IsLessThanOrEqualTo(headsMean[k] + 1e-4, all.Data[k], "a block's max of the mean ≤ the mean of the heads' block maxima");

        // The overviews kept during the forward (blocks of 8 here) re-pooled by 4: each head's 32-blocks, then their mean.
        var overviews = _analysis.Attention.Overviews!;
        Assert.AreEqual(8, overviews.Factor);
        var fromOverviews = overviews.Read(-1, -1, maxOverHeads: false, mean: pooling == "mean", group: 4, 0, 256, 0, 256);
        AssertClose(headsMean, fromOverviews, 1e-4, $"{pooling}-pooled overviews, mean over heads");
        for (var l = 0; l < 2; l++)
            for (var h = 0; h < 4; h++)
                AssertClose(Floats(expected[l, h]), overviews.Read(l, h, false, pooling == "mean", 4, 0, 256, 0, 256), 1e-4,
                    $"{pooling}-pooled overview L{l} H{h}");
    }

    [TestMethod]
    public void AHeadTooCostlyToRecomputeIsServedFromItsOverview()
    {
        var queries = new AnalysisQueries(_host.Service);
        var request = new ViewRequest(0, 1, new ViewOptions(), MaxSize: 512);
        var exact = queries.View(_analysis.Id, request);
        Assert.AreEqual((512, 4), (exact.Rows, exact.PoolFactor), "2,048² cells are within the budget: recomputed at the asked size");
        var budget = AttentionViews.RecomputeBudget;
        try
        {
            AttentionViews.RecomputeBudget = 1e6;
            var view = queries.View(_analysis.Id, request);
            Assert.AreEqual((256, 256, 8, true), (view.Rows, view.Cols, view.PoolFactor, view.Pooled), "the overview's own blocks");
            // Its blocks of 8, max-pooled by 4 again, are the reference's blocks of 32.
            var coarse = MatrixOps.MaxPool(view.Data, 256, 4);
            AssertClose(Floats(_expected["s0.max_pooled_32"][0, 1]), coarse, 1e-4, "L0 H1 from its overview");
        }
        finally
        {
            AttentionViews.RecomputeBudget = budget;
        }
    }

    [TestMethod]
    public void AFullResolutionWindowOfTheMeanIsExact()
    {
        // Without maxSize (what an export asks) a mean over heads is never served from the overviews.
        var view = AttentionViews.View(_analysis, new ViewRequest(-1, -1, new ViewOptions(), RowRange: [1000, 1064]));
        Assert.AreEqual((64, 2048, 1, false), (view.Rows, view.Cols, view.PoolFactor, view.Pooled));
        var rowIndex = Fixtures.Longs(_expected["s0.row_index"]);
        var k = Array.IndexOf(rowIndex, 1024L);
        Assert.IsGreaterThanOrEqualTo(0, k, "the fixture keeps row 1024");
        var expected = Floats(_expected["s0.rows"].select(2, k).mean([0, 1]));        // the mean over heads of that row
        AssertClose(expected, view.Data.AsSpan((int)(rowIndex[k] - 1000) * 2048, 2048).ToArray(), 1e-4, "an exact row of the mean");
    }

    [TestMethod]
    public void HiddenStatesMatch() =>
        AssertClose(Floats(_expected["s0.last_hidden_state"]), _analysis.LastHiddenState, 1e-3, "last_hidden_state");
}
