using System.Text.Json.Nodes;

namespace AttentionViz.Backend.Bench;

/// <summary>
/// Resident memory of one backend as distinct model folders are analysed in turn (the user switching models): the
/// registry keeps at most two loaded, so RSS should level off after the second instead of growing per folder.
/// <c>--backend DLL</c> measures another build (an older one, to compare).
/// </summary>
internal static class ModelsBench
{
    /// <summary>The extension tests' small Llama (4 layers × 4 heads, hidden 128, the Llama-2 vocabulary): 33 MB of
    /// float32 weights, random, with the real tokenizer.</summary>
    private static DecoderShape Small { get; } = new("llama-small", "small Llama (4 × 4, hidden 128)", "llama", "LlamaForCausalLM",
        4, 4, 2, 128, 256, 4096, 10_000, 1e-5, "float32", "tokenizer-llama2", 32_000, [64]);

    public static int Run()
    {
        var count = int.Parse(BenchArgs.Value("--models") ?? "33");
        var source = BenchModels.Ensure(Small, LongInputBench.RepositoryRoot());
        var folders = Enumerable.Range(0, count).Select(i =>
        {
            // Distinct folders (each its own model id) with the same bytes.
            var folder = Path.Combine(BenchModels.CacheRoot, $"models-bench-{i:D2}");
            Directory.CreateDirectory(folder);
            foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
                if (!File.Exists(Path.Combine(folder, file))) File.Copy(Path.Combine(source, file), Path.Combine(folder, file));
            return folder;
        }).ToList();

        Console.WriteLine($"CPU: {Machine.CpuModel} ({Machine.VectorExtensions})");
        Console.WriteLine($"{Small.Label}, {count} folders with random weights, analysed in turn by one backend, each analysis released");
        Console.WriteLine();
        Console.WriteLine("| folders analysed | RSS (MB) |");
        Console.WriteLine("|---:|---:|");
        using var rpc = StdioClient.Start(BenchArgs.Value("--backend") ?? MiniLmBench.BackendDll);
        rpc.Call("initialize", new JsonObject { ["clientName"] = "Backend.Bench" });
        long Rss() => Machine.StatusBytes(rpc.ProcessId, "VmRSS") >> 20;
        Console.WriteLine($"| 0 | {Rss()} |");
        for (var i = 0; i < folders.Count; i++)
        {
            var result = rpc.Call("attention/analyze", new JsonObject
            {
                ["text"] = "The quick brown fox jumps over the lazy dog, again and again.",
                ["modelId"] = folders[i],
            });
            rpc.Call("attention/release", new JsonObject { ["analysisId"] = result["analysisId"]!.GetValue<string>() });
            if (i < 4 || (i + 1) % 8 == 0 || i == folders.Count - 1) Console.WriteLine($"| {i + 1} | {Rss()} |");
        }
        return 0;
    }
}
