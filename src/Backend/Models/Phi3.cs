using System.Text.Json.Serialization;
using AttentionViz.Backend.Models.Core;

namespace AttentionViz.Backend.Models;

/// <summary>
/// config.json of model_type phi3 (HF's Phi3ForCausalLM: Phi-3, Phi-3.5, Phi-4-mini): Llama's decoder with one fused
/// qkv_proj (q, k, v rows in that order) and gate_up_proj (gate first), no projection biases, RoPE on the first
/// int(head_dim × partial_rotary_factor) dims of each head, rope_scaling longrope (short factors up to
/// original_max_position_embeddings, long ones beyond), and sliding_window on every layer when set.
/// </summary>
public sealed record Phi3Config : DecoderConfig
{
    public static readonly string[] Types = ["phi3"];

    public Phi3Config() => ModelType = "phi3";

    /// <summary>The pretrained length beside rope_scaling: longrope's short/long switch and its attention factor.</summary>
    [JsonPropertyName("original_max_position_embeddings")] public int? OriginalMaxPositionEmbeddings { get; init; }

    protected override IReadOnlyList<string> ModelTypes => Types;
    protected override bool UsesPartialRotary => true;

    public override int? WindowOf(int layer) => SlidingWindow;

    public override void Validate(string source)
    {
        base.Validate(source);
        // HF's Phi3Attention and Phi3MLP have no biases whatever the config says: a config asking for them is not Phi-3's.
        ConfigChecks.Require(source, !AttentionBias && !MlpBias, "attention_bias / mlp_bias = true: Phi-3's projections have no biases.");
        ConfigChecks.Require(source, RotaryDim >= 2 && RotaryDim % 2 == 0,
            $"partial_rotary_factor {PartialRotaryFactor} × head_dim {HeadDim} gives {RotaryDim} rotated dims; it must be even and at least 2.");
        ConfigChecks.Require(source, Rope is null || Rope.Type is "default" or "longrope",
            $"rope_scaling type '{Rope?.Type}' is not supported for phi3 (Phi-3 uses longrope).");
        if (OriginalMaxPositionEmbeddings is { } original) ConfigChecks.InRange(source, "original_max_position_embeddings", original, 2, 1 << 24);
    }

    public override DecoderSpec Decoder(string source) => DecoderSpec.Plain(this, source, OriginalMaxPositionEmbeddings) with
    {
        FusedProjections = true,
    };
}
