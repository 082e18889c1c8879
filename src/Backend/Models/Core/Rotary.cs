using System.Runtime.Intrinsics;
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
    [JsonPropertyName("short_factor")] public double[]? ShortFactor { get; init; }
    [JsonPropertyName("long_factor")] public double[]? LongFactor { get; init; }
    [JsonPropertyName("attention_factor")] public double? AttentionFactor { get; init; }

    /// <summary>transformers v5's rope_parameters for models whose layer types differ (Gemma 3): one set per type.</summary>
    [JsonPropertyName("full_attention")] public RopeScaling? FullAttention { get; init; }
    [JsonPropertyName("sliding_attention")] public RopeScaling? SlidingAttention { get; init; }

    public string Type => RopeType ?? LegacyType ?? "default";
}

/// <summary>
/// Rotary position embeddings in HF's rotate-half layout, with the inverse frequencies of HF's modeling_rope_utils
/// (default, linear, dynamic, llama3, longrope). Computed in float32 like HF. Any other rope_type is an error. The
/// rotated dimension may be less than head_dim (partial rotary, Phi-3): <see cref="Apply"/> then rotates the first part.
/// </summary>
public sealed class RotaryEmbedding
{
    public static readonly string[] SupportedTypes = ["default", "linear", "dynamic", "llama3", "longrope"];

    private readonly int _dim;
    private readonly double _theta;
    private readonly RopeScaling? _scaling;
    private readonly int _maxPositions;
    private readonly int _originalMaxPositions;

    /// <summary>longrope: cos and sin are multiplied by this (1 for every other type).</summary>
    public double AttentionScaling { get; } = 1.0;

    /// <param name="dim">the rotated dimension (head_dim, or int(head_dim × partial_rotary_factor))</param>
    /// <param name="theta">rope_theta</param>
    /// <param name="maxPositions">config.max_position_embeddings (the reference length of dynamic NTK)</param>
    /// <param name="originalMaxPositions">longrope: config.original_max_position_embeddings (Phi-3 keeps it beside
    /// rope_scaling), the length up to which the short factors apply</param>
    public RotaryEmbedding(int dim, double theta, RopeScaling? scaling, int maxPositions, string source = "config.json",
        int? originalMaxPositions = null)
    {
        if (dim <= 0 || dim % 2 != 0) throw new ModelLoadException($"{source}: the rotary dimension {dim} must be positive and even.");
        if (!(theta > 1) || !(theta <= MaxTheta))
            throw new ModelLoadException($"{source}: rope_theta {theta} must be greater than 1 and at most {MaxTheta:E0}.");
        Validate(scaling, source);
        (_dim, _theta, _scaling, _maxPositions) = (dim, theta, scaling, maxPositions);
        _originalMaxPositions = originalMaxPositions ?? scaling?.OriginalMaxPositionEmbeddings ?? maxPositions;
        if (scaling?.Type == "longrope") AttentionScaling = LongRopeAttentionFactor(scaling, originalMaxPositions, maxPositions, dim, source);
    }

    /// <summary>
    /// Whether inputs of <paramref name="a"/> and <paramref name="b"/> tokens rotate every position alike: not when one
    /// is beyond longrope's original window and the other is not, or (dynamic NTK) beyond max positions at another length.
    /// </summary>
    public bool SameTables(long a, long b) => _scaling?.Type switch
    {
        "longrope" => a > _originalMaxPositions == b > _originalMaxPositions,
        "dynamic" => Math.Max(a, _maxPositions) == Math.Max(b, _maxPositions),
        _ => true,
    };

    /// <summary>
    /// HF's _compute_longrope_parameters: with original_max_position_embeddings beside rope_scaling (Phi-3) the factor is
    /// max_position_embeddings / original, else rope_scaling's factor; the attention factor is rope_scaling's
    /// attention_factor, else √(1 + ln factor / ln original) (1 when factor ≤ 1).
    /// </summary>
    private static double LongRopeAttentionFactor(RopeScaling scaling, int? topLevelOriginal, int maxPositions, int dim, string source)
    {
        void Need(bool ok, string what)
        {
            if (!ok) throw new ModelLoadException($"{source}: rope_scaling of type 'longrope': {what}");
        }
        foreach (var (key, factors) in new[] { ("short_factor", scaling.ShortFactor), ("long_factor", scaling.LongFactor) })
            Need(factors is not null && factors.Length == dim / 2 && factors.All(f => double.IsFinite(f) && f > 0 && f <= MaxFactor),
                $"{key} must list {dim / 2} positive numbers (one per rotated frequency), got " +
                    $"{(factors is null ? "none" : $"{factors.Length}")}.");
        var original = topLevelOriginal ?? scaling.OriginalMaxPositionEmbeddings ?? maxPositions;
        Need(original > 1, $"original_max_position_embeddings {original} must be greater than 1.");
        var factor = topLevelOriginal is not null ? (double)maxPositions / original : scaling.Factor ?? 1.0;
        Need(double.IsFinite(factor) && factor > 0 && factor <= MaxFactor, $"factor {factor} must be from 0 to {MaxFactor}.");
        if (scaling.AttentionFactor is { } given)
        {
            Need(double.IsFinite(given) && given > 0 && given <= MaxFactor, $"attention_factor {given} must be a positive number.");
            return given;
        }
        return factor <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original));
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
            case "longrope":
                Need(scaling.ShortFactor is not null && scaling.LongFactor is not null, "short_factor and long_factor are required.");
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
        var powers = full(exponents.shape, theta, float32).pow(exponents);            // (dim/2)
        // longrope: 1 / (ext · base^(2i/dim)), ext the short factors up to original_max_position_embeddings, the long beyond.
        if (type == "longrope")
            powers = powers.mul(tensor(sequenceLength > _originalMaxPositions ? _scaling!.LongFactor! : _scaling!.ShortFactor!).to(float32));
        var inverse = powers.reciprocal();                                            // (dim/2)
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
    /// <returns>cos and sin, each (B, T, dim): the frequencies repeated twice (rotate-half layout), times
    /// <see cref="AttentionScaling"/></returns>
    public (Tensor Cos, Tensor Sin) CosSin(Tensor positions)
    {
        using var scope = NewDisposeScope();
        var inverse = InverseFrequencies(positions.max().item<long>() + 1);           // (dim/2)
        var freqs = positions.to(float32).unsqueeze(-1) * inverse;                    // (B, T, dim/2)
        var emb = cat([freqs, freqs], -1);                                            // (B, T, dim)
        var (cos, sin) = (emb.cos(), emb.sin());
        if (AttentionScaling != 1.0) (cos, sin) = (cos.mul_(AttentionScaling), sin.mul_(AttentionScaling));
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
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

    /// <summary>
    /// <see cref="Apply"/> on the heads of a projection, in one pass: <paramref name="split"/> (B, T, H, D) float32 with
    /// each row's D values side by side becomes (B, H, T, D) contiguous, every value x·cos + rotate_half(x)·sin in the
    /// same float32 steps as libtorch's (two rounded products, then their rounded sum; no fused multiply-add). libtorch's
    /// path made four temporaries and a transposed copy of each (at 4,096 tokens ~60 MB of fresh memory a layer for q and
    /// k, whose first-touch page faults cost more than the arithmetic). Null when rotation is partial (R &lt; D)
    /// or a shape or type is not this case: the caller then takes <see cref="Apply"/>.
    /// </summary>
    public static unsafe Tensor? ApplyToHeads(Tensor split, Tensor cos, Tensor sin)
    {
        if (split.Dimensions != 4 || split.dtype != ScalarType.Float32 || split.stride(3) != 1 || split.numel() == 0) return null;
        long b = split.shape[0], t = split.shape[1], heads = split.shape[2], d = split.shape[3];
        if (d % 2 != 0 || cos.Dimensions != 3 || cos.dtype != ScalarType.Float32 || sin.dtype != ScalarType.Float32
            || cos.shape[1] != t || cos.shape[2] != d || cos.shape[0] != b && cos.shape[0] != 1
            || !cos.is_contiguous() || !sin.is_contiguous() || !sin.shape.SequenceEqual(cos.shape)) return null;
        var result = empty(b, heads, t, d, dtype: ScalarType.Float32);
        var (x, strides) = AttentionKernel.RowsOf(split.permute(0, 2, 1, 3));      // (B, H, T, D) strides of the rows
        var (cosData, sinData, y) = ((nint)AttentionKernel.Data(cos), (nint)AttentionKernel.Data(sin), (nint)AttentionKernel.Data(result));
        var tableBatch = cos.shape[0] == 1 ? 0 : t * d;
        var half = (int)d / 2;
        KernelTeam.For(b * heads, plane =>
        {
            long batch = plane / heads, head = plane % heads;
            for (long token = 0; token < t; token++)
            {
                var row = new ReadOnlySpan<float>((float*)x + batch * strides.Batch + head * strides.Head + token * strides.Row, (int)d);
                var c = new ReadOnlySpan<float>((float*)cosData + batch * tableBatch + token * d, (int)d);
                var s = new ReadOnlySpan<float>((float*)sinData + batch * tableBatch + token * d, (int)d);
                var output = new Span<float>((float*)y + (plane * t + token) * d, (int)d);
                RotateRow(row, c, s, output, half);
            }
        });
        GC.KeepAlive(split);
        return result;
    }

    /// <summary>One row: y = x·cos + (−x₂, x₁)·sin over the halves x₁, x₂.</summary>
    private static void RotateRow(ReadOnlySpan<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> y, int half)
    {
        var j = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; j + 8 <= half; j += 8)
            {
                var (x1, x2) = (Vector256.Create(x.Slice(j, 8)), Vector256.Create(x.Slice(half + j, 8)));
                (x1 * Vector256.Create(cos.Slice(j, 8)) + -x2 * Vector256.Create(sin.Slice(j, 8))).CopyTo(y.Slice(j, 8));
                (x2 * Vector256.Create(cos.Slice(half + j, 8)) + x1 * Vector256.Create(sin.Slice(half + j, 8))).CopyTo(y.Slice(half + j, 8));
            }
        for (; j < half; j++)
        {
            var (x1, x2) = (x[j], x[half + j]);
            y[j] = x1 * cos[j] + -x2 * sin[j];
            y[half + j] = x2 * cos[half + j] + x1 * sin[half + j];
        }
    }

    /// <param name="x">(B, H, T, D)</param>
    /// <param name="cos">(B, T, R), R ≤ D: with R &lt; D (partial rotary) only the first R dimensions rotate, the rest pass</param>
    /// <param name="sin">(B, T, R)</param>
    /// <returns>x·cos + rotate_half(x)·sin on the first R dimensions, (B, H, T, D)</returns>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var rotated = cos.shape[^1];
        var part = rotated == x.shape[^1] ? x : x.narrow(-1, 0, rotated);
        var result = part * cos.unsqueeze(1) + RotateHalf(part) * sin.unsqueeze(1);
        if (rotated != x.shape[^1]) result = cat([result, x.narrow(-1, rotated, x.shape[^1] - rotated)], -1);
        return result.MoveToOuterDisposeScope();
    }
}
