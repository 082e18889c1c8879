using System.Text.Json.Serialization;
using AttentionViz.Backend.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttentionViz.Backend.Models;

// Llama, Mistral and Qwen2 as in Hugging Face's LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM, and the
// decoder the other families (Qwen3.cs, Gemma.cs, Phi3.cs) run with their options (DecoderSpec): q/k norms, soft-capping,
// sandwich norms, fused projections, per-layer rotary tables and windows. Llama, Mistral and Qwen2 differ only by
// q/k/v (and o) biases and which layers use a sliding window. Parameter names are the checkpoint's keys
// (model.layers.N.self_attn.q_proj.weight, …; q/k in HF's rotate-half layout).
// B = batch, T = tokens, C = hidden, H = query heads, KV = key/value heads, D = head_dim.

/// <summary>config.json of model_type llama, mistral or qwen2.</summary>
public sealed record LlamaConfig : DecoderConfig
{
    public static readonly string[] Types = ["llama", "mistral", "qwen2"];

    public LlamaConfig() => ModelType = "llama";

    protected override IReadOnlyList<string> ModelTypes => Types;

    /// <summary>Qwen2 has q/k/v biases and no o bias; Llama has both or neither (attention_bias); Mistral neither.</summary>
    public bool QkvBias => ModelType == "qwen2" || AttentionBias && ModelType == "llama";
    public bool OutputBias => ModelType == "llama" && AttentionBias;

    /// <summary>
    /// Mistral: every layer when sliding_window is set. Qwen2: only with use_sliding_window, for the layers layer_types
    /// marks "sliding_attention" or, without layer_types, from max_window_layers on (as HF's Qwen2Config derives layer_types).
    /// </summary>
    public override int? WindowOf(int layer) => ModelType switch
    {
        "mistral" => SlidingWindow,
        "qwen2" => QwenWindow(layer),
        _ => null,
    };

    public override DecoderSpec Decoder(string source) => DecoderSpec.Plain(this, source) with { QkvBias = QkvBias, OutputBias = OutputBias };
}

/// <summary>What one decoder layer's forward needs besides its input: shared by every layer of a forward.</summary>
/// <param name="Rotary">cos and sin of each of the spec's rotary tables, (B, T, rotary dim) each</param>
internal sealed record LayerContext(IReadOnlyList<(Tensor Cos, Tensor Sin)> Rotary, Tensor? Padding, IAttentionObserver? Observer,
    Tensor[]? Probabilities, CancellationToken CancellationToken, KeyValuePrefix? Prefix = null);

internal sealed class LlamaAttention : Module
{
    private readonly Dense? _q, _k, _v, _qkv;
    private readonly Dense _o;
    private readonly RmsNorm? _qNorm, _kNorm;
    private readonly int _heads, _kvHeads, _headDim;
    private readonly IReadOnlyList<int> _rotaryOfLayer;

    public LlamaAttention(DecoderSpec spec) : base(nameof(LlamaAttention))
    {
        (_heads, _kvHeads, _headDim, _rotaryOfLayer) = (spec.Heads, spec.KeyValueHeads, spec.HeadDim, spec.RotaryOfLayer);
        if (spec.FusedProjections)
            register_module("qkv_proj", _qkv = new Dense(spec.HiddenSize, (_heads + 2 * _kvHeads) * _headDim, spec.QkvBias));
        else
        {
            register_module("q_proj", _q = new Dense(spec.HiddenSize, _heads * _headDim, spec.QkvBias));
            register_module("k_proj", _k = new Dense(spec.HiddenSize, _kvHeads * _headDim, spec.QkvBias));
            register_module("v_proj", _v = new Dense(spec.HiddenSize, _kvHeads * _headDim, spec.QkvBias));
        }
        register_module("o_proj", _o = new Dense(_heads * _headDim, spec.HiddenSize, spec.OutputBias));
        if (spec.QueryKeyNorm)
        {
            register_module("q_norm", _qNorm = new RmsNorm(_headDim, spec.NormEps, spec.NormPlusOne));
            register_module("k_norm", _kNorm = new RmsNorm(_headDim, spec.NormEps, spec.NormPlusOne));
        }
    }

    /// <summary>q, k and v, (B, T, H·D), (B, T, KV·D) twice: from the three projections or the fused one (q, k, v rows).</summary>
    private (Tensor Q, Tensor K, Tensor V) Project(Tensor x)
    {
        if (_qkv is null) return (_q!.forward(x), _k!.forward(x), _v!.forward(x));
        var qkv = _qkv.forward(x);
        var (q, kv) = (_heads * _headDim, _kvHeads * _headDim);
        return (qkv.narrow(-1, 0, q), qkv.narrow(-1, q, kv), qkv.narrow(-1, q + kv, kv));
    }

    /// <summary>(B, T, heads·D) → (B, heads, T, D): per-head norm (when the family has one) before RoPE, as HF.</summary>
    private static Tensor Heads(Tensor projected, long b, long t, int heads, int headDim, RmsNorm? norm, (Tensor Cos, Tensor Sin) rotary)
    {
        var split = projected.view(b, t, heads, headDim);
        if (norm is not null) split = norm.forward(split);
        return RotaryEmbedding.ApplyToHeads(split, rotary.Cos, rotary.Sin) ?? RotaryEmbedding.Apply(split.transpose(1, 2), rotary.Cos, rotary.Sin);
    }

    /// <param name="x">(B, T, C)</param>
    /// <returns>(B, T, C)</returns>
    public Tensor Forward(Tensor x, int layer, AttentionRule rule, LayerContext context)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var rotary = context.Rotary[_rotaryOfLayer[layer]];
        // Each temporary goes as soon as the next step has what it needs: at 8,192 tokens a layer's projections, RoPE
        // and merge steps each take 6–19 MB, and held to the end of the layer they were ~200 MB of the forward's peak.
        Tensor q, k, v;
        using (NewDisposeScope())
        {
            var (qp, kp, vp) = Project(x);
            q = Heads(qp, b, t, _heads, _headDim, _qNorm, rotary).contiguous().MoveToOuterDisposeScope();    // (B, H, T, D)
            k = Heads(kp, b, t, _kvHeads, _headDim, _kNorm, rotary).contiguous().MoveToOuterDisposeScope();  // (B, KV, T, D)
            v = vp.view(b, t, _kvHeads, _headDim).transpose(1, 2).contiguous().MoveToOuterDisposeScope();    // (B, KV, T, D)
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
    private readonly RmsNorm? _preFeedForwardNorm, _postFeedForwardNorm;
    private readonly LlamaAttention _attention;
    private readonly GatedMlp _mlp;

    public LlamaDecoderLayer(DecoderSpec spec) : base(nameof(LlamaDecoderLayer))
    {
        register_module("self_attn", _attention = new LlamaAttention(spec));
        register_module("mlp", _mlp = new GatedMlp(spec.HiddenSize, spec.IntermediateSize, spec.Activation, spec.MlpBias, spec.FusedProjections));
        register_module("input_layernorm", _inputNorm = new RmsNorm(spec.HiddenSize, spec.NormEps, spec.NormPlusOne));
        register_module("post_attention_layernorm", _postAttentionNorm = new RmsNorm(spec.HiddenSize, spec.NormEps, spec.NormPlusOne));
        if (spec.SandwichNorms)
        {
            register_module("pre_feedforward_layernorm", _preFeedForwardNorm = new RmsNorm(spec.HiddenSize, spec.NormEps, spec.NormPlusOne));
            register_module("post_feedforward_layernorm", _postFeedForwardNorm = new RmsNorm(spec.HiddenSize, spec.NormEps, spec.NormPlusOne));
        }
    }

    /// <param name="x">(B, T, C)</param>
    public Tensor Forward(Tensor x, int layer, AttentionRule rule, LayerContext context)
    {
        using var scope = NewDisposeScope();
        // Pre-norm residuals, added in place into fresh outputs (x + a and a + x are the same floats); every 19 MB
        // temporary (at 8,192 tokens) goes as soon as it has been used. Llama: h = x + attn(norm(x)), out = h + mlp(norm(h)).
        // Gemma (sandwich): h = x + norm(attn(norm(x))), out = h + norm(mlp(norm(h))), post_attention_layernorm being the
        // attention output's norm there.
        var normed = _inputNorm.forward(x);
        var attended = _attention.Forward(normed, layer, rule, context);
        normed.Dispose();
        var h = (_preFeedForwardNorm is null ? attended : Normed(_postAttentionNorm, attended)).add_(x);
        normed = (_preFeedForwardNorm ?? _postAttentionNorm).forward(h);
        // Without the sandwich norm, the residual is added in the down projection's epilogue (fed + h as add_ would).
        var output = _postFeedForwardNorm is null ? _mlp.Forward(normed, h) : Normed(_postFeedForwardNorm, _mlp.forward(normed)).add_(h);
        normed.Dispose();
        h.Dispose();
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>norm(<paramref name="x"/>), disposing x.</summary>
    private static Tensor Normed(RmsNorm norm, Tensor x)
    {
        var normed = norm.forward(x);
        x.Dispose();
        return normed;
    }
}

/// <summary>HF's LlamaModel: the "model." part of LlamaForCausalLM (and of the other families' ForCausalLM).</summary>
internal sealed class LlamaBackbone : Module
{
    public readonly EmbeddingTable TokenEmbedding;
    public readonly ModuleList<LlamaDecoderLayer> Layers;
    public readonly RmsNorm FinalNorm;

    public LlamaBackbone(DecoderSpec spec) : base(nameof(LlamaBackbone))
    {
        register_module("embed_tokens", TokenEmbedding = new EmbeddingTable(spec.VocabularySize, spec.HiddenSize));
        register_module("layers", Layers = new ModuleList<LlamaDecoderLayer>(
            Enumerable.Range(0, spec.Layers).Select(_ => new LlamaDecoderLayer(spec)).ToArray()));
        register_module("norm", FinalNorm = new RmsNorm(spec.HiddenSize, spec.NormEps, spec.NormPlusOne));
    }
}

/// <summary>
/// LlamaForCausalLM (and Mistral, Qwen2, Qwen3, Gemma 2/3, Phi-3): attention, last_hidden_state (after the final norm)
/// and logits.
/// </summary>
public sealed class LlamaModel : CheckpointModel
{
    private readonly DecoderSpec _spec;
    private readonly LlamaBackbone _model;
    private readonly Dense? _lmHead;

    public LlamaModel(DecoderConfig config, string source = "config.json") : this(Validated(config, source), config.Shape)
    {
    }

    /// <summary>A model from a spec as given: tests change one option of a family's spec to show the fixtures catch it.</summary>
    internal LlamaModel(DecoderSpec spec, ModelShape shape) : base(nameof(LlamaModel), shape)
    {
        _spec = spec;
        register_module("model", _model = new LlamaBackbone(spec));
        if (!spec.TiedEmbeddings) register_module("lm_head", _lmHead = new Dense(spec.HiddenSize, spec.VocabularySize, bias: false));
        eval();
    }

    private static DecoderSpec Validated(DecoderConfig config, string source)
    {
        config.Validate(source);
        return config.Decoder(source);
    }

    /// <summary>Tests only: shifts a reused prefix's suffix positions, so that a test can show a wrong offset is caught.</summary>
    internal int PrefixPositionError { get; set; }

    public override bool AttendsInBlocks => true;
    public override int HeadDim => _spec.HeadDim;
    public override int IntermediateSize => _spec.IntermediateSize;

    /// <summary>
    /// Whether forwards over <paramref name="a"/> and <paramref name="b"/> tokens rotate positions alike. Not so for
    /// longrope across its original window: a prefix's keys from the shorter forward are then not the longer one's.
    /// </summary>
    public bool SameRotaryTables(int a, int b) => _spec.Rotaries.All(r => r.SameTables(a, b));

    /// <summary>Copies the checkpoint in (bare LlamaModel or model.-prefixed names, lm_head when untied) and returns the unused keys.</summary>
    public override IReadOnlyList<string> LoadWeights(IWeightSource source)
    {
        var loader = new WeightLoader(source);
        loader.LoadModule(_model, _spec.WeightPrefixes);
        if (_lmHead is not null)
            loader.Load(_lmHead.Weight, _spec.LmHeadKeys.FirstOrDefault(source.Names.Contains) ?? _spec.LmHeadKeys[0]);
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
        var positions = arange(start + shift, t + shift, dtype: int64).unsqueeze(0);
        var rotary = _spec.Rotaries.Select(r => r.CosSin(positions)).ToArray();     // (1, T − start, rotary dim) each
        // Without an observer the caller wants every probability: small inputs and the fixture tests.
        var probabilities = input.Observer is null
            ? Enumerable.Range(0, Layers).Select(_ => zeros(b, Heads, t, t, dtype: float32)).ToArray()
            : null;
        var context = new LayerContext(rotary, padding, input.Observer, probabilities, cancellationToken, input.Prefix);

        var x = _model.TokenEmbedding.forward(start > 0 ? ids.narrow(1, start, t - start) : ids); // (B, T − start, C)
        if (_spec.ScaleEmbeddings) x.mul_((float)Math.Sqrt(_spec.HiddenSize));
        for (var i = 0; i < Layers; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var next = _model.Layers[i].Forward(x, i, _spec.RuleOf(i), context);
            x.Dispose();  // else every layer's hidden state stays in this scope until the end (566 MB at 8,192 tokens)
            x = next;
        }
        var hidden = _model.FinalNorm.forward(x);                                    // (B, T, C)
        Tensor? logits = null;
        if (input.WantLogits)
        {
            logits = _lmHead is null ? hidden.matmul(_model.TokenEmbedding.Weight.t()) : _lmHead.forward(hidden);  // (B, T, V)
            if (_spec.FinalSoftCap is { } cap) logits = SoftCapping.Apply(logits, cap);
            logits.MoveToOuterDisposeScope();
        }
        foreach (var p in probabilities ?? []) p.MoveToOuterDisposeScope();
        return new ForwardResult(probabilities ?? [], hidden.MoveToOuterDisposeScope(), logits);
    }
}
