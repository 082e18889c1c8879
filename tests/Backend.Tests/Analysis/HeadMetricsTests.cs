using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tokenization;
using static AttentionViz.Backend.Tests.Analysis.AnalysisTestData;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>Every head metric on matrices whose values are worked out by hand from the definitions in anchors.md.</summary>
[TestClass]
public sealed class HeadMetricsTests
{
    private const double Tolerance = 1e-6;
    private const int N = 4;

    private static HeadMetric[] Metrics(AttentionTensor attention, IReadOnlyList<Token>? tokens = null, bool causal = false) =>
        HeadMetrics.Compute(attention, tokens ?? Tokens("a", "b", "c", "d"), causal);

    /// <summary>−Σ p log p of a row after smoothing p ← 0.9999p + 0.0001/len.</summary>
    private static double SmoothedEntropy(params double[] row) =>
        -row.Select(p => 0.9999 * p + 0.0001 / row.Length).Sum(p => p * Math.Log(p));

    [TestMethod]
    public void Uniform()
    {
        using var attention = Heads(N, AnalysisTestData.Uniform(N));
        var m = Metrics(attention).Single();
        Assert.AreEqual(Math.Log(4), m.Entropy, Tolerance);
        Assert.AreEqual(1.0, m.NormalizedEntropy, Tolerance);
        Assert.AreEqual(20.0 / 16, m.MeanDistance, Tolerance);                        // Σ|i−j| over 4×4 = 20, /n /n
        Assert.AreEqual(0.25, m.FirstToken, Tolerance);
        Assert.AreEqual(0.25, m.Self, Tolerance);
        Assert.AreEqual(0.25, m.PreviousToken, Tolerance);
        Assert.AreEqual(Math.Sqrt(4 * 0.75 * 0.75 + 12 * 0.25 * 0.25) / 4, m.SelfDistance, Tolerance);
        Assert.IsFalse(m.Sink);
        Assert.IsNull(m.Cls);
        Assert.IsNull(m.Sep);
        Assert.AreEqual(0.0, m.DuplicateToken, Tolerance, "no repeated ids");
        Assert.AreEqual(0.0, m.Induction, Tolerance);
    }

    [TestMethod]
    public void Identity()
    {
        using var attention = Heads(N, AnalysisTestData.Identity);
        var m = Metrics(attention).Single();
        Assert.AreEqual(SmoothedEntropy(1, 0, 0, 0), m.Entropy, 1e-9);
        Assert.AreEqual(SmoothedEntropy(1, 0, 0, 0) / Math.Log(4), m.NormalizedEntropy, 1e-9);
        Assert.AreEqual(0.0, m.MeanDistance, Tolerance);
        Assert.AreEqual(1.0, m.Self, Tolerance);
        Assert.AreEqual(0.0, m.PreviousToken, Tolerance);
        Assert.AreEqual(0.25, m.FirstToken, Tolerance);
        Assert.AreEqual(0.0, m.SelfDistance, Tolerance);
    }

    [TestMethod]
    public void PreviousToken()
    {
        using var attention = Heads(N, AnalysisTestData.Previous);
        var m = Metrics(attention).Single();
        Assert.AreEqual(1.0, m.PreviousToken, Tolerance);
        Assert.AreEqual(0.25, m.Self, Tolerance);                                     // only row 0 attends to itself
        Assert.AreEqual(3.0 / 4, m.MeanDistance, Tolerance);
        Assert.AreEqual(0.5, m.FirstToken, Tolerance);                                // rows 0 and 1
        Assert.AreEqual(Math.Sqrt(3 * 2) / 4, m.SelfDistance, Tolerance);             // rows 1..3: (1)² + (−1)²
        Assert.AreEqual(SmoothedEntropy(1, 0, 0, 0), m.Entropy, 1e-9);
    }

    [TestMethod]
    public void CausalLowerTriangular()
    {
        using var attention = Heads(N, CausalUniform);
        var m = Metrics(attention, causal: true).Single();
        // Row i is uniform over its i+1 keys: smoothing over those keys leaves it uniform, entropy log(i+1).
        Assert.AreEqual(Enumerable.Range(1, 4).Average(k => Math.Log(k)), m.Entropy, Tolerance);
        Assert.AreEqual(1.0, m.NormalizedEntropy, Tolerance, "rows with one key are left out, the others are uniform");
        Assert.AreEqual(Enumerable.Range(0, 4).Average(i => i / 2.0), m.MeanDistance, Tolerance);
        Assert.AreEqual(Enumerable.Range(1, 4).Average(k => 1.0 / k), m.FirstToken, Tolerance);
        Assert.AreEqual(Enumerable.Range(1, 4).Average(k => 1.0 / k), m.Self, Tolerance);
        Assert.AreEqual(new[] { 1 / 2.0, 1 / 3.0, 1 / 4.0 }.Average(), m.PreviousToken, Tolerance);
        Assert.IsTrue(m.Sink, "α = 0.52 > 0.3: the first token is a sink");
    }

    [TestMethod]
    public void LongRowsKeepFloat64EntropyAndDistance()
    {
        // 600 keys a row: the vectorised path (float32 log, corrected to float64) against the definitions in float64. The
        // entropy keeps 1e-8 of itself (measured 2.7e-9): what float32 probabilities carry anyway (2⁻²⁴ ≈ 6e-8 each).
        const int n = 600;
        var random = new Random(7);
        var weights = Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, n).Select(_ => Math.Pow(random.NextDouble(), 8)).ToArray()).ToArray();
        // The matrix holds float32s: the reference reads the same rounded values.
        var rows = weights.Select(w => w.Select(x => (double)(float)(x / w.Sum())).ToArray()).ToArray();
        using var attention = Heads(n, (i, j) => rows[i][j]);
        var m = Metrics(attention, Enumerable.Range(0, n).Select(i => new Token(i, "t", 0, 0, false)).ToList()).Single();
        var entropy = rows.Average(r => SmoothedEntropy(r));
        var distance = rows.Select((r, i) => r.Select((p, j) => p * Math.Abs(i - j)).Sum()).Average();
        Assert.AreEqual(entropy, m.Entropy, 1e-8 * entropy, $"entropy {m.Entropy} vs {entropy}");
        Assert.AreEqual(distance, m.MeanDistance, 1e-9 * distance);
        Assert.AreEqual(1.0, rows.Average(r => r.Sum()), 1e-5);
    }

    [TestMethod]
    public void NonCausalSmoothingOfACausalMatrixUsesTheWholeRow()
    {
        using var attention = Heads(2, (i, j) => i == j ? 1 : 0);
        var causal = Metrics(attention, Tokens("a", "b"), causal: true).Single();
        var full = Metrics(attention, Tokens("a", "b"), causal: false).Single();
        Assert.AreEqual(SmoothedEntropy(1) / 2 + SmoothedEntropy(1, 0) / 2, causal.Entropy, 1e-9);
        Assert.AreEqual(SmoothedEntropy(1, 0), full.Entropy, 1e-9);
    }

    [TestMethod]
    public void SpecialTokenMassAndSinkFlag()
    {
        var tokens = Spans(("[CLS]", 0, 0, true), ("a", 0, 1, false), ("b", 2, 3, false), ("[SEP]", 0, 0, true));
        // Head 0 puts 0.7 on [CLS] and 0.1 on each other token; head 1 puts 0.6 on [SEP].
        using var attention = Heads(N, (_, j) => j == 0 ? 0.7 : 0.1, (_, j) => j == 3 ? 0.6 : 0.4 / 3);
        var m = Metrics(attention, tokens);
        Assert.AreEqual(0.7, m[0].Cls!.Value, Tolerance);
        Assert.AreEqual(0.1, m[0].Sep!.Value, Tolerance);
        Assert.AreEqual(0.7, m[0].FirstToken, Tolerance);
        Assert.IsTrue(m[0].Sink);
        Assert.AreEqual(0.6, m[1].Sep!.Value, Tolerance);
        Assert.IsFalse(m[1].Sink);
    }

    /// <summary>Random ids repeated twice; a head that looks at the token after the previous occurrence is an induction head.</summary>
    [TestMethod]
    public void InductionAndDuplicateHeadsOnARepeatedRandomSequence()
    {
        const int T = 10;
        var random = new Random(42);
        var half = Enumerable.Range(0, 1000).OrderBy(_ => random.Next()).Take(T).ToArray();   // distinct random ids
        var ids = half.Concat(half).ToArray();
        var n = ids.Length;
        var tokens = ids.Select(id => new Token(id, $"t{id}", 0, 0, false)).ToList();
        // Induction head: second-copy row i attends to i − T + 1; first-copy rows attend to themselves.
        Func<int, int, double> induction = (i, j) => i >= T ? (j == i - T + 1 ? 1 : 0) : (j == i ? 1 : 0);
        // Duplicate-token head: second-copy row i attends to the earlier copy of its token, i − T.
        Func<int, int, double> duplicate = (i, j) => i >= T ? (j == i - T ? 1 : 0) : (j == i ? 1 : 0);
        using var attention = Heads(n, induction, duplicate, Previous, CausalUniform);
        var m = HeadMetrics.Compute(attention, tokens, causal: true);

        Assert.AreEqual(0.5, m[0].Induction, Tolerance, "half the rows (the second copy) put all their mass on the pattern");
        Assert.AreEqual(0.0, m[0].DuplicateToken, Tolerance);
        Assert.AreEqual(0.5, m[1].DuplicateToken, Tolerance);
        Assert.AreEqual(0.0, m[1].Induction, Tolerance, "control: a duplicate-token head is no induction head");
        Assert.AreEqual(0.0, m[2].Induction, Tolerance, "control: a previous-token head is no induction head");
        // Causal uniform: row i ≥ T has exactly one induction position (i − T + 1) among its i + 1 keys.
        var uniformExpected = Enumerable.Range(T, T).Sum(i => 1.0 / (i + 1)) / n;
        Assert.AreEqual(uniformExpected, m[3].Induction, Tolerance);

        // The repeated-sequence stripe: mean of the diagonal at offset −(T−1), rows T−1 … n−1 (row T−1 is in the first copy).
        var head0 = Matrix(attention, 0, 0);
        Assert.AreEqual((double)T / (T + 1), HeadMetrics.RepeatedSequenceInductionScore(head0, n, T), Tolerance);
        Assert.AreEqual(0.0, HeadMetrics.RepeatedSequenceInductionScore(Matrix(attention, 0, 1), n, T), Tolerance);
    }

    [TestMethod]
    public void PatternsFollowTransformerLens()
    {
        long[] ids = [5, 7, 5, 7, 9];
        using var duplicate = HeadMetrics.DuplicatePattern(ids);
        using var induction = HeadMetrics.InductionPattern(ids);
        var d = duplicate.data<double>().ToArray();
        var ind = induction.data<double>().ToArray();
        // Duplicates: (2,0) and (3,1). Induction: the token after the earlier copy: (2,1) and (3,2).
        for (var i = 0; i < 5; i++)
            for (var j = 0; j < 5; j++)
            {
                Assert.AreEqual((i, j) is (2, 0) or (3, 1) ? 1.0 : 0.0, d[i * 5 + j], $"duplicate ({i},{j})");
                Assert.AreEqual((i, j) is (2, 1) or (3, 2) ? 1.0 : 0.0, ind[i * 5 + j], $"induction ({i},{j})");
            }
    }

    [TestMethod]
    public void ASingleTokenIsWellDefinedEverywhere()
    {
        using var attention = Build(2, 1, 1, (_, _, _, _) => 1);
        var m = HeadMetrics.Compute(attention, Tokens("a"), causal: true)[0];
        Assert.AreEqual((0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0), (m.Entropy, m.NormalizedEntropy, m.MeanDistance, m.FirstToken,
            m.PreviousToken, m.Self, m.DuplicateToken, m.Induction, m.SelfDistance));
        Assert.IsTrue(m.Sink);
        var q = Modularity.Compute(Matrix(attention, 0, 0), 1, includeSelfLoops: false);
        Assert.AreEqual(0.0, q.Q);
        CollectionAssert.AreEqual(new[] { 0 }, q.Communities);
        CollectionAssert.AreEqual(new[] { 1.0 }, AttentionFlow.Compute(attention, 0, 1).Flow);
        CollectionAssert.AreEqual(new[] { 1f }, Rollout.Compute(attention, 1));
        Assert.AreEqual(2, Histograms.Weights(attention, Tokens("a"), true, null, null, 5, false).Total);
    }

    [TestMethod]
    public void EveryLayerAndHeadIsReportedInOrder()
    {
        using var attention = Random(3, 4, 7, seed: 1);
        var m = HeadMetrics.Compute(attention, Tokens("a", "b", "c", "d", "e", "f", "g"), causal: false);
        Assert.HasCount(12, m);
        for (var k = 0; k < 12; k++) Assert.AreEqual((k / 4, k % 4), (m[k].Layer, m[k].Head));
        Assert.IsTrue(m.All(x => x.NormalizedEntropy is > 0 and <= 1 + 1e-9));
    }

    public static IEnumerable<object[]> Paths => Models.FastExpTests.Paths;

    /// <summary>
    /// Rows longer than a vector (16 and 8 keys a step, then the scalar tail) on each vector path: entropy, normalised
    /// entropy, mean distance and self-distance equal the definitions summed directly in float64.
    /// </summary>
    [TestMethod]
    [DoNotParallelize]                                                               // LinearKernel.Selected is process-wide
    [DynamicData(nameof(Paths))]
    public void LongRowsEqualTheDefinitionsOnEveryVectorPath(LinearKernel.Path path)
    {
        if (!LinearKernel.Supported(path)) return;
        const int n = 45;                                                            // 2 × 16 + 13, 5 × 8 + 5
        var tokens = Tokens(Enumerable.Range(0, n).Select(i => $"t{i}").ToArray());
        foreach (var causal in new[] { false, true })
        {
            using var attention = Random(1, 1, n, seed: 45, causal: causal);
            var a = Matrix(attention, 0, 0);
            var before = LinearKernel.Selected;
            LinearKernel.Selected = path;
            HeadMetric m;
            try { m = HeadMetrics.Compute(attention, tokens, causal).Single(); }
            finally { LinearKernel.Selected = before; }

            double entropy = 0, normalized = 0, distance = 0, squares = 0;
            for (var i = 0; i < n; i++)
            {
                var length = causal ? i + 1 : n;
                var row = -Enumerable.Range(0, length).Select(j => 0.9999 * a[i * n + j] + 0.0001 / length).Sum(s => s * Math.Log(s));
                entropy += row;
                if (length > 1) normalized += row / Math.Log(length);
                for (var j = 0; j < n; j++)
                {
                    distance += a[i * n + j] * Math.Abs(i - j);
                    squares += Math.Pow(a[i * n + j] - (i == j ? 1 : 0), 2);
                }
            }
            var label = $"{path}, causal {causal}";
            Assert.AreEqual(entropy / n, m.Entropy, 1e-6 * entropy / n, label);
            Assert.AreEqual(normalized / (causal ? n - 1 : n), m.NormalizedEntropy, 1e-6, label);
            Assert.AreEqual(distance / n, m.MeanDistance, 1e-6 * distance / n, label);
            Assert.AreEqual(Math.Sqrt(squares) / n, m.SelfDistance, 1e-6, label);
        }
    }
}
