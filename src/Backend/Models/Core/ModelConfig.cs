using System.Text.Json;
using System.Text.Json.Serialization;

namespace AttentionViz.Backend.Models.Core;

/// <summary>The keys of a config.json that say which family reads the rest, and those that every family checks.</summary>
public sealed record ConfigHeader
{
    [JsonPropertyName("model_type")] public string? ModelType { get; init; }
    [JsonPropertyName("architectures")] public string?[]? Architectures { get; init; }

    /// <summary>A quantized checkpoint's scheme (GPTQ, AWQ, bitsandbytes, …): refused, the weights are not floats.</summary>
    [JsonPropertyName("quantization_config")] public JsonElement? QuantizationConfig { get; init; }

    /// <summary>The dtype the weights were saved in (transformers v4 torch_dtype, v5 dtype).</summary>
    [JsonPropertyName("torch_dtype")] public JsonElement? TorchDtype { get; init; }
    [JsonPropertyName("dtype")] public JsonElement? Dtype { get; init; }
}

/// <summary>Reads a Hugging Face config.json into a family's config record. Unknown keys are ignored.</summary>
public static class ConfigJson
{
    /// <summary>config.json files are small; anything bigger is not a config.</summary>
    public const long MaxBytes = 4 * 1024 * 1024;

    private static readonly JsonSerializerOptions Options = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
    };

    public static T Load<T>(string path) where T : class
    {
        var bytes = Platform.UserFile.ReadAllBytes(path, MaxBytes, "config.json", what => new ModelLoadException($"{path}: {what}"));
        T? config;
        try
        {
            config = JsonSerializer.Deserialize<T>(bytes, Options);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{path} is not a valid config: {e.Message}", e);
        }
        return config ?? throw new ModelLoadException($"{path} is empty.");
    }
}

/// <summary>What a config says about a model's size and shape, known without weights (for models/list and checks).</summary>
public sealed record ModelShape(
    string Architecture, int Layers, int Heads, int KeyValueHeads, int HiddenSize, int VocabularySize,
    int MaxPositions, bool Causal, int? SlidingWindow, long EstimatedParameters);

/// <summary>A family's config record.</summary>
public interface IModelConfig
{
    /// <summary>Rejects nonsensical or absurdly large configs before anything is allocated.</summary>
    void Validate(string source);

    ModelShape Shape { get; }

    /// <summary>What a user should know about how the checkpoint is read (e.g. a multimodal model's images are not), or null.</summary>
    string? Note => null;
}

/// <summary>Range checks shared by the families' Validate methods.</summary>
public static class ConfigChecks
{
    public const long MaxParameters = 200_000_000_000;

    public static void Require(string source, bool ok, string what)
    {
        if (!ok) throw new ModelLoadException($"{source}: {what}");
    }

    /// <summary>A normalisation epsilon: finite and in (0, 0.1]; 0 divides by zero on a constant row, 1e308 erases the input.</summary>
    public static void Epsilon(string source, string key, double value) =>
        Require(source, double.IsFinite(value) && value > 0 && value <= 0.1, $"{key} = {value} must be a small positive number (0 < eps ≤ 0.1).");

    /// <summary>A finite value in [min, max] (config.json numbers like 1e400 parse as infinity).</summary>
    public static void InRange(string source, string key, double value, double min, double max) =>
        Require(source, double.IsFinite(value) && value >= min && value <= max, $"{key} = {value} is out of range ({min}..{max}).");

    public static void InRange(string source, string key, long value, long min, long max) =>
        Require(source, value >= min && value <= max, $"{key} = {value} is out of range ({min}..{max}).");

    /// <summary>The dtypes whose tensors the loader converts to float32 (safetensors F32, F16, BF16, F64).</summary>
    public static readonly string[] ReadableDtypes = ["float32", "float16", "bfloat16", "float64"];

    /// <summary>Refuses quantized checkpoints and weight dtypes the loader cannot read, naming the key and its value.</summary>
    public static void Header(string source, ConfigHeader header)
    {
        if (header.QuantizationConfig is { ValueKind: not JsonValueKind.Null } quantization)
        {
            var method = quantization.ValueKind == JsonValueKind.Object && quantization.TryGetProperty("quant_method", out var m)
                ? m.ToString() : quantization.GetRawText();
            throw new ModelLoadException($"{source}: quantization_config (quant_method '{method}') describes a quantized checkpoint; " +
                "AttentionViz computes attention from float weights (float32, float16, bfloat16) and cannot load it. " +
                "Use the model's unquantized checkpoint.");
        }
        foreach (var (key, value) in new[] { ("torch_dtype", header.TorchDtype), ("dtype", header.Dtype) })
            if (value is { ValueKind: not JsonValueKind.Null } dtype)
                Require(source, dtype.ValueKind == JsonValueKind.String && ReadableDtypes.Contains(dtype.GetString()),
                    $"{key} {dtype.GetRawText()} cannot be read: the weights must be one of {string.Join(", ", ReadableDtypes)}.");
    }

    public static void Common(string source, ModelShape shape)
    {
        InRange(source, "hidden size", shape.HiddenSize, 1, 65_536);
        InRange(source, "number of layers", shape.Layers, 1, 1_024);
        InRange(source, "number of attention heads", shape.Heads, 1, 1_024);
        InRange(source, "vocabulary size", shape.VocabularySize, 1, 1 << 24);
        InRange(source, "max positions", shape.MaxPositions, 1, 1 << 24);
        Require(source, shape.EstimatedParameters is > 0 and <= MaxParameters,
            $"the config describes about {shape.EstimatedParameters:N0} parameters; " +
                $"more than {MaxParameters:N0} is not a model this backend can load.");
    }
}
