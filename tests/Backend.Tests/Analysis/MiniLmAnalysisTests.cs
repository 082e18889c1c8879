using System.Diagnostics;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// The analysis of the default model's real attention: the fixture sentence analyzed through AttentionService, every
/// value recomputed here with plain loops from ../shared/fixtures/minilm-real/expected.safetensors (ONNX Runtime).
/// </summary>
[TestClass]
public sealed class MiniLmAnalysisTests
{
    private const string FoxText = "The quick brown fox jumps over the lazy dog.";
    private static BackendHost _host = null!;
    private static AnalysisQueries _analytics = null!;
    private static string _id = null!;
    private static float[][][] _expected = null!;                                     // [layer][head] → n×n
    private static int _n;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void Start(TestContext _)
    {
        _host = new BackendHost();
        _analytics = new AnalysisQueries(_host.Service);
        _id = _host.Service.AnalyzeAsync(new AnalyzeOptions(FoxText), CancellationToken.None).GetAwaiter().GetResult().Id;
        var attentions = Fixtures.Expected("minilm-real")["s0.attentions"];          // (L, H, T, T)
        _n = (int)attentions.shape[2];
        _expected = Enumerable.Range(0, 6).Select(l => Enumerable.Range(0, 12)
            .Select(h => attentions[l, h].contiguous().data<float>().ToArray()).ToArray()).ToArray();
    }

    [ClassCleanup]
    public static void Stop() => _host.Dispose();

    [TestMethod]
    public async Task EveryHeadsMetricsMatchAnIndependentRecomputation()
    {
        var result = await _analytics.MetricsAsync(_id);
        Assert.HasCount(72, result.Metrics);
        Assert.IsFalse(result.Causal);
        var n = _n;
        long[] ids = [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102];
        foreach (var m in result.Metrics)
        {
            var a = _expected[m.Layer][m.Head];
            double entropy = 0, distance = 0, first = 0, sep = 0, self = 0, previous = 0, dup = 0, ind = 0, frob = 0;
            for (var i = 0; i < n; i++)
            {
                for (var j = 0; j < n; j++)
                {
                    var p = a[i * n + j];
                    var smoothed = 0.9999 * p + 0.0001 / n;
                    entropy -= smoothed * Math.Log(smoothed) / n;
                    distance += p * Math.Abs(i - j) / n;
                    if (j < i && ids[i] == ids[j]) dup += p;
                    if (j < i && j >= 1 && ids[i] == ids[j - 1]) ind += p;
                    frob += Math.Pow(p - (i == j ? 1 : 0), 2);
                }
                first += a[i * n] / n;
                sep += a[i * n + n - 1] / n;
                self += a[i * n + i] / n;
                if (i > 0) previous += a[i * n + i - 1] / (n - 1);
            }
            var what = $"layer {m.Layer} head {m.Head}";
            Assert.AreEqual(entropy, m.Entropy, 2e-3, what);
            Assert.AreEqual(entropy / Math.Log(n), m.NormalizedEntropy, 2e-3, what);
            Assert.AreEqual(distance, m.MeanDistance, 2e-3, what);
            Assert.AreEqual(first, m.FirstToken, 1e-4, what);
            Assert.AreEqual(first, m.Cls!.Value, 1e-4, what);
            Assert.AreEqual(sep, m.Sep!.Value, 1e-4, what);
            Assert.AreEqual(self, m.Self, 1e-4, what);
            Assert.AreEqual(previous, m.PreviousToken, 1e-4, what);
            Assert.AreEqual(dup / n, m.DuplicateToken, 1e-4, what);                  // ΣA = n: rows sum to 1
            Assert.AreEqual(ind / n, m.Induction, 1e-4, what);
            Assert.AreEqual(Math.Sqrt(frob) / n, m.SelfDistance, 1e-4, what);
            Assert.AreEqual(first > 0.3, m.Sink, what);
            Assert.IsTrue(m.NormalizedEntropy is > 0 and <= 1, what);
        }
        // "the" appears twice (tokens 1 and 6): some head must notice the duplicate.
        Assert.IsTrue(result.Metrics.Any(m => m.DuplicateToken > 0.01));
    }

    [TestMethod]
    public async Task ModularityOfTheLayerMeanMatchesItsFormula()
    {
        var n = _n;
        var result = await _analytics.ModularityAsync(_id, 2, -1, includeSelfLoops: false);
        Assert.HasCount(n, result.Communities);
        Assert.AreEqual(result.Communities.Max() + 1, result.CommunityCount);
        // W = (Ā + Āᵀ)/2 of the fixture's layer-2 mean over heads, diagonal excluded; Q from Newman's formula.
        var mean = new double[n * n];
        foreach (var head in _expected[2])
            for (var k = 0; k < n * n; k++) mean[k] += head[k] / 12.0;
        var k_ = new double[n];
        var w = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                if (i != j) k_[i] += w[i, j] = (mean[i * n + j] + mean[j * n + i]) / 2;
        var twoM = k_.Sum();
        double q = 0;
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                if (result.Communities[i] == result.Communities[j]) q += w[i, j] - k_[i] * k_[j] / twoM;
        Assert.AreEqual(q / twoM, result.Q, 1e-4);
        Assert.IsGreaterThan(0.0, result.Q, "Louvain finds some structure in real attention");
    }

    [TestMethod]
    public async Task RolloutMatchesAnIndependentRecomputation()
    {
        var n = _n;
        var view = await _analytics.RolloutAsync(_id, null, new ViewOptions(), null);
        Assert.AreEqual(5, view.Layer);
        double[]? rollout = null;
        for (var l = 0; l < 6; l++)
        {
            var adjusted = new double[n * n];
            for (var i = 0; i < n; i++)
            {
                double sum = 0;
                for (var j = 0; j < n; j++)
                {
                    var mean = _expected[l].Average(h => (double)h[i * n + j]);
                    sum += adjusted[i * n + j] = 0.5 * mean + (i == j ? 0.5 : 0);
                }
                for (var j = 0; j < n; j++) adjusted[i * n + j] /= sum;
            }
            if (rollout is null) { rollout = adjusted; continue; }
            var next = new double[n * n];
            for (var i = 0; i < n; i++)
                for (var j = 0; j < n; j++)
                    for (var k = 0; k < n; k++) next[i * n + j] += adjusted[i * n + k] * rollout[k * n + j];
            rollout = next;
        }
        for (var k = 0; k < n * n; k++) Assert.AreEqual(rollout![k], view.Data[k], 1e-4);
    }

    [TestMethod]
    public async Task FlowSumsToOneAndItsFirstLayerIsTheAdjustedRow()
    {
        var n = _n;
        var flow = await _analytics.FlowAsync(_id, 4, null);
        Assert.AreEqual(5, flow.Layer);
        Assert.AreEqual(1.0, flow.Flow!.Sum(), 1e-9);
        Assert.IsTrue(flow.Raw.All(v => v is >= 0 and <= 1 + 1e-9));
        var one = await _analytics.FlowAsync(_id, 4, 0);
        for (var j = 0; j < n; j++)
        {
            var expected = 0.5 * _expected[0].Average(h => (double)h[4 * n + j]) + (j == 4 ? 0.5 : 0);
            Assert.AreEqual(expected, one.Raw[j], 1e-4);
        }
    }

    [TestMethod]
    public void WordLevelViewOfTheFixtureSentence()
    {
        var view = _analytics.View(_id, new ViewRequest(0, 0, new ViewOptions(WordLevel: true)));
        CollectionAssert.AreEqual(
            new[] { "[CLS]", "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog.", "[SEP]" },
            view.Units.Select(u => u.Text).ToArray());
        Assert.AreEqual("dog.", FoxText[view.Units[9].Start..view.Units[9].End]);
        var hidden = _analytics.View(_id, new ViewRequest(0, 0, new ViewOptions(true, true)));
        Assert.AreEqual(9, hidden.Rows);
        for (var r = 0; r < 9; r++) Assert.AreEqual(1.0, hidden.Data.Skip(r * 9).Take(9).Sum(), 1e-5);
        // Word "dog." (tokens 9, 10) from "the" (token 1): the sum of the two columns.
        var a = _expected[0][0];
        Assert.AreEqual(a[1 * _n + 9] + a[1 * _n + 10], view.Data[1 * 11 + 9], 1e-4);
    }

    private static double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;

    /// <summary>Timings on the real model (set ATTENTIONVIZ_TIMINGS to a file to get them); only loosely bounded.</summary>
    [TestMethod]
    public async Task MetricsAndFlowStayInteractiveAt512Tokens()
    {
        var text = string.Concat(Enumerable.Repeat("Attention shows which tokens a transformer reads when it writes each new one. ", 60));
        var lines = new List<string>();
        foreach (var size in new[] { 128, 512 })
        {
            var analysis = await _host.Service.AnalyzeAsync(new AnalyzeOptions(text, null, size), CancellationToken.None);
            Assert.HasCount(size, analysis.Tokens);
            using var lease = _host.Service.Acquire(analysis.Id);
            var cpu = Cpu();
            var clock = Stopwatch.StartNew();
            var metrics = HeadMetrics.Compute(analysis.Attention, analysis.Tokens, false);
            var metricsMs = clock.Elapsed.TotalMilliseconds;
            var metricsCpu = Cpu() - cpu;
            Assert.HasCount(72, metrics);
            Assert.IsTrue(metrics.All(m => double.IsFinite(m.Entropy) && double.IsFinite(m.Induction) && m.NormalizedEntropy <= 1));
            clock.Restart();
            cpu = Cpu();
            var flow = AttentionFlow.Compute(analysis.Attention, size / 2, 5, TimeSpan.FromMilliseconds(AnalysisQueries.DefaultFlowBudgetMs));
            var flowMs = clock.Elapsed.TotalMilliseconds;
            var flowCpu = Cpu() - cpu;
            Assert.AreEqual(1.0, flow.Flow!.Sum(), 1e-9);
            clock.Restart();
            var q = Modularity.Compute(analysis.Attention.Head(5, 0), size, false);
            var modularityMs = clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            Rollout.Compute(analysis.Attention, 5);
            var rolloutMs = clock.Elapsed.TotalMilliseconds;
            lines.Add($"n={size}: metrics (6×12 heads) {metricsMs:F0} ms wall / {metricsCpu:F0} ms CPU, flow (one token) {flowMs:F0} ms wall / " +
                $"{flowCpu:F0} ms CPU, modularity (one head) {modularityMs:F0} ms, rollout {rolloutMs:F0} ms; Q={q.Q:F3}");
            Assert.IsTrue(flow.Complete, $"flow of the real model completes within attention/flow's default budget ({flowMs:F0} ms)");
        }
        foreach (var line in lines) TestContext.WriteLine(line);
        if (Environment.GetEnvironmentVariable("ATTENTIONVIZ_TIMINGS") is { Length: > 0 } file) File.AppendAllLines(file, lines);
    }
}
