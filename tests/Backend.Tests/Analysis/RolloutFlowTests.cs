using System.Diagnostics;
using AttentionViz.Backend.Analysis;

namespace AttentionViz.Backend.Tests.Analysis;

[TestClass]
public sealed class RolloutFlowTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>
    /// Worked by hand. Layer 1 heads [[1,0],[1,0]] and [[1,0],[0,1]]: mean [[1,0],[.5,.5]], Â¹ = [[1,0],[.25,.75]].
    /// Layer 2 (both heads) [[0,1],[1,0]]: Â² = [[.5,.5],[.5,.5]]. R² = Â²·Â¹ = [[.625,.375],[.625,.375]].
    /// </summary>
    [TestMethod]
    public void RolloutMatchesTheWorkedExample()
    {
        double[][][] layers =
        [
            [[1, 0, 1, 0], [1, 0, 0, 1]],
            [[0, 1, 1, 0], [0, 1, 1, 0]],
        ];
        using var attention = AnalysisTestData.Build(2, 2, 2, (l, h, i, j) => layers[l][h][i * 2 + j]);
        var first = Rollout.Compute(attention, 0);
        CollectionAssert.AreEqual(new[] { 1f, 0f, 0.25f, 0.75f }, first);
        var second = Rollout.Compute(attention, 1);
        double[] expected = [0.625, 0.375, 0.625, 0.375];
        for (var k = 0; k < 4; k++) Assert.AreEqual(expected[k], second[k], 1e-6);
    }

    [TestMethod]
    public void RolloutRowsSumToOne()
    {
        using var attention = AnalysisTestData.Random(4, 3, 9, seed: 3, causal: true);
        var rollout = Rollout.Compute(attention, 3);
        for (var i = 0; i < 9; i++)
        {
            Assert.AreEqual(1.0, rollout.Skip(i * 9).Take(9).Sum(), 1e-5);
            for (var j = i + 1; j < 9; j++) Assert.AreEqual(0f, rollout[i * 9 + j], "causal rollout stays lower-triangular");
        }
    }

    /// <summary>Âˡ computed here from anchors.md, independently of the backend.</summary>
    private static double[][] Adjusted(AttentionTensor attention)
    {
        var (layers, heads, n) = (attention.Layers, attention.Heads, attention.Tokens);
        var result = new double[layers][];
        for (var l = 0; l < layers; l++)
        {
            var a = new double[n * n];
            for (var h = 0; h < heads; h++)
            {
                var m = attention.Head(l, h);
                for (var k = 0; k < n * n; k++) a[k] += m[k] / heads;
            }
            for (var i = 0; i < n; i++)
            {
                double sum = 0;
                for (var j = 0; j < n; j++) sum += a[i * n + j] = 0.5 * a[i * n + j] + (i == j ? 0.5 : 0);
                for (var j = 0; j < n; j++) a[i * n + j] /= sum;
            }
            result[l] = a;
        }
        return result;
    }

    /// <summary>Edmonds–Karp (BFS augmenting paths) on a dense capacity matrix.</summary>
    private static double EdmondsKarp(double[,] capacity, int source, int sink)
    {
        var v = capacity.GetLength(0);
        var residual = (double[,])capacity.Clone();
        double flow = 0;
        while (true)
        {
            var parent = Enumerable.Repeat(-1, v).ToArray();
            parent[source] = source;
            var queue = new Queue<int>([source]);
            while (queue.Count > 0 && parent[sink] < 0)
            {
                var x = queue.Dequeue();
                for (var y = 0; y < v; y++)
                    if (parent[y] < 0 && residual[x, y] > 1e-12) { parent[y] = x; queue.Enqueue(y); }
            }
            if (parent[sink] < 0) return flow;
            var bottleneck = double.PositiveInfinity;
            for (var y = sink; y != source; y = parent[y]) bottleneck = Math.Min(bottleneck, residual[parent[y], y]);
            for (var y = sink; y != source; y = parent[y])
            {
                residual[parent[y], y] -= bottleneck;
                residual[y, parent[y]] += bottleneck;
            }
            flow += bottleneck;
        }
    }

    /// <summary>The full DAG of anchors.md: (L+1)·n nodes, (l,i)→(l−1,j) with capacity Âˡᵢⱼ; node (l,i) = l·n + i.</summary>
    private static double[] BruteForceFlow(AttentionTensor attention, int token)
    {
        var (layers, n) = (attention.Layers, attention.Tokens);
        var adjusted = Adjusted(attention);
        var capacity = new double[(layers + 1) * n, (layers + 1) * n];
        for (var l = 1; l <= layers; l++)
            for (var i = 0; i < n; i++)
                for (var j = 0; j < n; j++) capacity[l * n + i, (l - 1) * n + j] = adjusted[l - 1][i * n + j];
        return Enumerable.Range(0, n).Select(j => EdmondsKarp(capacity, layers * n + token, j)).ToArray();
    }

    /// <summary>Every input of every token against the brute force; returns how many inputs stayed below their bound.</summary>
    private static int AssertMatchesEdmondsKarp(AttentionTensor attention, bool causal)
    {
        var (layers, n) = (attention.Layers, attention.Tokens);
        var belowBound = 0;
        for (var token = 0; token < n; token++)
        {
            var expected = BruteForceFlow(attention, token);
            var actual = AttentionFlow.Compute(attention, token, layers - 1);
            Assert.AreEqual(layers - 1, actual.Layer);
            Assert.IsTrue(actual.Complete);
            for (var j = 0; j < n; j++)
            {
                Assert.AreEqual(expected[j], actual.Raw[j], 1e-7, $"token {token} input {j}");
                Assert.IsGreaterThanOrEqualTo(actual.Raw[j] - 1e-9, actual.UpperBound[j], $"token {token} input {j}: the bound is an upper bound");
                if (actual.Raw[j] < actual.UpperBound[j] - 1e-6) belowBound++;
            }
            Assert.AreEqual(1.0, actual.Flow!.Sum(), 1e-9);
            if (causal)
                for (var j = token + 1; j < n; j++) Assert.AreEqual(0.0, actual.Raw[j], "no flow from later tokens in a causal model");
        }
        return belowBound;
    }

    [TestMethod]
    [DataRow(1, false)]
    [DataRow(2, false)]
    [DataRow(3, false)]
    [DataRow(4, true)]
    public void FlowMatchesEdmondsKarpOnTheFullGraph(int layers, bool causal)
    {
        using var attention = AnalysisTestData.Random(layers, 2, 6, seed: 11 + layers, causal: causal);
        AssertMatchesEdmondsKarp(attention, causal);
    }

    /// <summary>
    /// Sharp random attention often leaves the flow below min(source cut, sink cut): then the later Dinic phases (with
    /// reverse arcs) and the final proof run, and they must be exact too.
    /// </summary>
    [TestMethod]
    [DataRow(5, 9, false, 1.0)]
    [DataRow(5, 9, true, 1.0)]
    [DataRow(4, 8, false, 6.0)]
    [DataRow(6, 7, true, 6.0)]
    [DataRow(3, 10, false, 10.0)]
    public void FlowMatchesEdmondsKarpBelowTheCutBound(int layers, int n, bool causal, double sharpness)
    {
        var belowBound = 0;
        for (var seed = 0; seed < 4; seed++)
        {
            using var attention = AnalysisTestData.Random(layers, 3, n, seed: 100 + seed, causal: causal, sharpness: sharpness);
            belowBound += AssertMatchesEdmondsKarp(attention, causal);
        }
        TestContext.WriteLine($"{belowBound} inputs below their cut bound");
        if (sharpness > 1) Assert.IsGreaterThan(0, belowBound, "the data must exercise flows below the cut bound");
    }

    [TestMethod]
    public void OneTokenFlowsEntirelyToItself()
    {
        foreach (var layers in new[] { 1, 2, 4 })
            foreach (var causal in new[] { false, true })
            {
                using var attention = AnalysisTestData.Random(layers, 2, 1, seed: layers, causal: causal);
                var flow = AttentionFlow.Compute(attention, 0, layers - 1);
                Assert.IsTrue(flow.Complete);
                Assert.AreEqual(1.0, flow.Raw[0], 1e-12);
                CollectionAssert.AreEqual(new[] { 1.0 }, flow.Flow);
            }
    }

    [TestMethod]
    public void TheFirstTokenOfACausalModelDrawsOnlyOnItself()
    {
        using var attention = AnalysisTestData.Random(5, 3, 12, seed: 9, causal: true);
        var flow = AttentionFlow.Compute(attention, 0, 4);
        Assert.AreEqual(1.0, flow.Raw[0], 1e-9);
        Assert.IsTrue(flow.Raw.Skip(1).All(v => v == 0));
        Assert.AreEqual(1.0, flow.Flow![0], 1e-12);
    }

    [TestMethod]
    public void AnEarlierLayerIsTheFlowOfThoseLayersAlone()
    {
        using var attention = AnalysisTestData.Random(4, 2, 7, seed: 21);
        using var firstTwo = AnalysisTestData.Build(2, 2, 7, (l, h, i, j) => attention.Head(l, h)[i * 7 + j]);
        var expected = BruteForceFlow(firstTwo, 3);
        var actual = AttentionFlow.Compute(attention, 3, 1);
        Assert.AreEqual(1, actual.Layer);
        for (var j = 0; j < 7; j++) Assert.AreEqual(expected[j], actual.Raw[j], 1e-7);
    }

    [TestMethod]
    public void OneLayerFlowIsTheAdjustedRow()
    {
        using var attention = AnalysisTestData.Random(1, 3, 5, seed: 5);
        var adjusted = Adjusted(attention)[0];
        var flow = AttentionFlow.Compute(attention, 2, 0);
        for (var j = 0; j < 5; j++) Assert.AreEqual(adjusted[2 * 5 + j], flow.Raw[j], 1e-7);
    }

    /// <summary>512 tokens, 6 layers: the default budget of attention/flow is enough for every input to be exact.</summary>
    [TestMethod]
    public void FlowFor512TokensCompletesWithinTheDefaultBudget()
    {
        using var attention = AnalysisTestData.Random(6, 2, 512, seed: 7, sharpness: 4);
        var clock = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var flow = AttentionFlow.Compute(attention, 100, 5, TimeSpan.FromMilliseconds(AnalysisQueries.DefaultFlowBudgetMs));
        var elapsed = clock.Elapsed;
        var line = $"attention flow, 6 layers × 512 tokens (random softmax rows): {elapsed.TotalMilliseconds:F0} ms wall, "
            + $"{(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds:F0} ms CPU";
        TestContext.WriteLine(line);
        Console.Error.WriteLine(line);
        Assert.IsTrue(flow.Complete, $"not complete within the default budget ({elapsed.TotalMilliseconds:F0} ms)");
        Assert.AreEqual(1.0, flow.Flow!.Sum(), 1e-9);
        Assert.IsTrue(flow.Raw.All(v => v is >= 0 and <= 1 + 1e-9));
        for (var j = 0; j < 512; j++) Assert.IsLessThanOrEqualTo(flow.UpperBound[j] + 1e-9, flow.Raw[j]);
    }

    /// <summary>
    /// Budgets too small for 512 tokens: the call returns soon after the budget, says it is incomplete, and what it does
    /// return is exact (the same as without a budget), the largest upper bounds first.
    /// </summary>
    [TestMethod]
    public void FlowHonoursItsTimeBudget()
    {
        using var attention = AnalysisTestData.Random(6, 2, 512, seed: 7, sharpness: 4);
        var full = AttentionFlow.Compute(attention, 100, 5);                          // also warms up
        Assert.IsTrue(full.Complete);
        var clock = Stopwatch.StartNew();
        AttentionFlow.Compute(attention, 100, 5);
        var fullTime = clock.Elapsed;
        // About 40% of a full run: the graph is built and some inputs are done, but not all of them.
        foreach (var budget in new[] { TimeSpan.FromMilliseconds(1), fullTime * 0.4 })
        {
            clock.Restart();
            var partial = AttentionFlow.Compute(attention, 100, 5, budget);
            var elapsed = clock.Elapsed;
            var done = partial.Raw.Count(double.IsFinite);
            TestContext.WriteLine($"full run {fullTime.TotalMilliseconds:F0} ms; budget {budget.TotalMilliseconds:F0} ms: " +
                $"returned after {elapsed.TotalMilliseconds:F0} ms with {done} of 512 inputs");
            // Slack: building the graph (not interruptible) and one input per worker in flight.
            Assert.IsLessThan(budget + TimeSpan.FromMilliseconds(1000), elapsed);
            CollectionAssert.AreEqual(full.UpperBound, partial.UpperBound);
            // 1 ms is over before the graph is even built: nothing is computed. At 40% a faster second run may finish:
            // then it is the full result; otherwise what it has is exact and ordered.
            if (budget.TotalMilliseconds <= 1) Assert.IsFalse(partial.Complete, "a 1 ms budget cannot finish 512 inputs");
            if (partial.Complete)
            {
                CollectionAssert.AreEqual(full.Raw, partial.Raw);
                continue;
            }
            Assert.IsNull(partial.Flow);
            Assert.IsTrue(partial.Raw.Any(double.IsNaN));
            var minDone = double.PositiveInfinity;
            var maxMissing = double.NegativeInfinity;
            for (var j = 0; j < 512; j++)
            {
                if (double.IsNaN(partial.Raw[j])) { maxMissing = Math.Max(maxMissing, partial.UpperBound[j]); continue; }
                Assert.AreEqual(full.Raw[j], partial.Raw[j], "what a partial result returns is exact");
                minDone = Math.Min(minDone, partial.UpperBound[j]);
            }
            if (done > 0) Assert.IsGreaterThanOrEqualTo(maxMissing, minDone, "inputs are done largest upper bound first");
        }
    }

    [TestMethod]
    public void FlowIsCancellable()
    {
        using var attention = AnalysisTestData.Random(3, 2, 64, seed: 3);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsExactly<OperationCanceledException>(() => AttentionFlow.Compute(attention, 5, 2, cancelled.Token));
    }
}
