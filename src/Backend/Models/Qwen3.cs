using AttentionViz.Backend.Models.Core;

namespace AttentionViz.Backend.Models;

/// <summary>
/// config.json of model_type qwen3 (HF's Qwen3ForCausalLM): Qwen2's decoder with a per-head RMSNorm of q and k over
/// head_dim before RoPE (q_norm, k_norm), head_dim from the config (heads × head_dim need not be hidden_size), and
/// attention_bias on all four projections. Windows as Qwen2: use_sliding_window, then layer_types or max_window_layers.
/// </summary>
public sealed record Qwen3Config : DecoderConfig
{
    public static readonly string[] Types = ["qwen3"];

    /// <summary>HF's Qwen3Config defaults where a config may leave a key out (head_dim 128, unlike hidden / heads).</summary>
    public Qwen3Config()
    {
        ModelType = "qwen3";
        HeadDimension = 128;
    }

    protected override IReadOnlyList<string> ModelTypes => Types;

    public override int? WindowOf(int layer) => QwenWindow(layer);

    public override DecoderSpec Decoder(string source) => DecoderSpec.Plain(this, source) with
    {
        QueryKeyNorm = true,
        QkvBias = AttentionBias,
        OutputBias = AttentionBias,
    };
}
