using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Storage;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace AttentionViz.Backend.Bench;

/// <summary>
/// The embedded all-MiniLM-L6-v2 on short inputs: in-process analyze latency, time to first heatmap over JSON-RPC
/// (analyze + one matrix, the real backend process over stdio), ONNX Runtime's plain inference of the same ONNX graph at
/// the same thread count as the baseline, and attention flow for one token.
/// </summary>
internal static class MiniLmBench
{
    public static readonly string Text =
        string.Concat(Enumerable.Repeat("Attention shows which tokens a transformer reads when it writes each new one. ", 60));

    public static string BackendDll => Path.Combine(AppContext.BaseDirectory, "attentionviz-backend.dll");

    public static int Run()
    {
        var runs = BenchArgs.Value("--runs") is { } r ? int.Parse(r) : 30;
        var writeTo = BenchArgs.Value("--write");
        var sizes = BenchArgs.Value("--sizes") is { } list ? list.Split(',').Select(int.Parse).ToArray() : new[] { 16, 128, 512 };
        var threads = TorchSetup.ThreadCount;
        var text = Text;

        Console.Error.WriteLine($"threads {threads}, runs {runs}, OMP_WAIT_POLICY={Environment.GetEnvironmentVariable("OMP_WAIT_POLICY")}");
        if (BenchArgs.Has("--cold-only"))
        {
            var (ready, first) = ColdStart(runs);
            Console.WriteLine($"cold start on {Machine.CpuModel}: first heatmap of 128 tokens {first} ms after spawning; initialize {ready} ms");
            return 0;
        }
        var rows = new List<(int Tokens, Stats Analyze, Stats FirstHeatmap, Stats Ort, Stats AllHeads)>();
        var flowRows = new List<(int Tokens, Stats Wall, double CpuMs)>();

        using (var host = new BackendHost())
        {
            // Attention flow for the middle token through all 6 layers: the most expensive analysis request.
            foreach (var n in new[] { 128, 512 })
            {
                var a = host.Service.AnalyzeAsync(new AnalyzeOptions(text, null, n), CancellationToken.None).GetAwaiter().GetResult();
                var flowRuns = Math.Max(3, runs / 6);
                var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                var wall = Stats.Measure(flowRuns, () => AttentionFlow.Compute(a.Attention, n / 2, a.Attention.Layers - 1));
                var cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / (flowRuns + 3);
                flowRows.Add((n, wall, cpuMs));
                Console.Error.WriteLine($"attention flow, {n} tokens: {wall} ms wall, {cpuMs:F0} ms CPU per call");
            }
            if (BenchArgs.Has("--flow-only")) return 0;
            if (BenchArgs.Value("--loop") is { } loop)
            {
                // A steady loop of one size for a profiler (perf record): --loop TOKENS [--seconds S].
                var seconds = BenchArgs.Value("--seconds") is { } s ? double.Parse(s) : 20;
                var clock = Stopwatch.StartNew();
                var count = 0;
                while (clock.Elapsed.TotalSeconds < seconds)
                {
                    var a = host.Service.AnalyzeAsync(new AnalyzeOptions(text, null, int.Parse(loop)), CancellationToken.None).GetAwaiter().GetResult();
                    host.Service.Release(a.Id);
                    count++;
                }
                Console.WriteLine($"{count} analyses of {loop} tokens, {clock.Elapsed.TotalMilliseconds / count:F2} ms each");
                return 0;
            }
            foreach (var n in sizes)
            {
                var analyze = Stats.Measure(runs, () =>
                {
                    var a = host.Service.AnalyzeAsync(new AnalyzeOptions(text, null, n), CancellationToken.None).GetAwaiter().GetResult();
                    if (a.Tokens.Count != n) throw new InvalidOperationException($"expected {n} tokens, got {a.Tokens.Count}");
                    host.Service.Release(a.Id);                                 // as the panel does with the one it replaces
                });
                rows.Add((n, analyze, default, default, default));
            }
        }

        Stats roundTrip;
        using (var ort = new OrtRunner(threads))
        using (var rpc = StdioClient.Start(BackendDll))
        {
            rpc.Call("initialize", new JsonObject());
            roundTrip = Stats.Measure(runs, () => rpc.Call("initialize", new JsonObject()));
            // Past the tiered JIT's first tiers (a backend that has analyzed a few prompts), as the in-process side is.
            foreach (var row in rows)
                for (var i = 0; i < 30; i++)
                {
                    FirstHeatmapOnce(rpc, row.Tokens);
                    ort.Run(row.Tokens);
                }
            // Interleaved, so that the machine's drift (±30 % within minutes on these shared hosts) hits both sides
            // alike; each call waits until the last one's spinning threads are asleep (ONNX Runtime's spin for ~35 ms
            // after a Run: with a fixed 3 ms pause the backend's first heatmap at 128 tokens measured 16.0 ms, 10.8 ms
            // with ONNX Runtime's spinning off).
            for (var i = 0; i < rows.Count; i++)
            {
                var n = rows[i].Tokens;
                var (heatmap, baseline, allHeads) = (new List<double>(), new List<double>(), new List<double>());
                var measures = new (List<double> Samples, Func<double> Call)[]
                {
                    (heatmap, () => FirstHeatmapOnce(rpc, n)),
                    (baseline, () => Stats.TimeMs(() => ort.Run(n))),
                    (allHeads, () => AllHeadsOnce(rpc, n)),
                };
                // The order rotates: whichever runs after the other side starts with the caches that side left.
                for (var run = 0; run < runs; run++)
                    for (var k = 0; k < measures.Length; k++)
                    {
                        var (samples, call) = measures[(run + k) % measures.Length];
                        samples.Add(call());
                        Stats.Quiesce();
                    }
                rows[i] = rows[i] with { FirstHeatmap = Stats.Of(heatmap), Ort = Stats.Of(baseline), AllHeads = Stats.Of(allHeads) };
            }
        }

        var (coldInitialize, coldHeatmap) = ColdStart(Math.Max(5, runs / 3));

        var table = new StringBuilder();
        table.AppendLine("| tokens | analyze (in-process) | first heatmap over JSON-RPC | ONNX Runtime 1.31.1 | first heatmap ÷ ORT " +
            "| model view (all 91 thumbnails) | model view ÷ ORT |");
        table.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in rows)
            table.AppendLine($"| {row.Tokens} | {row.Analyze} | {row.FirstHeatmap} | {row.Ort} | {row.FirstHeatmap.Median / row.Ort.Median:F2}× " +
                $"| {row.AllHeads} | {row.AllHeads.Median / row.Ort.Median:F2}× |");
        var header = $"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Machine.CpuModel} ({Machine.VectorExtensions}), " +
            $"{Environment.ProcessorCount} cores, {threads} threads for both libtorch and ONNX Runtime; " +
            $"median (p90) of {runs} runs after warm-up, the backend's calls and ONNX Runtime's interleaved, milliseconds.";
        table.AppendLine();
        table.AppendLine("| tokens | attention flow, one token, all layers (in-process) | CPU per call |");
        table.AppendLine("|---:|---:|---:|");
        foreach (var row in flowRows) table.AppendLine($"| {row.Tokens} | {row.Wall} | {row.CpuMs:F0} |");
        table.AppendLine();
        table.AppendLine($"An empty JSON-RPC round trip (`initialize`) over stdio: {roundTrip} ms.");
        table.AppendLine();
        table.AppendLine($"Cold start, from spawning the backend to the first heatmap of 128 tokens (the converted model on disk, in the " +
            $"page cache): {coldHeatmap} ms; `initialize` answered after {coldInitialize} ms.");
        Console.WriteLine(header);
        Console.WriteLine();
        Console.Write(table);
        if (writeTo is not null) PerformanceDoc.Update(writeTo, "bench", header + "\n\n" + table);
        return 0;
    }

    /// <summary>Spawn → initialize answered, and spawn → first heatmap of 128 tokens, each over a new process.</summary>
    private static (Stats Initialize, Stats Heatmap) ColdStart(int runs)
    {
        var initialize = new List<double>();
        var heatmap = new List<double>();
        for (var i = 0; i < runs + 1; i++)
        {
            var clock = Stopwatch.StartNew();
            using var rpc = StdioClient.Start(BackendDll);
            rpc.Call("initialize", new JsonObject());
            var ready = clock.Elapsed.TotalMilliseconds;
            var firstHeatmap = FirstHeatmapOnce(rpc, 128);
            if (i == 0) continue;                                         // the first run only warms the page cache
            initialize.Add(ready);
            heatmap.Add(ready + firstHeatmap);
        }
        return (Stats.Of(initialize), Stats.Of(heatmap));
    }

    /// <summary>
    /// The first heatmap of <paramref name="tokens"/> tokens over JSON-RPC and ONNX Runtime's inference of as many,
    /// alternating which goes first, each call from idle (<see cref="Stats.Quiesce"/>), after 30 untimed calls of each.
    /// </summary>
    public static (Stats Heatmap, Stats Ort) InterleavedFirstHeatmap(StdioClient rpc, OrtRunner ort, int tokens, int runs)
    {
        for (var i = 0; i < 30; i++)
        {
            FirstHeatmapOnce(rpc, tokens);
            ort.Run(tokens);
        }
        var (heatmap, baseline) = (new List<double>(), new List<double>());
        for (var run = 0; run < 2 * runs; run++)
        {
            if ((run % 2 == 0) == (run / 2 % 2 == 0)) heatmap.Add(FirstHeatmapOnce(rpc, tokens));
            else baseline.Add(Stats.TimeMs(() => ort.Run(tokens)));
            Stats.Quiesce();
        }
        return (Stats.Of(heatmap), Stats.Of(baseline));
    }

    /// <summary>Time to first heatmap over JSON-RPC: analyze <paramref name="tokens"/> tokens and fetch layer 0, head 0; returns
    /// its milliseconds, the release that follows untimed (the panel shows the heatmap before it releases the analysis it
    /// replaced).</summary>
    private static double FirstHeatmapOnce(StdioClient rpc, int tokens)
    {
        var clock = Stopwatch.StartNew();
        var analysis = rpc.Call("attention/analyze", new JsonObject { ["text"] = Text, ["maxTokens"] = tokens });
        var id = analysis["analysisId"]!.GetValue<string>();
        var matrix = rpc.CallElement("attention/matrix", new JsonObject { ["analysisId"] = id, ["layer"] = 0, ["head"] = 0 });
        if (matrix.GetProperty("data").GetBytesFromBase64().Length != tokens * tokens * 4)
            throw new InvalidOperationException("bad matrix");
        var heatmapMs = clock.Elapsed.TotalMilliseconds;
        // As the panel does when the next analysis replaces this one: its buffers are reused, not first-touched again.
        rpc.Call("attention/release", new JsonObject { ["analysisId"] = id });
        return heatmapMs;
    }

    /// <summary>
    /// The panel's model view over JSON-RPC: analyze, then every thumbnail of the grid (each layer × head and the means,
    /// 48 × 48 max-pooled `attention/view`, without units) sent at once, as the webview sends them; then release.
    /// </summary>
    private static double AllHeadsOnce(StdioClient rpc, int tokens)
    {
        var clock = Stopwatch.StartNew();
        var analysis = rpc.Call("attention/analyze", new JsonObject { ["text"] = Text, ["maxTokens"] = tokens });
        var id = analysis["analysisId"]!.GetValue<string>();
        var (layers, heads) = (analysis["model"]!["layers"]!.GetValue<int>(), analysis["model"]!["heads"]!.GetValue<int>());
        var requests = new List<JsonObject>();
        for (var l = -1; l < layers; l++)
            for (var h = -1; h < heads; h++)
                requests.Add(new JsonObject { ["analysisId"] = id, ["layer"] = l, ["head"] = h, ["maxSize"] = 48, ["includeUnits"] = false });
        var views = rpc.CallAll("attention/view", requests);
        if (views.Any(v => !v.TryGetProperty("data", out _))) throw new InvalidOperationException("a thumbnail without data");
        var gridMs = clock.Elapsed.TotalMilliseconds;
        rpc.Call("attention/release", new JsonObject { ["analysisId"] = id });
        return gridMs;
    }

}

/// <summary>An ONNX Runtime session on the embedded model's ONNX graph (the one in the NuGet package), fed ids of any length.</summary>
internal sealed class OrtRunner : IDisposable
{
    private readonly string _onnxPath = Path.Combine(Path.GetTempPath(), $"attentionviz-bench-minilm-{Environment.ProcessId}.onnx");
    private readonly SessionOptions _options;
    private readonly InferenceSession _session;
    private readonly Dictionary<int, List<NamedOnnxValue>> _inputs = [];

    public OrtRunner(int threads)
    {
        using (var resource = EmbeddedModelPackage.OpenResource(EmbeddedModelPackage.OnnxResource))
        using (var file = File.Create(_onnxPath)) resource.CopyTo(file);
        _options = new SessionOptions
        {
            IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(_onnxPath, _options);
    }

    public void Run(int n)
    {
        if (!_inputs.TryGetValue(n, out var inputs))
        {
            var ids = new DenseTensor<long>(Enumerable.Range(0, n).Select(k => k == 0 ? 101L : k == n - 1 ? 102L : 2000L + k).ToArray(), [1, n]);
            var ones = new DenseTensor<long>(Enumerable.Repeat(1L, n).ToArray(), [1, n]);
            var zeros = new DenseTensor<long>(new long[n], [1, n]);
            _inputs[n] = inputs = _session.InputMetadata.Keys.Select(name => NamedOnnxValue.CreateFromTensor(name,
                name.Contains("mask") ? ones : name.Contains("type") ? zeros : ids)).ToList();
        }
        using var _ = _session.Run(inputs);
    }

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
        File.Delete(_onnxPath);
    }
}
