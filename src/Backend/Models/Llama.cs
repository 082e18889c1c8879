using System.Text.Json.Serialization;
using AttentionViz.Backend.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttentionViz.Backend.Models;

// Llama, Mistral and Qwen2 as in Hugging Face's LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM. They differ
// only by options read from config.json: q/k/v (and o) biases, and which layers use a sliding window. Parameter names
// are the checkpoint's keys (model.layers.N.self_attn.q_proj.weight, …; q/k in HF's rotate-half layout).
// B = batch, T = tokens, C = hidden, H = query heads, KV = key/value heads, D = head_dim.

/// <summary>config.json of model_type llama, mistral or qwen2.</summary>
public sealed record LlamaConfig : IModelConfig
{
    public static readonly string[] ModelTypes = ["llama", "mistral", "qwen2"];

    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "llama";
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int NumLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public int NumHeads { get; init; }
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; init; }
    [JsonPropertyName("head_dim")] public int? HeadDimension { get; init; }
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "silu";
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

    public int KeyValueHeads => NumKeyValueHeads ?? NumHeads;
    public int HeadDim => HeadDimension ?? (NumHeads > 0 ? HiddenSize / NumHeads : 0);

    /// <summary>rope_scaling (transformers v4) or rope_parameters (v5); null or "default" = unscaled.</summary>
    public RopeScaling? Rope => RopeScaling ?? RopeParameters;
    public double Theta => RopeTheta ?? RopeParameters?.RopeTheta ?? 10_000.0;

    /// <summary>Qwen2 has q/k/v biases and no o bias; Llama has both or neither (attention_bias); Mistral neither.</summary>
    public bool QkvBias => ModelType == "qwen2" || AttentionBias && ModelType == "llama";
    public bool OutputBias => ModelType == "llama" && AttentionBias;

    /// <summary>
    /// The sliding window of layer <paramref name="layer"/>, or null for full causal attention. Mistral: every layer when
    /// sliding_window is set. Qwen2: only with use_sliding_window, for the layers layer_types marks "sliding_attention"
    /// or, without layer_types, from max_window_layers on (as HF's Qwen2Config derives layer_types).
    /// </summary>
    public int? WindowOf(int layer) => ModelType switch
    {
        "mistral" => SlidingWindow,
        "qwen2" when !UseSlidingWindow => null,
        "qwen2" when LayerTypes is not null => LayerTypes.ElementAtOrDefault(layer) == "sliding_attention" ? SlidingWindow : null,
        "qwen2" when layer >= MaxWindowLayers => SlidingWindow,
        _ => null,
    };

    public ModelShape Shape => new(ModelType, NumLayers, NumHeads, KeyValueHeads, HiddenSize, VocabSize, MaxPositionEmbeddings, true,
        Enumerable.Range(0, Math.Max(0, Math.Min(NumLayers, 1_024))).Select(WindowOf).FirstOrDefault(w => w is not null),
        (TieWordEmbeddings ? 1L : 2L) * VocabSize * HiddenSize + (long)NumLayers * (
            (long)HiddenSize * HeadDim * (2L * NumHeads + 2L * KeyValueHeads) + 3L * HiddenSize * IntermediateSize));

    public void Validate(string source)
    {
        ConfigChecks.Require(source, ModelTypes.Contains(ModelType), $"model_type '{ModelType}' is not one of {string.Join(", ", ModelTypes)}.");
        ConfigChecks.Common(source, Shape);
        ConfigChecks.InRange(source, "intermediate_size", IntermediateSize, 1, 1 << 20);
        ConfigChecks.InRange(source, "num_key_value_heads", KeyValueHeads, 1, NumHeads);
        ConfigChecks.Require(source, NumHeads % KeyValueHeads == 0,
            $"num_attention_heads {NumHeads} is not a multiple of num_key_value_heads {KeyValueHeads}.");
        ConfigChecks.InRange(source, "head_dim", HeadDim, 2, 4_096);
        ConfigChecks.Require(source, HeadDim % 2 == 0, $"head_dim {HeadDim} must be even for rotary embeddings.");
        ConfigChecks.Require(source, HeadDimension is not null || HiddenSize % NumHeads == 0,
            $"hidden_size {HiddenSize} is not divisible by num_attention_heads {NumHeads} and head_dim is not given.");
        ConfigChecks.Require(source, PartialRotaryFactor == 1.0, $"partial_rotary_factor {PartialRotaryFactor} is not supported (only 1).");
        ConfigChecks.Require(source, SlidingWindow is null || SlidingWindow > 0, $"sliding_window {SlidingWindow} must be positive.");
        ConfigChecks.Require(source,
            LayerTypes is null || LayerTypes.Length == NumLayers && LayerTypes.All(t => t is "full_attention" or "sliding_attention"),
            $"layer_types must list 'full_attention' or 'sliding_attention' for each of the {NumLayers} layers.");
        ConfigChecks.Epsilon(source, "rms_norm_eps", RmsNormEps);
        if (RopeTheta is { } theta) ConfigChecks.InRange(source, "rope_theta", theta, 1.000001, 1e12);
        RotaryEmbedding.Validate(Rope, source);
        ActivationFunctions.Get(HiddenAct);
    }
}

/// <summary>What one decoder layer's forward needs besides its input: shared by every layer of a forward.</summary>
internal sealed record LayerContext((Tensor Cos, Tensor Sin) Rotary, Tensor? Padding, IAttentionObserver? Observer,
    Tensor[]? Probabilities, CancellationToken CancellationToken, KeyValuePrefix? Prefix = null);

internal sealed class LlamaAttention : Module
{
    private readonly Dense _q, _k, _v, _o;
    private readonly int _heads, _kvHeads, _headDim;

    public LlamaAttention(LlamaConfig config) : base(nameof(LlamaAttention))
    {
        (_heads, _kvHeads, _headDim) = (config.NumHeads, config.KeyValueHeads, config.HeadDim);
        register_module("q_proj", _q = new Dense(config.HiddenSize, _heads * _headDim, config.QkvBias));
        register_module("k_proj", _k = new Dense(config.HiddenSize, _kvHeads * _headDim, config.QkvBias));
        register_module("v_proj", _v = new Dense(config.HiddenSize, _kvHeads * _headDim, config.QkvBias));
        register_module("o_proj", _o = new Dense(_heads * _headDim, config.HiddenSize, config.OutputBias));
    }

    /// <param name="x">(B, T, C)</param>
    /// <returns>(B, T, C)</returns>
    public Tensor Forward(Tensor x, int layer, AttentionRule rule, LayerContext context)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        // Each temporary goes as soon as the next step has what it needs: at 8,192 tokens a layer's projections, RoPE
        // and merge steps each take 6–19 MB, and held to the end of the layer they were ~200 MB of the forward's peak.
        Tensor q, k, v;
        using (NewDisposeScope())
        {
            q = RotaryEmbedding.Apply(_q.forward(x).view(b, t, _heads, _headDim).transpose(1, 2), context.Rotary.Cos, context.Rotary.Sin)
                .contiguous().MoveToOuterDisposeScope();                              // (B, H, T, D)
            k = RotaryEmbedding.Apply(_k.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2), context.Rotary.Cos, context.Rotary.Sin)
                .contiguous().MoveToOuterDisposeScope();                              // (B, KV, T, D)
            v = _v.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2).contiguous().MoveToOuterDisposeScope(); // (B, KV, T, D)
        }
        var start = 0;
        if (context.Prefix is { } prefix)
        {
            // The prefix's keys and values, then this forward's: T = prefix + suffix keys for the suffix's queries.
            start = prefix.Length;
            k = Replace(k, cat([prefix.Keys[layer].narrow(1, 0, start).unsqueeze(0), k.to(float32)], 2));         // (1, KV, T, D)
            v = Replace(v, cat([prefix.Values[layer].narrow(1, 0, start).unsqueeze(0), v.to(float32)], 2));       // (1, KV, T, D)
        }
        (context.Observer as IValueObserver)?.Values(layer, v[0].to(float32));
        var attended = BlockedAttention.Attend(q, k, v, rule, context.Padding, layer, context.Observer,
            context.Probabilities?[layer], context.CancellationToken, start);        // (B, H, T − start, D)
        q.Dispose();
        k.Dispose();
        v.Dispose();
        var merged = attended.transpose(1, 2).reshape(b, t, _heads * _headDim);       // (B, T, H·D)
        attended.Dispose();
        return _o.forward(merged).MoveToOuterDisposeScope();
    }

    /// <summary><paramref name="next"/>, after disposing <paramref name="previous"/>.</summary>
    private static Tensor Replace(Tensor previous, Tensor next)
    {
        previous.Dispose();
        return next;
    }
}

internal sealed class LlamaDecoderLayer : Module
{
    private readonly RmsNorm _inputNorm, _postAttentionNorm;
    private readonly LlamaAttention _attention;
    private readonly GatedMlp _mlp;

    public LlamaDecoderLayer(LlamaConfig config) : base(nameof(LlamaDecoderLayer))
    {
        register_module("self_attn", _attention = new LlamaAttention(config));
        register_module("mlp", _mlp = new GatedMlp(config.HiddenSize, config.IntermediateSize, config.HiddenAct, config.MlpBias));
        register_module("input_layernorm", _inputNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps));
        register_module("post_attention_layernorm", _postAttentionNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps));
    }

    /// <param name="x">(B, T, C)</param>
    public Tensor Forward(Tensor x, int layer, AttentionRule rule, LayerContext context)
    {
        using var scope = NewDisposeScope();
        // Pre-norm residuals, added in place into fresh outputs (x + a and a + x are the same floats); every 19 MB
        // temporary (at 8,192 tokens) goes as soon as it has been used.
        var normed = _inputNorm.forward(x);
        var h = _attention.Forward(normed, layer, rule, context).add_(x);
        normed.Dispose();
        normed = _postAttentionNorm.forward(h);
        var output = _mlp.forward(normed).add_(h);
        normed.Dispose();
        h.Dispose();
        return output.MoveToOuterDisposeScope();
    }
}

/// <summary>HF's LlamaModel: the "model." part of LlamaForCausalLM.</summary>
internal sealed class LlamaBackbone : Module
{
    public readonly EmbeddingTable TokenEmbedding;
    public readonly ModuleList<LlamaDecoderLayer> Layers;
    public readonly RmsNorm FinalNorm;

    public LlamaBackbone(LlamaConfig config) : base(nameof(LlamaBackbone))
    {
        register_module("embed_tokens", TokenEmbedding = new EmbeddingTable(config.VocabSize, config.HiddenSize));
        register_module("layers", Layers = new ModuleList<LlamaDecoderLayer>(
            Enumerable.Range(0, config.NumLayers).Select(_ => new LlamaDecoderLayer(config)).ToArray()));
        register_module("norm", FinalNorm = new RmsNorm(config.HiddenSize, config.RmsNormEps));
    }
}

/// <summary>LlamaForCausalLM (and Mistral, Qwen2): attention, last_hidden_state (after the final norm) and logits.</summary>
public sealed class LlamaModel : CheckpointModel
{
    private readonly LlamaConfig _config;
    private readonly LlamaBackbone _model;
    private readonly Dense? _lmHead;
    private readonly RotaryEmbedding _rotary;

    public LlamaModel(LlamaConfig config, string source = "config.json") : base(nameof(LlamaModel), config.Shape)
    {
        config.Validate(source);
        _config = config;
        _rotary = new RotaryEmbedding(config.HeadDim, config.Theta, config.Rope, config.MaxPositionEmbeddings, source);
        register_module("model", _model = new LlamaBackbone(config));
        if (!config.TieWordEmbeddings) register_module("lm_head", _lmHead = new Dense(config.HiddenSize, config.VocabSize, bias: false));
        eval();
    }

    /// <summary>Tests only: shifts a reused prefix's suffix positions, so that a test can show a wrong offset is caught.</summary>
    internal int PrefixPositionError { get; set; }

    public override bool AttendsInBlocks => true;
    public override int HeadDim => _config.HeadDim;
    public override int IntermediateSize => _config.IntermediateSize;

    /// <summary>Copies the checkpoint in (bare LlamaModel or model.-prefixed names, lm_head when untied) and returns the unused keys.</summary>
    public override IReadOnlyList<string> LoadWeights(IWeightSource source)
    {
        var loader = new WeightLoader(source);
        loader.LoadModule(_model, ["model."]);
        if (_lmHead is not null) loader.Load(_lmHead.Weight, "lm_head.weight");
        return loader.Finish();
    }

    public override ForwardResult Forward(ForwardInput input, CancellationToken cancellationToken = default)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = Inputs.ToTensor(input.InputIds);                                   // (B, T)
        Inputs.CheckIds(ids, VocabularySize, MaxPositions);
        var (b, t) = (ids.shape[0], ids.shape[1]);
        var padding = Inputs.Padding(input.AttentionMask, ids);                      // (B, T) or null
        var start = input.Prefix?.Length ?? 0;
        if (input.Prefix is not null && (b != 1 || padding is not null || input.Observer is null || start <= 0 || start >= t))
            throw new ArgumentException("a reused prefix needs one unpadded row, an observer, and at least one new token");
        // The suffix's positions continue the prefix's: RoPE rotates them as in a forward over all T tokens.
        var shift = start > 0 ? PrefixPositionError : 0;
        var rotary = _rotary.CosSin(arange(start + shift, t + shift, dtype: int64).unsqueeze(0)); // (1, T − start, D) each
        // Without an observer the caller wants every probability: small inputs and the fixture tests.
        var probabilities = input.Observer is null
            ? Enumerable.Range(0, Layers).Select(_ => zeros(b, Heads, t, t, dtype: float32)).ToArray()
            : null;
        var context = new LayerContext(rotary, padding, input.Observer, probabilities, cancellationToken, input.Prefix);
        var scale = 1.0 / Math.Sqrt(_config.HeadDim);

        var x = _model.TokenEmbedding.forward(start > 0 ? ids.narrow(1, start, t - start) : ids); // (B, T − start, C)
        for (var i = 0; i < Layers; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var next = _model.Layers[i].Forward(x, i, new AttentionRule(scale, Causal: true, _config.WindowOf(i)), context);
            x.Dispose();  // else every layer's hidden state stays in this scope until the end (566 MB at 8,192 tokens)
            x = next;
        }
        var hidden = _model.FinalNorm.forward(x);                                    // (B, T, C)
        Tensor? logits = null;
        if (input.WantLogits)
            logits = (_lmHead is null ? hidden.matmul(_model.TokenEmbedding.Weight.t()) : _lmHead.forward(hidden))
                .MoveToOuterDisposeScope();  // (B, T, V)
        foreach (var p in probabilities ?? []) p.MoveToOuterDisposeScope();
        return new ForwardResult(probabilities ?? [], hidden.MoveToOuterDisposeScope(), logits);
    }
}
