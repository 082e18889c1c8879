using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Models.Core;

/// <summary>config.json's rope_scaling (or transformers v5's rope_parameters). "type" is the legacy spelling of "rope_type".</summary>
public sealed record RopeScaling
{
    [JsonPropertyName("rope_type")] public string? RopeType { get; init; }
    [JsonPropertyName("type")] public string? LegacyType { get; init; }
    [JsonPropertyName("factor")] public double? Factor { get; init; }
    [JsonPropertyName("low_freq_factor")] public double? LowFreqFactor { get; init; }
    [JsonPropertyName("high_freq_factor")] public double? HighFreqFactor { get; init; }
    [JsonPropertyName("original_max_position_embeddings")] public int? OriginalMaxPositionEmbeddings { get; init; }
    [JsonPropertyName("rope_theta")] public double? RopeTheta { get; init; }

    public string Type => RopeType ?? LegacyType ?? "default";
}

/// <summary>
/// Rotary position embeddings in HF's rotate-half layout, with the inverse frequencies of HF's modeling_rope_utils
/// (default, linear, dynamic, llama3). Computed in float32 like HF. Any other rope_type is an error.
/// </summary>
public sealed class RotaryEmbedding
{
    public static readonly string[] SupportedTypes = ["default", "linear", "dynamic", "llama3"];

    private readonly int _dim;
    private readonly double _theta;
    private readonly RopeScaling? _scaling;
    private readonly int _maxPositions;

    /// <param name="dim">the rotated dimension (head_dim)</param>
    /// <param name="theta">rope_theta</param>
    /// <param name="maxPositions">config.max_position_embeddings (the reference length of dynamic NTK)</param>
    public RotaryEmbedding(int dim, double theta, RopeScaling? scaling, int maxPositions, string source = "config.json")
    {
        if (dim <= 0 || dim % 2 != 0) throw new ModelLoadException($"{source}: the rotary dimension {dim} must be positive and even.");
        if (!(theta > 1) || !(theta <= MaxTheta))
            throw new ModelLoadException($"{source}: rope_theta {theta} must be greater than 1 and at most {MaxTheta:E0}.");
        Validate(scaling, source);
        (_dim, _theta, _scaling, _maxPositions) = (dim, theta, scaling, maxPositions);
    }

    /// <summary>Largest rope_theta and scaling factor taken: far above any model's (theta 1e6–1e7, factors ≤ 64), below
    /// values that turn every angle into noise or infinity.</summary>
    private const double MaxTheta = 1e12, MaxFactor = 1_000;

    public static void Validate(RopeScaling? scaling, string source)
    {
        if (scaling is null) return;
        void Need(bool ok, string what)
        {
            if (!ok) throw new ModelLoadException($"{source}: rope_scaling of type '{scaling.Type}': {what}");
        }
        switch (scaling.Type)
        {
            case "default":
                break;
            case "linear" or "dynamic":
                Need(scaling.Factor is >= 1 and <= MaxFactor, $"factor {scaling.Factor?.ToString() ?? "(missing)"} must be from 1 to {MaxFactor}.");
                break;
            case "llama3":
                Need(scaling.Factor is >= 1 and <= MaxFactor, $"factor {scaling.Factor?.ToString() ?? "(missing)"} must be from 1 to {MaxFactor}.");
                Need(scaling.LowFreqFactor is > 0 and <= MaxFactor, "low_freq_factor is missing or not a positive number.");
                Need(scaling.HighFreqFactor is { } high && high > scaling.LowFreqFactor && high <= MaxFactor,
                    "high_freq_factor is missing or not greater than low_freq_factor.");
                Need(scaling.OriginalMaxPositionEmbeddings is > 0, "original_max_position_embeddings is missing.");
                break;
            default:
                throw new ModelLoadException(
                    $"{source}: rope_scaling type '{scaling.Type}' is not supported (supported: {string.Join(", ", SupportedTypes)}).");
        }
    }

    /// <summary>HF's inverse frequencies for a sequence of <paramref name="sequenceLength"/> tokens.</summary>
    /// <returns>(dim/2) float32</returns>
    public Tensor InverseFrequencies(long sequenceLength)
    {
        using var scope = NewDisposeScope();
        var type = _scaling?.Type ?? "default";
        var theta = _theta;
        if (type == "dynamic" && sequenceLength > _maxPositions)
        {
            // _compute_dynamic_ntk_parameters: base · ((factor · seq_len / max_pos) − (factor − 1)) ^ (dim / (dim − 2))
            var factor = _scaling!.Factor!.Value;
            theta *= Math.Pow(factor * sequenceLength / _maxPositions - (factor - 1), (double)_dim / (_dim - 2));
        }
        // 1 / base ^ (arange(0, dim, 2) / dim), in float32
        var exponents = arange(0, _dim, 2, dtype: int64).to(float32).div_(_dim);
        var inverse = full(exponents.shape, theta, float32).pow(exponents).reciprocal();   // (dim/2)
        if (type == "linear") inverse = inverse.div(_scaling!.Factor!.Value);
        if (type == "llama3") inverse = Llama3(inverse, _scaling!);
        return inverse.MoveToOuterDisposeScope();
    }

    // _compute_llama3_parameters: long wavelengths are divided by factor, short ones kept, the band between smoothed.
    private static Tensor Llama3(Tensor inverse, RopeScaling s)
    {
        double factor = s.Factor!.Value, low = s.LowFreqFactor!.Value, high = s.HighFreqFactor!.Value;
        double oldContext = s.OriginalMaxPositionEmbeddings!.Value;
        var lowFreqWavelen = oldContext / low;
        var highFreqWavelen = oldContext / high;
        var wavelen = inverse.reciprocal().mul(2 * Math.PI);
        var scaled = where(wavelen > lowFreqWavelen, inverse / factor, inverse);
        var smooth = (oldContext / wavelen - low) / (high - low);
        var smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
        var medium = (wavelen < highFreqWavelen).logical_not().logical_and((wavelen > lowFreqWavelen).logical_not());
        return where(medium, smoothed, scaled);
    }

    /// <param name="positions">(B, T) int64 position ids</param>
    /// <returns>cos and sin, each (B, T, dim): the frequencies repeated twice (rotate-half layout)</returns>
    public (Tensor Cos, Tensor Sin) CosSin(Tensor positions)
    {
        using var scope = NewDisposeScope();
        var inverse = InverseFrequencies(positions.max().item<long>() + 1);           // (dim/2)
        var freqs = positions.to(float32).unsqueeze(-1) * inverse;                    // (B, T, dim/2)
        var emb = cat([freqs, freqs], -1);                                            // (B, T, dim)
        return (emb.cos().MoveToOuterDisposeScope(), emb.sin().MoveToOuterDisposeScope());
    }

    /// <summary>(x1, x2) → (−x2, x1) over the two halves of the last dimension.</summary>
    public static Tensor RotateHalf(Tensor x)
    {
        var half = x.shape[^1] / 2;
        using var x1 = x.narrow(-1, 0, half);
        using var x2 = x.narrow(-1, half, half);
        using var minus = x2.neg();
        return cat([minus, x1], -1);
    }

    /// <param name="x">(B, H, T, D)</param>
    /// <param name="cos">(B, T, D)</param>
    /// <param name="sin">(B, T, D)</param>
    /// <returns>x·cos + rotate_half(x)·sin, (B, H, T, D)</returns>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        return (x * cos.unsqueeze(1) + RotateHalf(x) * sin.unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
