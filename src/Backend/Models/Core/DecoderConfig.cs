using System.Text.Json.Serialization;

namespace AttentionViz.Backend.Models.Core;

/// <summary>
/// The config.json keys the Llama-style decoder families share (Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3). Each family
/// derives its record, sets Hugging Face's defaults in its constructor, and turns the keys into a <see cref="DecoderSpec"/>.
/// Keys that change the attention are read here for every family, so that one a family does not use is refused by name
/// instead of being dropped (a Llama config with attn_logit_softcapping would otherwise show un-capped scores).
/// </summary>
public abstract record DecoderConfig : IModelConfig
{
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "";
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int NumLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public int NumHeads { get; init; }
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; init; }
    [JsonPropertyName("head_dim")] public int? HeadDimension { get; init; }
    [JsonPropertyName("hidden_act")] public string? HiddenAct { get; init; }
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; }
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-6;
    [JsonPropertyName("rope_theta")] public double? RopeTheta { get; init; }
    [JsonPropertyName("rope_scaling")] public RopeScaling? RopeScaling { get; init; }
    [JsonPropertyName("rope_parameters")] public RopeScaling? RopeParameters { get; init; }
    [JsonPropertyName("partial_rotary_factor")] public double PartialRotaryFactor { get; init; } = 1.0;
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }
    [JsonPropertyName("mlp_bias")] public bool MlpBias { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }
    [JsonPropertyName("sliding_window")] public int? SlidingWindow { get; init; }
    [JsonPropertyName("use_sliding_window")] public bool UseSlidingWindow { get; init; }
    [JsonPropertyName("max_window_layers")] public int MaxWindowLayers { get; init; } = 28;
    [JsonPropertyName("layer_types")] public string[]? LayerTypes { get; init; }
    [JsonPropertyName("attn_logit_softcapping")] public double? AttnLogitSoftcapping { get; init; }
    [JsonPropertyName("final_logit_softcapping")] public double? FinalLogitSoftcapping { get; init; }
    [JsonPropertyName("query_pre_attn_scalar")] public double? QueryPreAttnScalar { get; init; }
    [JsonPropertyName("rope_local_base_freq")] public double? RopeLocalBaseFreq { get; init; }

    public int KeyValueHeads => NumKeyValueHeads ?? NumHeads;
    public int HeadDim => HeadDimension ?? (NumHeads > 0 ? HiddenSize / NumHeads : 0);

    /// <summary>The rotated part of each head: int(head_dim × partial_rotary_factor), as HF's rope init.</summary>
    public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);

    /// <summary>rope_scaling (transformers v4) or rope_parameters (v5); null or "default" = unscaled.</summary>
    public RopeScaling? Rope => RopeScaling ?? RopeParameters;
    public double Theta => RopeTheta ?? RopeParameters?.RopeTheta ?? 10_000.0;

    /// <summary>The model types this record reads (the first is the family's own).</summary>
    protected abstract IReadOnlyList<string> ModelTypes { get; }

    /// <summary>Phi-3: RoPE on the first int(head_dim × partial_rotary_factor) dims; elsewhere a factor other than 1 is refused.</summary>
    protected virtual bool UsesPartialRotary => false;

    /// <summary>Gemma 3: rope_parameters per layer type (transformers v5); elsewhere such a rope_parameters is refused.</summary>
    protected virtual bool UsesRopePerLayerType => false;

    /// <summary>What a user should know about how the checkpoint is read (shown in models/list and logged at load), or null.</summary>
    public virtual string? Note => null;

    /// <summary>The activation of the MLP, by HF's name.</summary>
    public virtual string Activation => HiddenAct ?? "silu";

    /// <summary>The sliding window of layer <paramref name="layer"/>, or null for full causal attention.</summary>
    public abstract int? WindowOf(int layer);

    /// <summary>The layers with a sliding window, from layer_types: "sliding_attention" layers, null when not given.</summary>
    protected int? WindowFromLayerTypes(int layer) =>
        LayerTypes?.ElementAtOrDefault(layer) == "sliding_attention" ? SlidingWindow : null;

    /// <summary>Qwen2 and Qwen3: a window only with use_sliding_window, on the layers layer_types marks, else from
    /// max_window_layers on (as HF's Qwen2Config and Qwen3Config derive layer_types).</summary>
    protected int? QwenWindow(int layer) =>
        !UseSlidingWindow ? null : LayerTypes is not null ? WindowFromLayerTypes(layer) : layer >= MaxWindowLayers ? SlidingWindow : null;

    /// <summary>What the forward does, for this config (after <see cref="Validate"/>).</summary>
    public abstract DecoderSpec Decoder(string source);

    /// <summary>The keys a family does not use: each one set is an error naming it, never a silent default.</summary>
    protected virtual IEnumerable<(string Key, object? Value)> UnusedKeys() =>
    [
        ("attn_logit_softcapping", AttnLogitSoftcapping), ("final_logit_softcapping", FinalLogitSoftcapping),
        ("query_pre_attn_scalar", QueryPreAttnScalar), ("rope_local_base_freq", RopeLocalBaseFreq),
    ];

    /// <summary>Gated MLP (gate, up, down) plus four attention projections and two norms per layer, and the embeddings.</summary>
    public virtual ModelShape Shape => new(ModelType, NumLayers, NumHeads, KeyValueHeads, HiddenSize, VocabSize, MaxPositionEmbeddings, true,
        Enumerable.Range(0, Math.Max(0, Math.Min(NumLayers, 1_024))).Select(WindowOf).FirstOrDefault(w => w is not null),
        (TieWordEmbeddings ? 1L : 2L) * VocabSize * HiddenSize + (long)NumLayers * (
            (long)HiddenSize * HeadDim * (2L * NumHeads + 2L * KeyValueHeads) + 3L * HiddenSize * IntermediateSize));

    public virtual void Validate(string source)
    {
        ConfigChecks.Require(source, ModelTypes.Contains(ModelType), $"model_type '{ModelType}' is not one of {string.Join(", ", ModelTypes)}.");
        foreach (var (key, value) in UnusedKeys())
            ConfigChecks.Require(source, value is null,
                $"{key} = {value} is set, but {ModelType} models do not use it: ignoring it would show attention that is not the model's.");
        ConfigChecks.Require(source, UsesPartialRotary || PartialRotaryFactor == 1.0,
            $"partial_rotary_factor = {PartialRotaryFactor} is not supported for {ModelType} (only 1).");
        ConfigChecks.Require(source, PartialRotaryFactor is > 0 and <= 1,
            $"partial_rotary_factor = {PartialRotaryFactor} must be in (0, 1].");
        ConfigChecks.Require(source, UsesRopePerLayerType || RopeParameters is not { FullAttention: not null } and not { SlidingAttention: not null },
            $"rope_parameters per layer type (full_attention, sliding_attention) are not read for {ModelType}.");
        ConfigChecks.Common(source, Shape);
        ConfigChecks.InRange(source, "intermediate_size", IntermediateSize, 1, 1 << 20);
        ConfigChecks.InRange(source, "num_key_value_heads", KeyValueHeads, 1, NumHeads);
        ConfigChecks.Require(source, NumHeads % KeyValueHeads == 0,
            $"num_attention_heads {NumHeads} is not a multiple of num_key_value_heads {KeyValueHeads}.");
        ConfigChecks.InRange(source, "head_dim", HeadDim, 2, 4_096);
        ConfigChecks.Require(source, HeadDim % 2 == 0, $"head_dim {HeadDim} must be even for rotary embeddings.");
        ConfigChecks.Require(source, HeadDimension is not null || HiddenSize % NumHeads == 0,
            $"hidden_size {HiddenSize} is not divisible by num_attention_heads {NumHeads} and head_dim is not given.");
        ConfigChecks.Require(source, SlidingWindow is null || SlidingWindow > 0, $"sliding_window {SlidingWindow} must be positive.");
        ConfigChecks.Require(source,
            LayerTypes is null || LayerTypes.Length == NumLayers && LayerTypes.All(t => t is "full_attention" or "sliding_attention"),
            $"layer_types must list 'full_attention' or 'sliding_attention' for each of the {NumLayers} layers.");
        ConfigChecks.Epsilon(source, "rms_norm_eps", RmsNormEps);
        if (RopeTheta is { } theta) ConfigChecks.InRange(source, "rope_theta", theta, 1.000001, 1e12);
        RotaryEmbedding.Validate(Rope, source);
        ActivationFunctions.Get(Activation);
    }
}

/// <summary>
/// What one decoder family's forward does differently from Llama's, fixed at load: the options of the shared decoder
/// (Models/Llama.cs). Tests flip single options (e.g. <see cref="AttentionSoftCap"/> off) to show that the fixtures
/// tell the wrong variant apart; users never set them.
/// </summary>
public sealed record DecoderSpec
{
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int KeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabularySize { get; init; }
    public required string Activation { get; init; }
    public required double NormEps { get; init; }

    /// <summary>The score scale: 1/√head_dim, or Gemma's query_pre_attn_scalar^-½.</summary>
    public required double Scale { get; init; }

    /// <summary>The rotary tables the layers use (Gemma 3: local and global); <see cref="RotaryOfLayer"/> picks one per layer.</summary>
    public required IReadOnlyList<RotaryEmbedding> Rotaries { get; init; }
    public required IReadOnlyList<int> RotaryOfLayer { get; init; }

    /// <summary>Each layer's sliding window, or null for full causal attention.</summary>
    public required IReadOnlyList<int?> Windows { get; init; }

    public bool QkvBias { get; init; }
    public bool OutputBias { get; init; }
    public bool MlpBias { get; init; }

    /// <summary>Phi-3: one qkv_proj (q, k, v rows) and one gate_up_proj (gate rows first) instead of separate projections.</summary>
    public bool FusedProjections { get; init; }

    /// <summary>Qwen3, Gemma 3: per-head RMSNorm of q and k over head_dim, before RoPE (q_norm, k_norm).</summary>
    public bool QueryKeyNorm { get; init; }

    /// <summary>Gemma: every RMSNorm multiplies by (1 + w) instead of w.</summary>
    public bool NormPlusOne { get; init; }

    /// <summary>Gemma: the attention output and the MLP are each normed before the residual (post_attention_layernorm,
    /// post_feedforward_layernorm) and the MLP's input by pre_feedforward_layernorm.</summary>
    public bool SandwichNorms { get; init; }

    /// <summary>Gemma: the embeddings are multiplied by √hidden (rounded to float32, as HF casts it to the hidden dtype).</summary>
    public bool ScaleEmbeddings { get; init; }

    /// <summary>Gemma 2: attention scores become c·tanh(s/c) before the softmax.</summary>
    public double? AttentionSoftCap { get; init; }

    /// <summary>Gemma 2: logits become c·tanh(l/c).</summary>
    public double? FinalSoftCap { get; init; }

    public bool TiedEmbeddings { get; init; }

    /// <summary>Where the backbone's tensors may sit in the checkpoint (model., or a multimodal model's language model).</summary>
    public IReadOnlyList<string> WeightPrefixes { get; init; } = ["model."];

    /// <summary>The untied LM head's checkpoint names, first match wins.</summary>
    public IReadOnlyList<string> LmHeadKeys { get; init; } = ["lm_head.weight"];

    /// <summary>Llama's forward for <paramref name="config"/>: one rotary table over head_dim × partial_rotary_factor,
    /// scale 1/√head_dim, the windows of <see cref="DecoderConfig.WindowOf"/>.</summary>
    public static DecoderSpec Plain(DecoderConfig config, string source, int? originalMaxPositions = null) => new()
    {
        HiddenSize = config.HiddenSize, IntermediateSize = config.IntermediateSize, Layers = config.NumLayers, Heads = config.NumHeads,
        KeyValueHeads = config.KeyValueHeads, HeadDim = config.HeadDim, VocabularySize = config.VocabSize, Activation = config.Activation,
        NormEps = config.RmsNormEps, Scale = 1.0 / Math.Sqrt(config.HeadDim),
        Rotaries = [new RotaryEmbedding(config.RotaryDim, config.Theta, config.Rope, config.MaxPositionEmbeddings, source, originalMaxPositions)],
        RotaryOfLayer = new int[config.NumLayers],
        Windows = [.. Enumerable.Range(0, config.NumLayers).Select(config.WindowOf)],
        MlpBias = config.MlpBias, TiedEmbeddings = config.TieWordEmbeddings,
    };

    public AttentionRule RuleOf(int layer) => new(Scale, Causal: true, Windows[layer], AttentionSoftCap);
}
