using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Analysis;

using AttentionViz.Backend.Models;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Storage;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

// Measures, on this machine and in one run: in-process analyze latency, time to first heatmap over JSON-RPC
// (analyze + one matrix, the real backend process over stdio), and ONNX Runtime's plain inference of the same ONNX
// graph at the same thread count as the baseline, and attention flow for one token. Prints Markdown tables.
//   dotnet run -c Release --project bench/Backend.Bench -- [--runs N] [--write docs/performance.md] [--flow-only]

var runs = ArgValue("--runs") is { } r ? int.Parse(r) : 30;
var writeTo = ArgValue("--write");
var sizes = new[] { 16, 128, 512 };
var threads = TorchSetup.ThreadCount;
var text = string.Concat(Enumerable.Repeat("Attention shows which tokens a transformer reads when it writes each new one. ", 60));

Console.Error.WriteLine($"threads {threads}, runs {runs}, OMP_WAIT_POLICY={Environment.GetEnvironmentVariable("OMP_WAIT_POLICY")}");
var rows = new List<(int Tokens, Stats Analyze, Stats FirstHeatmap, Stats Ort)>();
var flowRows = new List<(int Tokens, Stats Wall, double CpuMs)>();

using (var host = new BackendHost())
{
    // Attention flow for the middle token through all 6 layers: the most expensive analysis request.
    foreach (var n in new[] { 128, 512 })
    {
        var a = host.Service.AnalyzeAsync(new AnalyzeOptions(text, null, n), CancellationToken.None).GetAwaiter().GetResult();
        var flowRuns = Math.Max(3, runs / 6);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Measure(flowRuns, () => AttentionFlow.Compute(a.Attention, n / 2, a.Attention.Layers - 1));
        var cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / (flowRuns + 3);
        flowRows.Add((n, wall, cpuMs));
        Console.Error.WriteLine($"attention flow, {n} tokens: {wall} ms wall, {cpuMs:F0} ms CPU per call");
    }
    if (Environment.GetCommandLineArgs().Contains("--flow-only")) return 0;
    foreach (var n in sizes)
    {
        var analyze = Measure(runs, () =>
        {
            var a = host.Service.AnalyzeAsync(new AnalyzeOptions(text, null, n), CancellationToken.None).GetAwaiter().GetResult();
            if (a.Tokens.Count != n) throw new InvalidOperationException($"expected {n} tokens, got {a.Tokens.Count}");
        });
        rows.Add((n, analyze, default, default));
    }
}

var backendDll = Path.Combine(AppContext.BaseDirectory, "attentionviz-backend.dll");
Stats roundTrip;
using (var rpc = StdioClient.Start(backendDll))
{
    rpc.Call("initialize", new JsonObject());
    roundTrip = Measure(runs, () => rpc.Call("initialize", new JsonObject()));
    for (var i = 0; i < rows.Count; i++)
    {
        var n = rows[i].Tokens;
        var firstHeatmap = Measure(runs, () =>
        {
            var analysis = rpc.Call("attention/analyze", new JsonObject { ["text"] = text, ["maxTokens"] = n });
            var id = analysis["analysisId"]!.GetValue<string>();
            var matrix = rpc.Call("attention/matrix", new JsonObject { ["analysisId"] = id, ["layer"] = 0, ["head"] = 0 });
            if (Convert.FromBase64String(matrix["data"]!.GetValue<string>()).Length != n * n * 4) throw new InvalidOperationException("bad matrix");
        });
        rows[i] = rows[i] with { FirstHeatmap = firstHeatmap };
    }
}

var onnxPath = Path.Combine(Path.GetTempPath(), "attentionviz-bench-minilm.onnx");
using (var resource = EmbeddedModelPackage.OpenResource(EmbeddedModelPackage.OnnxResource))
using (var file = File.Create(onnxPath)) resource.CopyTo(file);
using (var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL })
using (var session = new InferenceSession(onnxPath, options))
{
    for (var i = 0; i < rows.Count; i++)
    {
        var n = rows[i].Tokens;
        var ids = new DenseTensor<long>(Enumerable.Range(0, n).Select(k => k == 0 ? 101L : k == n - 1 ? 102L : 2000L + k).ToArray(), [1, n]);
        var ones = new DenseTensor<long>(Enumerable.Repeat(1L, n).ToArray(), [1, n]);
        var zeros = new DenseTensor<long>(new long[n], [1, n]);
        var inputs = session.InputMetadata.Keys.Select(name => NamedOnnxValue.CreateFromTensor(name,
            name.Contains("mask") ? ones : name.Contains("type") ? zeros : ids)).ToList();
        var ort = Measure(runs, () => { using var _ = session.Run(inputs); });
        rows[i] = rows[i] with { Ort = ort };
    }
}
File.Delete(onnxPath);

var table = new StringBuilder();
table.AppendLine($"| tokens | analyze (in-process) | first heatmap over JSON-RPC | ONNX Runtime 1.31.1 | first heatmap ÷ ORT |");
table.AppendLine("|---:|---:|---:|---:|---:|");
foreach (var row in rows)
    table.AppendLine($"| {row.Tokens} | {row.Analyze} | {row.FirstHeatmap} | {row.Ort} | {row.FirstHeatmap.Median / row.Ort.Median:F2}× |");
var cpu = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim() : "?";
var header = $"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {cpu}, {Environment.ProcessorCount} cores, {threads} threads for both libtorch and ONNX Runtime; median (p90) of {runs} runs after warm-up, milliseconds.";
table.AppendLine();
table.AppendLine("| tokens | attention flow, one token, all layers (in-process) | CPU per call |");
table.AppendLine("|---:|---:|---:|");
foreach (var row in flowRows) table.AppendLine($"| {row.Tokens} | {row.Wall} | {row.CpuMs:F0} |");
table.AppendLine();
table.AppendLine($"An empty JSON-RPC round trip (`initialize`) over stdio: {roundTrip} ms.");
Console.WriteLine(header);
Console.WriteLine();
Console.Write(table);
if (writeTo is not null) PerformanceDoc.Update(writeTo, header, table.ToString());
return 0;

static Stats Measure(int runs, Action action)
{
    for (var i = 0; i < 3; i++) action();
    var samples = new double[runs];
    for (var i = 0; i < runs; i++)
    {
        var clock = Stopwatch.StartNew();
        action();
        samples[i] = clock.Elapsed.TotalMilliseconds;
    }
    Array.Sort(samples);
    return new Stats(samples[runs / 2], samples[(int)Math.Min(runs - 1, Math.Ceiling(runs * 0.9) - 1)]);
}

static string? ArgValue(string name)
{
    var args = Environment.GetCommandLineArgs();
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

internal readonly record struct Stats(double Median, double P90)
{
    public override string ToString() => $"{Median:F1} ({P90:F1})";
}

/// <summary>A minimal LSP-framed JSON-RPC client for the real backend process.</summary>
internal sealed class StdioClient(Process process) : IDisposable
{
    private int _id;

    public static StdioClient Start(string dll)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("serve");
        start.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        var p = Process.Start(start)!;
        p.ErrorDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        return new StdioClient(p);
    }

    public JsonNode Call(string method, JsonObject parameters)
    {
        var id = ++_id;
        var body = Encoding.UTF8.GetBytes(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = parameters }.ToJsonString());
        var stdin = process.StandardInput.BaseStream;
        stdin.Write(Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n"));
        stdin.Write(body);
        stdin.Flush();
        var stdout = process.StandardOutput.BaseStream;
        var header = new StringBuilder();
        while (!header.ToString().EndsWith("\r\n\r\n")) header.Append((char)stdout.ReadByte());
        var length = int.Parse(header.ToString().Split("\r\n").First(l => l.StartsWith("Content-Length")).Split(':')[1]);
        var buffer = new byte[length];
        stdout.ReadExactly(buffer);
        var message = JsonNode.Parse(buffer)!;
        return message["result"] ?? throw new InvalidOperationException(message.ToJsonString());
    }

    public void Dispose()
    {
        process.Kill();
        process.Dispose();
    }
}

internal static class PerformanceDoc
{
    private const string Begin = "<!-- bench:begin -->", End = "<!-- bench:end -->";

    /// <summary>Replaces the measured block between the markers, keeping the rest of the document.</summary>
    public static void Update(string path, string header, string table)
    {
        var doc = File.Exists(path) ? File.ReadAllText(path) : $"# Performance\n\n{Begin}\n{End}\n";
        var start = doc.IndexOf(Begin, StringComparison.Ordinal);
        var end = doc.IndexOf(End, StringComparison.Ordinal);
        if (start < 0 || end < start) throw new InvalidOperationException($"{path} lacks the {Begin} … {End} markers.");
        File.WriteAllText(path, doc[..(start + Begin.Length)] + "\n" + header + "\n\n" + table + doc[end..]);
    }
}
