using System.Diagnostics;
using AttentionViz.Backend.Models;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Bench;

/// <summary>
/// libtorch's fp32 matmul throughput on this machine for the long forward's shapes (SmolLM2-135M at 8,192 tokens): the
/// projections and MLP (tokens × 576 against 576 × out) and one attention block's QKᵀ and P·V (3 kv heads × 192 query
/// rows × 64 against 64 × keys), so the forward's per-phase times can be compared with what a plain matmul reaches.
/// </summary>
internal static class GemmBench
{

    public static int Run()
    {
        TorchSetup.EnsureInitialized();
        using var noGrad = no_grad();
        var tokens = BenchArgs.Value("--tokens") is { } t ? int.Parse(t) : 8192;
        var runs = BenchArgs.Value("--runs") is { } r ? int.Parse(r) : 5;
        Console.WriteLine($"| matmul (fp32, {TorchSetup.ThreadCount} threads) | shape | ms (median of {runs}) | GFLOP/s |");
        Console.WriteLine("|---|---|---:|---:|");
        Measure("q/o projection", tokens, 576, 576, runs);
        Measure("k/v projection", tokens, 576, 192, runs);
        Measure("MLP gate/up", tokens, 576, 1536, runs);
        Measure("MLP down", tokens, 1536, 576, runs);
        // One attention block of 64 query rows at the end of the prompt: every key is visible.
        MeasureBatched("QKᵀ (block of 64 rows)", 3, 192, 64, tokens, transposeB: true, runs);
        MeasureBatched("P·V (block of 64 rows)", 3, 192, tokens, 64, transposeB: false, runs);
        Kernels(tokens, runs);
        LinearPaths(runs);
        return 0;
    }

    /// <summary>
    /// A MiniLM forward's 36 products in order, M rows each, every weight its own (42 MB in all, more than L3): what
    /// a short prompt's linear layers cost when the weights come from memory. --gemm-stream [--rows 16].
    /// </summary>
    public static int Stream()
    {
        var m = BenchArgs.Value("--rows") is { } r ? int.Parse(r) : 16;
        var runs = BenchArgs.Value("--runs") is { } rs ? int.Parse(rs) : 200;
        var path = Models.Core.LinearKernel.Selected;
        // (inputs, outputs) of q, k, v, the attention output, the intermediate and the output, six layers.
        var shapes = Enumerable.Range(0, 6)
            .SelectMany(_ => new[] { (384, 384), (384, 384), (384, 384), (384, 384), (384, 1536), (1536, 384) }).ToArray();
        var random = new Random(1);
        var weights = shapes.Select(s =>
        {
            var w = new float[s.Item1 * s.Item2];
            for (var i = 0; i < w.Length; i++) w[i] = (float)random.NextDouble() - 0.5f;
            Models.Core.LinearKernel.Pack(w, s.Item2, s.Item1);
            return w;
        }).ToArray();
        var a = new float[m * 1536];
        for (var i = 0; i < a.Length; i++) a[i] = (float)random.NextDouble();
        var c = new float[m * 1536];
        var times = new List<double>();
        for (var run = 0; run < runs + 20; run++)
        {
            var clock = Stopwatch.StartNew();
            for (var j = 0; j < shapes.Length; j++)
                Models.Core.LinearKernel.Multiply(path, a, weights[j], [], c, m, shapes[j].Item2, shapes[j].Item1);
            if (run >= 20) times.Add(clock.Elapsed.TotalMilliseconds);
        }
        var flops = 2.0 * m * shapes.Sum(s => (double)s.Item1 * s.Item2);
        var median = times.Order().ElementAt(times.Count / 2);
        Console.WriteLine($"{m} rows, 36 products ({path}): median {median:F3} ms, p10 {times.Order().ElementAt(times.Count / 10):F3}, " +
            $"{flops / median / 1e6:F0} GFLOP/s");
        return 0;
    }

    /// <summary>
    /// The linear layer's paths (libtorch, and the project's LinearKernel on each vector width this CPU runs) on the
    /// MiniLM shapes at 16 and 128 tokens and the long forward's at 1,024 rows (GatedMlp's chunk), interleaved run by run
    /// so that a busy machine slows every path alike; the ratio is LinearKernel's time over libtorch's.
    /// </summary>
    private static void LinearPaths(int runs)
    {
        var paths = new[] { Models.Core.LinearKernel.Path.Vector512, Models.Core.LinearKernel.Path.Vector256 }
            .Where(Models.Core.LinearKernel.Supported).ToArray();
        Console.WriteLine();
        Console.WriteLine($"| linear x·Wᵀ ({TorchSetup.ThreadCount} threads) | torch ms | " +
            string.Join(" | ", paths.Select(p => $"{p} ms | ratio")) + " |");
        Console.WriteLine("|---|---:|" + string.Concat(paths.Select(_ => "---:|---:|")));
        foreach (var (m, k, n) in new[] { (13, 384, 384), (16, 384, 1536), (19, 1536, 384), (128, 384, 384), (128, 384, 1536), (128, 1536, 384),
                     (1024, 576, 576), (1024, 576, 1536), (1024, 1536, 576), (1024, 896, 4864), (1024, 4864, 896) })
        {
            using var scope = NewDisposeScope();
            var x = randn(m, k);
            var w = randn(n, k);
            var a = x.data<float>().ToArray();
            var weights = w.data<float>().ToArray();
            Models.Core.LinearKernel.Pack(weights, n, k);
            var c = new float[m * n];
            var work = new List<Action> { () => nn.functional.linear(x, w).Dispose() };
            work.AddRange(paths.Select(p => (Action)(() => Models.Core.LinearKernel.Multiply(p, a, weights, [], c, m, n, k))));
            foreach (var action in work) for (var i = 0; i < 3; i++) action();
            var times = work.Select(_ => new List<double>()).ToList();
            for (var run = 0; run < Math.Max(runs, 15); run++)
                for (var i = 0; i < work.Count; i++)
                {
                    var clock = Stopwatch.StartNew();
                    work[i]();
                    times[i].Add(clock.Elapsed.TotalMilliseconds);
                }
            var medians = times.Select(t => t.Order().ElementAt(t.Count / 2)).ToList();
            Console.WriteLine($"| {m}×{k} · {k}×{n} | {medians[0]:F3} | " +
                string.Join(" | ", medians.Skip(1).Select(v => $"{v:F3} | {v / medians[0]:F2}×")) + " |");
        }
    }

    /// <summary>The capture's kernels on one thread, ns per cell: head-metric sums and pooled overviews of one run of
    /// causal rows (the last 64 rows of a <paramref name="tokens"/>-token prompt, one head).</summary>
    private static void Kernels(int tokens, int runs)
    {
        var ids = Enumerable.Range(0, tokens).Select(i => new Tokenization.Token(i % 1000, "t", 0, 1, false)).ToList();
        var metrics = new Analysis.HeadMetricSums(1, 1, ids, causal: true);
        using var overviews = new Analysis.PooledOverviews(1, 1, tokens);
        var random = new Random(1);
        const int rows = 64;
        // The last 64 causal rows of the prompt, each zero after its own position (as a block hands them over).
        var block = new float[rows * tokens];
        for (var r = 0; r < rows; r++)
            for (var j = 0; j <= tokens - rows + r; j++) block[r * tokens + j] = (float)random.NextDouble() / tokens;
        var run = new Analysis.RowRuns(1, tokens - rows, rows, rows);
        var sums = new Analysis.RunSums(run);
        var scratch = new float[2 * tokens];
        double cells = rows * (double)tokens;
        const int repeats = 20;                                         // the CPU clock ticks every 4 ms
        Console.WriteLine($"| kernel (1 thread) | {rows} rows × {tokens} keys | CPU ms (median of {runs}) | CPU ns per cell |");
        Console.WriteLine("|---|---|---:|---:|");
        void Time(string name, Action work)
        {
            for (var k = 0; k < 100; k++) work();                       // past the tiered JIT's first tiers
            var times = Enumerable.Range(0, runs + 1).Select(_ =>
            {
                var start = Platform.PhaseTimers.ThreadCpuMilliseconds();
                for (var k = 0; k < repeats; k++) work();
                return (Platform.PhaseTimers.ThreadCpuMilliseconds() - start) / repeats;
            }).Skip(1).Order().ToList();
            Console.WriteLine($"| {name} | | {times[runs / 2]:F2} | {times[runs / 2] * 1e6 / cells:F2} |");
        }
        Time("HeadMetricSums.SumRun", () => metrics.SumRun(0, run.All[0], 0, tokens, block, sums));
        Time("PooledOverviews.AddRows", () => overviews.AddRows(0, 0, tokens - rows, rows, 0, tokens, block, scratch.AsSpan(0, tokens),
            scratch.AsSpan(tokens)));
    }

    private static void Measure(string name, long m, long k, long n, int runs)
    {
        using var scope = NewDisposeScope();
        var x = randn(m, k);
        var w = randn(n, k);
        Report(name, $"{m}×{k} · {k}×{n}", 2.0 * m * k * n, runs, () => nn.functional.linear(x, w).Dispose());
    }

    private static void MeasureBatched(string name, long batch, long m, long k, long n, bool transposeB, int runs)
    {
        using var scope = NewDisposeScope();
        var a = randn(batch, m, k);
        var b = transposeB ? randn(batch, n, k) : randn(batch, k, n);
        var right = transposeB ? b.transpose(-2, -1) : b;
        Report(name, $"{batch}×({m}×{k} · {k}×{n})", 2.0 * batch * m * k * n, runs, () => a.matmul(right).Dispose());
    }

    private static void Report(string name, string shape, double flops, int runs, Action work)
    {
        work();
        var times = Enumerable.Range(0, runs).Select(_ =>
        {
            var clock = Stopwatch.StartNew();
            work();
            return clock.Elapsed.TotalMilliseconds;
        }).Order().ToList();
        var median = times[runs / 2];
        Console.WriteLine($"| {name} | {shape} | {median:F2} | {flops / (median * 1e6):F0} |");
    }
}
