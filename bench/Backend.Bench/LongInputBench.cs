using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Models;

namespace AttentionViz.Backend.Bench;

/// <summary>One (shape, size): what a user waits for on a long prompt, measured in one fresh backend process.</summary>
/// <param name="Tokens">tokens analyzed (the size, or a little less at the model's window: see <see cref="LongInputBench.Headroom"/>)</param>
/// <param name="AnalyzeMs">attention/analyze over JSON-RPC, model already loaded</param>
/// <param name="LoadPeakRssBytes">the backend's VmHWM once the model is loaded, before the measured analyses</param>
/// <param name="PeakRssBytes">the backend's VmHWM at the end (after the re-analysis), or at the refusal</param>
/// <param name="ReusedTokens">the re-analysis's reusedTokens: the prefix it took from the first analysis</param>
/// <param name="Refused">the -32004 message when the backend refused the size</param>
/// <param name="Failed">any other failure (an error reply, the process dying)</param>
/// <param name="OthersCpuPercent">the share of the CPUs other processes took while the row ran: above a few percent the
/// times are too high</param>
internal sealed record LongRow(
    string Shape, int Size, int? Tokens = null, double? LoadMs = null, double? AnalyzeMs = null, double? Gflops = null,
    double? FirstHeadMs = null, double? MeanAllMs = null, double? RowMs = null, double? ColumnMs = null, double? ReanalyzeMs = null,
    int? ReanalyzeTokens = null, int? ReusedTokens = null, long? MemoryBytes = null, long? LoadPeakRssBytes = null, long? PeakRssBytes = null,
    int ProgressReports = 0,
    string? Refused = null, string? Failed = null, double? OthersCpuPercent = null);

/// <summary>A whole run, as --save writes it and --before reads it back.</summary>
internal sealed record LongRun(string Measured, string Commit, string Machine, double LoadAtStart, double OthersCpuPercent, string? CacheMb,
    string? MiniLm, List<LongRow> Rows, Dictionary<string, double>? GemmGflops = null, string? GemmPath = null);

/// <summary>
/// Long prompts on decoder shapes with random weights and real tokenizers: analyze, the first pooled head, the pooled mean
/// over everything, a hover row and column, re-analysis after an appended sentence, and peak RSS, through the real
/// backend process over JSON-RPC on stdio, one process per (shape, size) so that the peak is the size's own.
/// </summary>
internal static class LongInputBench
{
    /// <summary>Tokens kept free below the window, so that the re-analysis with its appended sentence still fits.</summary>
    public const int Headroom = 32;
    public const int HoverSamples = 9;

    /// <summary>Prompts up to this many tokens are analysed three times (the median is reported), longer ones once.</summary>
    public const int AnalyzeRepeatsUpTo = 1024;
    private const int PooledSize = 512;
    private const string Marker = "bench-long";
    private const string AppendedSentence =
        " Finally, the question: which of the paragraphs above does the model read when it answers, and how much?";
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static int Run()
    {
        var root = RepositoryRoot();
        var shapes = BenchArgs.Value("--shapes") is { } names
            ? names.Split(',').Select(n => DecoderShape.All.FirstOrDefault(s => s.Name == n)
                ?? throw new ArgumentException($"unknown shape '{n}' (known: {string.Join(", ", DecoderShape.All.Select(s => s.Name))})")).ToList()
            : [.. DecoderShape.All];
        int[]? sizes = BenchArgs.Value("--sizes") is { } list ? [.. list.Split(',').Select(int.Parse)] : null;
        var maxSize = BenchArgs.Value("--max-size") is { } m ? int.Parse(m) : int.MaxValue;
        int[] SizesOf(DecoderShape shape) => [.. (sizes ?? shape.DefaultSizes).Where(n => n <= maxSize)];
        var runs = BenchArgs.Value("--runs") is { } r ? int.Parse(r) : 15;
        var before = BenchArgs.Value("--before") is { } beforePath ? JsonSerializer.Deserialize<LongRun>(File.ReadAllText(beforePath), Json) : null;

        var loadAtStart = Machine.LoadAverage;
        var machine = $"{Machine.CpuModel} ({Machine.VectorExtensions}), {Environment.ProcessorCount} cores, {TorchSetup.ThreadCount} threads";
        Console.Error.WriteLine($"{machine}; load average {loadAtStart:F2}; OMP_WAIT_POLICY={Environment.GetEnvironmentVariable("OMP_WAIT_POLICY")}");
        if (loadAtStart > 0.5) Console.Error.WriteLine("warning: the machine is not quiet (load average above 0.5): the times will be too high.");

        var runStart = Machine.Ticks();
        var miniLm = BenchArgs.Has("--no-minilm") ? null : MeasureMiniLm(runs);
        // Issue #15: the forward against the fp32 GEMM throughput of this machine in this run (the shape's MLP product).
        var gemm = shapes.ToDictionary(shape => shape.Name, GemmGflops);
        var prompt = Prompt(root, shapes.SelectMany(SizesOf).DefaultIfEmpty(0).Max());
        var rows = new List<LongRow>();
        foreach (var shape in shapes)
        {
            var folder = BenchModels.Ensure(shape, root);
            foreach (var size in SizesOf(shape))
            {
                var rowStart = Machine.Ticks();
                var row = Measure(shape, folder, size, prompt);
                row = row with { OthersCpuPercent = Math.Round(Machine.Ticks().OthersPercentSince(rowStart), 1) };
                Console.Error.WriteLine(JsonSerializer.Serialize(row, Json));
                rows.Add(row);
            }
        }

        var run = new LongRun($"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC", Commit(root), machine, loadAtStart,
            Math.Round(Machine.Ticks().OthersPercentSince(runStart), 1),
            Environment.GetEnvironmentVariable("ATTENTIONVIZ_CACHE_MB"), miniLm, rows, gemm, Models.Core.LinearKernel.Selected.ToString());
        if (BenchArgs.Value("--save") is { } savePath) File.WriteAllText(savePath, JsonSerializer.Serialize(run, Json) + "\n");
        var report = LongInputReport.Markdown(run, shapes, before);
        Console.WriteLine(report);
        if (BenchArgs.Value("--write") is { } writeTo) PerformanceDoc.Update(writeTo, Marker, report);
        return rows.Any(row => row.Failed is not null) ? 1 : 0;
    }

    /// <summary>
    /// GFLOP/s of the backend's own linear path (LinearKernel, both threads) on the shape's MLP product at 1,024 rows
    /// (x·W_upᵀ, the forward's largest), median of 15 after warm-up; libtorch's when the path is torch.
    /// </summary>
    private static double GemmGflops(DecoderShape shape)
    {
        TorchSetup.EnsureInitialized();
        const int m = 1024;
        int k = shape.Hidden, n = shape.Intermediate;
        using var scope = TorchSharp.torch.NewDisposeScope();
        var x = TorchSharp.torch.randn(m, k);
        var w = TorchSharp.torch.randn(n, k);
        var a = x.data<float>().ToArray();
        var weights = w.data<float>().ToArray();
        var path = Models.Core.LinearKernel.Selected;
        if (path != Models.Core.LinearKernel.Path.Torch) Models.Core.LinearKernel.Pack(weights, n, k);
        var c = new float[m * n];
        Action multiply = path == Models.Core.LinearKernel.Path.Torch
            ? () => TorchSharp.torch.nn.functional.linear(x, w).Dispose()
            : () => Models.Core.LinearKernel.Multiply(path, a, weights, [], c, m, n, k);
        for (var i = 0; i < 5; i++) multiply();
        var times = Enumerable.Range(0, 15).Select(_ => Stats.TimeMs(multiply)).Order().ToList();
        var gflops = 2.0 * m * n * k / (times[times.Count / 2] * 1e6);
        Console.Error.WriteLine($"{shape.Name}: fp32 GEMM {m}×{k} · {k}×{n} on {path}: {gflops:F0} GFLOP/s");
        return gflops;
    }

    private static LongRow Measure(DecoderShape shape, string folder, int size, string prompt)
    {
        var row = new LongRow(shape.Name, size);
        using var rpc = StdioClient.Start(MiniLmBench.BackendDll);
        var progressReports = 0;
        rpc.OnNotification = (method, p) =>
        {
            if (method == "$/progress" && p?["value"]?["kind"]?.GetValue<string>() == "report") progressReports++;
        };
        try
        {
            rpc.Call("initialize", new JsonObject { ["clientName"] = "Backend.Bench" });
            // Loading the model (and the JIT's first pass) is timed apart: the analyses below then time the forward alone.
            var loadMs = Stats.TimeMs(() => Release(rpc, Analyze(rpc, folder, "A short warm-up.", 16)));
            row = row with { LoadMs = loadMs, LoadPeakRssBytes = Machine.StatusBytes(rpc.ProcessId, "VmHWM") };

            var maxTokens = Math.Min(size, shape.MaxPositions - Headroom);
            JsonNode first = null!;
            double analyzeMs;
            try
            {
                // Up to 1,024 tokens the forward is short enough for its first run's JIT (the long path's code, which the
                // 16-token warm-up does not reach) and the host's noise to weigh: the median of three analyses, each
                // released before the next so that none reuses another's prefix. Longer prompts: one.
                var times = new List<double>();
                for (var repeat = 0; repeat < (maxTokens <= AnalyzeRepeatsUpTo ? 3 : 1); repeat++)
                {
                    if (repeat > 0) Release(rpc, first);
                    progressReports = 0;
                    times.Add(Stats.TimeMs(() => first = Analyze(rpc, folder, prompt, maxTokens, workDoneToken: "bench")));
                    if (first["reusedTokens"]?.GetValue<int>() is > 0) throw new InvalidOperationException("a repeat reused an earlier analysis");
                }
                analyzeMs = times.Order().ElementAt(times.Count / 2);
            }
            catch (RpcException e) when (e.Code == -32004)
            {
                return row with { Refused = e.Message, PeakRssBytes = Machine.StatusBytes(rpc.ProcessId, "VmHWM") };
            }
            var id = first["analysisId"]!.GetValue<string>();
            var tokens = first["tokens"]!.AsArray().Count;
            if (first["truncated"]?.GetValue<bool>() != true)
                throw new InvalidOperationException($"the prompt ({prompt.Length} characters) is shorter than {maxTokens} tokens");
            row = row with
            {
                Tokens = tokens,
                AnalyzeMs = analyzeMs,
                Gflops = shape.ForwardFlops(tokens) / (analyzeMs * 1e6),
                MemoryBytes = first["memoryBytes"]?.GetValue<long>(),
                ProgressReports = progressReports,
                FirstHeadMs = Stats.TimeMs(() => View(rpc, id, layer: 0, head: 0)),
                MeanAllMs = Stats.TimeMs(() => View(rpc, id, layer: -1, head: -1)),
                RowMs = HoverMs(rpc, id, tokens, "from"),
                ColumnMs = HoverMs(rpc, id, tokens, "to"),
            };

            // The user typed a sentence at the end: the same prefix, then the new sentence (as the extension, the old
            // analysis is released once the new one is there).
            var edited = prompt[..first["truncatedAt"]!.GetValue<int>()] + AppendedSentence;
            JsonNode second = null!;
            var reanalyzeMs = Stats.TimeMs(() => second = Analyze(rpc, folder, edited, maxTokens + Headroom));
            Release(rpc, first);
            if (second["truncated"]?.GetValue<bool>() == true) throw new InvalidOperationException("the re-analysis was truncated");
            return row with
            {
                ReanalyzeMs = reanalyzeMs,
                ReanalyzeTokens = second["tokens"]!.AsArray().Count,
                ReusedTokens = second["reusedTokens"]?.GetValue<int>(),
                PeakRssBytes = Machine.StatusBytes(rpc.ProcessId, "VmHWM"),
            };
        }
        catch (Exception e) when (e is RpcException or IOException or InvalidOperationException)
        {
            var detail = e is IOException ? $" Backend log: {rpc.StderrTail.Split('\n').LastOrDefault(l => l.Length > 0)}" : "";
            return row with { Failed = e.Message + detail, PeakRssBytes = Machine.StatusBytes(rpc.ProcessId, "VmHWM") };
        }
    }

    private static JsonNode Analyze(StdioClient rpc, string folder, string text, int maxTokens, string? workDoneToken = null)
    {
        var request = new JsonObject { ["text"] = text, ["modelId"] = folder, ["maxTokens"] = maxTokens };
        if (workDoneToken is not null) request["workDoneToken"] = workDoneToken;
        return rpc.Call("attention/analyze", request);
    }

    private static void Release(StdioClient rpc, JsonNode analysis) =>
        rpc.Call("attention/release", new JsonObject { ["analysisId"] = analysis["analysisId"]!.GetValue<string>() });

    /// <summary>The heatmap as the panel asks for it: pooled to at most 512 × 512.</summary>
    private static void View(StdioClient rpc, string id, int layer, int head)
    {
        var view = rpc.Call("attention/view", new JsonObject { ["analysisId"] = id, ["layer"] = layer, ["head"] = head, ["maxSize"] = PooledSize });
        var cells = view["rows"]!.GetValue<int>() * view["cols"]!.GetValue<int>();
        if (Convert.FromBase64String(view["data"]!.GetValue<string>()).Length != cells * sizeof(float) || view["rows"]!.GetValue<int>() > PooledSize)
            throw new InvalidOperationException($"attention/view answered a malformed {view["rows"]}×{view["cols"]} matrix");
    }

    /// <summary>The editor's hover and tint: one row (direction "from") or column ("to") of layer 0, head 0 (the panel's
    /// first view), median over tokens spread through the prompt.</summary>
    private static double HoverMs(StdioClient rpc, string id, int tokens, string direction)
    {
        var samples = Enumerable.Range(0, HoverSamples).Select(k =>
        {
            var token = (int)((long)(tokens - 1) * (k + 1) / HoverSamples);
            return Stats.TimeMs(() =>
            {
                var answer = rpc.Call("attention/row", new JsonObject
                {
                    ["analysisId"] = id, ["layer"] = 0, ["head"] = 0, ["token"] = token, ["direction"] = direction,
                });
                if (answer["scores"]!.AsArray().Count != tokens) throw new InvalidOperationException("attention/row answered the wrong length");
            });
        }).Order().ToList();
        return samples[HoverSamples / 2];
    }

    /// <summary>
    /// The short-input comparison in the same run: MiniLM's first heatmap at 128 tokens and ONNX Runtime's, and with
    /// --baseline-backend DLL an earlier build's first heatmap too (each backend in its own process, measured in two
    /// alternating halves so that a drift of the machine hits both alike).
    /// </summary>
    private static string MeasureMiniLm(int runs)
    {
        const int tokens = 128;
        var baselineDll = BenchArgs.Value("--baseline-backend");
        using var ort = new OrtRunner(TorchSetup.ThreadCount);
        // As the short-input bench measures it: interleaved with ONNX Runtime, each call from idle, past the JIT's tiers.
        (Stats Heatmap, Stats Ort) Both(string dll, int count)
        {
            using var rpc = StdioClient.Start(dll);
            rpc.Call("initialize", new JsonObject());
            return MiniLmBench.InterleavedFirstHeatmap(rpc, ort, tokens, count);
        }
        static Stats Mean(IEnumerable<Stats> s) => new(s.Average(x => x.Median), s.Average(x => x.P90));
        Stats heatmap, baseline;
        var baselineLine = "";
        if (baselineDll is null) (heatmap, baseline) = Both(MiniLmBench.BackendDll, runs);
        else
        {
            var halves = Enumerable.Range(0, 2).Select(_ => (Before: Both(baselineDll, runs), Now: Both(MiniLmBench.BackendDll, runs))).ToList();
            heatmap = Mean(halves.Select(h => h.Now.Heatmap));
            baseline = Mean(halves.SelectMany(h => new[] { h.Now.Ort, h.Before.Ort }));
            var before = Mean(halves.Select(h => h.Before.Heatmap));
            baselineLine = $"; the baseline backend ({Path.GetFileName(Path.GetDirectoryName(baselineDll))}, {baselineDll}) " +
                $"{before} ms, now/before {heatmap.Median / before.Median:F3}";
        }
        var line = $"MiniLM at {tokens} tokens, median (p90) of {runs}, interleaved: first heatmap over JSON-RPC {heatmap} ms, " +
            $"ONNX Runtime {baseline} ms ({heatmap.Median / baseline.Median:F2}×){baselineLine}";
        Console.Error.WriteLine(line);
        return line;
    }

    /// <summary>A long natural-language prompt: the repository's README and docs (not performance.md, which this rewrites),
    /// repeated until it surely holds <paramref name="tokens"/> tokens.</summary>
    private static string Prompt(string root, int tokens)
    {
        var parts = new[] { "README.md", "docs/architecture.md", "docs/models.md", "docs/protocol.md" }
            .Select(p => File.ReadAllText(Path.Combine(root, p)).Trim()).ToList();
        var text = new StringBuilder();
        while (text.Length < 8L * tokens + 4_096) foreach (var part in parts) text.Append(part).Append("\n\n");
        return text.ToString();
    }

    internal static string RepositoryRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "AttentionViz.sln"))) return dir.FullName;
        throw new InvalidOperationException("run the bench from inside the repository (no AttentionViz.sln found above it)");
    }

    private static string Commit(string root)
    {
        try
        {
            var start = new ProcessStartInfo("git", ["-C", root, "describe", "--always", "--dirty"]) { RedirectStandardOutput = true };
            using var git = Process.Start(start)!;
            var commit = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit();
            return git.ExitCode == 0 ? commit : "unknown";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    internal static string Number(double value, string format = "N0") => value.ToString(format, CultureInfo.InvariantCulture);
}
