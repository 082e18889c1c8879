using System.Text.Json.Serialization;
using AttentionViz.Backend.Models.Core;

namespace AttentionViz.Backend.Models;

/// <summary>
/// What Gemma 2 and Gemma 3 share (HF's Gemma2ForCausalLM, Gemma3ForCausalLM): RMSNorm as x·(1 + w), a norm after the
/// attention and around the MLP (pre/post_feedforward_layernorm), embeddings × √hidden, score scale
/// query_pre_attn_scalar^-½, optional soft-capping of the scores and of the logits, gelu (tanh) MLP, tied LM head.
/// </summary>
public abstract record GemmaConfig : DecoderConfig
{
    [JsonPropertyName("hidden_activation")] public string? HiddenActivation { get; init; }

    /// <summary>HF's Gemma defaults shared by both versions, for keys a config may leave out.</summary>
    protected GemmaConfig()
    {
        (VocabSize, HiddenSize, IntermediateSize, NumLayers, NumHeads, NumKeyValueHeads, HeadDimension) = (256_000, 2304, 9216, 26, 8, 4, 256);
        (RmsNormEps, TieWordEmbeddings, QueryPreAttnScalar, SlidingWindow) = (1e-6, true, 256, 4096);
    }

    /// <summary>Gemma's MLP follows hidden_activation (HF ignores hidden_act here); a different hidden_act beside it is ambiguous.</summary>
    public override string Activation => HiddenActivation ?? "gelu_pytorch_tanh";

    protected override IEnumerable<(string Key, object? Value)> UnusedKeys() => [];

    public override void Validate(string source)
    {
        base.Validate(source);
        ConfigChecks.Require(source, HiddenAct is null || HiddenAct == Activation,
            $"hidden_act '{HiddenAct}' and hidden_activation '{Activation}' disagree; {ModelType} uses hidden_activation.");
        ConfigChecks.Require(source, QueryPreAttnScalar is not null, "query_pre_attn_scalar is null; Gemma scales scores by its −½ power.");
        ConfigChecks.InRange(source, "query_pre_attn_scalar", QueryPreAttnScalar!.Value, 1e-6, 1e9);
        foreach (var (key, cap) in new[] { ("attn_logit_softcapping", AttnLogitSoftcapping), ("final_logit_softcapping", FinalLogitSoftcapping) })
            if (cap is { } c) ConfigChecks.InRange(source, key, c, 1e-6, 1e9);
    }

    /// <summary>The options both versions set; each adds its rotary tables and windows.</summary>
    protected DecoderSpec GemmaSpec(string source) => DecoderSpec.Plain(this, source) with
    {
        QkvBias = AttentionBias,
        OutputBias = AttentionBias,
        NormPlusOne = true,
        SandwichNorms = true,
        ScaleEmbeddings = true,
        Scale = Math.Pow(QueryPreAttnScalar!.Value, -0.5),
        AttentionSoftCap = AttnLogitSoftcapping,
        FinalSoftCap = FinalLogitSoftcapping,
    };
}

/// <summary>config.json of model_type gemma2: sliding window on the layers layer_types marks, else on even layers.</summary>
public sealed record Gemma2Config : GemmaConfig
{
    public static readonly string[] Types = ["gemma2"];

    /// <summary>HF's Gemma2Config defaults: soft-capping on (50 for scores, 30 for logits), 8,192 positions.</summary>
    public Gemma2Config()
    {
        ModelType = "gemma2";
        (MaxPositionEmbeddings, AttnLogitSoftcapping, FinalLogitSoftcapping) = (8192, 50.0, 30.0);
    }

    protected override IReadOnlyList<string> ModelTypes => Types;

    public override int? WindowOf(int layer) => LayerTypes is not null ? WindowFromLayerTypes(layer) : layer % 2 == 0 ? SlidingWindow : null;

    public override void Validate(string source)
    {
        base.Validate(source);
        ConfigChecks.Require(source, RopeLocalBaseFreq is null, $"rope_local_base_freq = {RopeLocalBaseFreq} is set, but gemma2 does not use it.");
    }

    public override DecoderSpec Decoder(string source) => GemmaSpec(source);
}

/// <summary>
/// config.json of model_type gemma3_text (Gemma3ForCausalLM), or the text_config of a multimodal gemma3
/// (Gemma3ForConditionalGeneration), whose language model alone is loaded. q/k norms (1 + w); local (sliding) layers use
/// RoPE base rope_local_base_freq without scaling, global layers rope_theta with rope_scaling; the pattern from
/// layer_types, else every sliding_window_pattern-th layer is global.
/// </summary>
public sealed record Gemma3TextConfig : GemmaConfig
{
    public static readonly string[] Types = ["gemma3_text", "gemma3"];

    /// <summary>HF's Gemma3TextConfig defaults (its multimodal checkpoints' text_config often leaves most keys out).</summary>
    public Gemma3TextConfig()
    {
        ModelType = "gemma3_text";
        (VocabSize, MaxPositionEmbeddings, RopeTheta, RopeLocalBaseFreq) = (262_208, 131_072, 1_000_000.0, 10_000.0);
    }

    [JsonPropertyName("sliding_window_pattern")] public int SlidingWindowPattern { get; init; } = 6;

    /// <summary>Read from a multimodal gemma3 config's text_config: the weights sit under its language model's prefix.</summary>
    [JsonIgnore] public bool Multimodal { get; init; }

    protected override IReadOnlyList<string> ModelTypes => Types;
    protected override bool UsesRopePerLayerType => true;

    public override string? Note => Multimodal
        ? "Gemma3ForConditionalGeneration: only the language model is loaded; images are not analysed (the vision tower is ignored)."
        : null;

    public bool IsSliding(int layer) => LayerTypes is not null
        ? LayerTypes.ElementAtOrDefault(layer) == "sliding_attention"              // the length is checked in Validate
        : (layer + 1) % SlidingWindowPattern != 0;

    public override int? WindowOf(int layer) => IsSliding(layer) ? SlidingWindow : null;

    public override void Validate(string source)
    {
        base.Validate(source);
        ConfigChecks.Require(source, ModelType != "gemma3" || Multimodal, "model_type gemma3 needs its text_config.");
        ConfigChecks.InRange(source, "sliding_window_pattern", SlidingWindowPattern, 1, 1_024);
        ConfigChecks.InRange(source, "rope_local_base_freq", LocalTheta, 1.000001, 1e12);
        RotaryEmbedding.Validate(RopeParameters?.FullAttention, source);
        ConfigChecks.Require(source, RopeParameters?.SlidingAttention is null or { Type: "default" },
            $"rope_parameters.sliding_attention of type '{RopeParameters?.SlidingAttention?.Type}': Gemma 3's local layers use unscaled RoPE.");
    }

    /// <summary>The local layers' base: rope_local_base_freq, or v5's rope_parameters.sliding_attention.rope_theta.</summary>
    private double LocalTheta => RopeParameters?.SlidingAttention?.RopeTheta ?? RopeLocalBaseFreq ?? 10_000.0;

    /// <summary>The global layers' scaling: rope_scaling, or v5's rope_parameters.full_attention.</summary>
    private RopeScaling? GlobalRope => RopeParameters is { FullAttention: { } full } ? full : Rope;
    private double GlobalTheta => RopeParameters?.FullAttention?.RopeTheta ?? Theta;

    public override DecoderSpec Decoder(string source) => GemmaSpec(source) with
    {
        QueryKeyNorm = true,
        Rotaries =
        [
            new RotaryEmbedding(HeadDim, LocalTheta, null, MaxPositionEmbeddings, source),
            new RotaryEmbedding(HeadDim, GlobalTheta, GlobalRope, MaxPositionEmbeddings, source),
        ],
        RotaryOfLayer = [.. Enumerable.Range(0, NumLayers).Select(l => IsSliding(l) ? 0 : 1)],
        WeightPrefixes = Multimodal ? ["model.", "language_model.model.", "model.language_model."] : ["model."],
        LmHeadKeys = Multimodal ? ["lm_head.weight", "language_model.lm_head.weight"] : ["lm_head.weight"],
    };
}

/// <summary>config.json of model_type gemma3 (Gemma3ForConditionalGeneration): its text_config describes the language model.</summary>
public sealed record Gemma3MultimodalConfig
{
    [JsonPropertyName("text_config")] public Gemma3TextConfig? TextConfig { get; init; }

    /// <summary>The language model's config, marked as a multimodal checkpoint's.</summary>
    public Gemma3TextConfig Text(string source)
    {
        var text = TextConfig ?? throw new ModelLoadException($"{source}: model_type gemma3 without text_config: no language model is described.");
        return text with { Multimodal = true, ModelType = "gemma3" };
    }
}
