using System.Text.Json.Serialization;
using AttentionViz.Backend.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttentionViz.Backend.Models;

// GPT-2 as in Hugging Face's GPT2LMHeadModel (nanoGPT's structure). Parameter names are the checkpoint's keys
// (transformer.h.N.attn.c_attn.weight, …). HF stores GPT-2's Conv1D weights as [in, out]; they are transposed into
// Linear [out, in] on load, and only for the keys in Gpt2Model.Conv1DWeights. B = batch, T = tokens, C = n_embd.

/// <summary>config.json of model_type gpt2.</summary>
public sealed record Gpt2Config : IModelConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 50257;
    [JsonPropertyName("n_positions")] public int NPositions { get; init; } = 1024;
    [JsonPropertyName("n_embd")] public int NEmbd { get; init; } = 768;
    [JsonPropertyName("n_layer")] public int NLayer { get; init; } = 12;
    [JsonPropertyName("n_head")] public int NHead { get; init; } = 12;
    [JsonPropertyName("n_inner")] public int? NInner { get; init; }
    [JsonPropertyName("activation_function")] public string ActivationFunction { get; init; } = "gelu_new";
    [JsonPropertyName("layer_norm_epsilon")] public double LayerNormEpsilon { get; init; } = 1e-5;
    [JsonPropertyName("scale_attn_weights")] public bool ScaleAttnWeights { get; init; } = true;
    [JsonPropertyName("scale_attn_by_inverse_layer_idx")] public bool ScaleAttnByInverseLayerIdx { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;

    public int Inner => NInner ?? 4 * NEmbd;

    public ModelShape Shape => new("gpt2", NLayer, NHead, NHead, NEmbd, VocabSize, NPositions, true, null,
        (long)(VocabSize + NPositions) * NEmbd + (long)NLayer * (4L * NEmbd * NEmbd + 2L * NEmbd * Inner));

    public void Validate(string source)
    {
        ConfigChecks.Common(source, Shape);
        ConfigChecks.Require(source, NEmbd % NHead == 0, $"n_embd {NEmbd} is not divisible by n_head {NHead}.");
        ConfigChecks.Epsilon(source, "layer_norm_epsilon", LayerNormEpsilon);
        ConfigChecks.InRange(source, "n_inner", Inner, 1, 1 << 20);
        ActivationFunctions.Get(ActivationFunction);
    }
}

internal sealed class Gpt2Attention : Module<Tensor, Tensor, (Tensor Output, Tensor Probabilities)>
{
    private readonly Dense _qkv, _proj;
    private readonly int _heads;
    private readonly double _scale;

    public Gpt2Attention(Gpt2Config config, int layerIndex) : base(nameof(Gpt2Attention))
    {
        _heads = config.NHead;
        var headDim = config.NEmbd / config.NHead;
        _scale = (config.ScaleAttnWeights ? 1.0 / Math.Sqrt(headDim) : 1.0) / (config.ScaleAttnByInverseLayerIdx ? layerIndex + 1 : 1);
        register_module("c_attn", _qkv = new Dense(config.NEmbd, 3 * config.NEmbd));   // fused q, k, v
        register_module("c_proj", _proj = new Dense(config.NEmbd, config.NEmbd));
    }

    /// <param name="x">(B, T, C)</param>
    /// <param name="allowed">bool (B or 1, 1, T, T)</param>
    public override (Tensor Output, Tensor Probabilities) forward(Tensor x, Tensor allowed)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        var qkv = _qkv.forward(x).split(c, 2);                                      // 3 × (B, T, C)
        Tensor Heads(Tensor y) => y.view(b, t, _heads, c / _heads).transpose(1, 2);   // (B, H, T, D)
        var (context, probabilities) = AttentionCore.Attend(Heads(qkv[0]), Heads(qkv[1]), Heads(qkv[2]), allowed, _scale);
        var merged = context.transpose(1, 2).reshape(b, t, c);                        // (B, T, C)
        return (_proj.forward(merged).MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope());
    }
}

internal sealed class Gpt2Mlp : Module<Tensor, Tensor>
{
    private readonly Dense _fc, _proj;
    private readonly ActivationFunction _activation;

    public Gpt2Mlp(Gpt2Config config) : base(nameof(Gpt2Mlp))
    {
        register_module("c_fc", _fc = new Dense(config.NEmbd, config.Inner));
        register_module("c_proj", _proj = new Dense(config.Inner, config.NEmbd));
        _activation = ActivationFunctions.Resolve(config.ActivationFunction);
    }

    /// <param name="x">(B, T, C)</param>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _proj.forward(_fc.forward(x, _activation)).MoveToOuterDisposeScope();  // (B, T, inner) → (B, T, C)
    }
}

internal sealed class Gpt2Block : Module<Tensor, Tensor, (Tensor Output, Tensor Probabilities)>
{
    private readonly LayerNormalization _norm1, _norm2;
    private readonly Gpt2Attention _attention;
    private readonly Gpt2Mlp _mlp;

    public Gpt2Block(Gpt2Config config, int layerIndex) : base(nameof(Gpt2Block))
    {
        register_module("ln_1", _norm1 = new LayerNormalization(config.NEmbd, config.LayerNormEpsilon));
        register_module("attn", _attention = new Gpt2Attention(config, layerIndex));
        register_module("ln_2", _norm2 = new LayerNormalization(config.NEmbd, config.LayerNormEpsilon));
        register_module("mlp", _mlp = new Gpt2Mlp(config));
    }

    /// <param name="x">(B, T, C)</param>
    public override (Tensor Output, Tensor Probabilities) forward(Tensor x, Tensor allowed)
    {
        using var scope = NewDisposeScope();
        var (attended, probabilities) = _attention.forward(_norm1.forward(x), allowed);
        var h = x + attended;                                                         // pre-norm residual
        var output = h + _mlp.forward(_norm2.forward(h));
        return (output.MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope());
    }
}

/// <summary>HF's GPT2Model: the "transformer." part of GPT2LMHeadModel.</summary>
internal sealed class Gpt2Transformer : Module
{
    public readonly EmbeddingTable TokenEmbedding, PositionEmbedding;
    public readonly ModuleList<Gpt2Block> Blocks;
    public readonly LayerNormalization FinalNorm;

    public Gpt2Transformer(Gpt2Config config) : base(nameof(Gpt2Transformer))
    {
        register_module("wte", TokenEmbedding = new EmbeddingTable(config.VocabSize, config.NEmbd));
        register_module("wpe", PositionEmbedding = new EmbeddingTable(config.NPositions, config.NEmbd));
        register_module("h", Blocks = new ModuleList<Gpt2Block>(Enumerable.Range(0, config.NLayer).Select(i => new Gpt2Block(config, i)).ToArray()));
        register_module("ln_f", FinalNorm = new LayerNormalization(config.NEmbd, config.LayerNormEpsilon));
    }
}

/// <summary>GPT2LMHeadModel: attention, last_hidden_state (after ln_f) and logits (lm_head, tied to wte unless the config unties it).</summary>
public sealed class Gpt2Model : CheckpointModel
{
    /// <summary>GPT-2's Conv1D weights, stored [in, out] in HF checkpoints: the only tensors transposed on load.</summary>
    public static readonly string[] Conv1DWeights = ["attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"];

    private readonly Gpt2Config _config;
    private readonly Gpt2Transformer _transformer;
    private readonly Dense? _lmHead;

    public Gpt2Model(Gpt2Config config, string source = "config.json") : base(nameof(Gpt2Model), config.Shape)
    {
        config.Validate(source);
        _config = config;
        register_module("transformer", _transformer = new Gpt2Transformer(config));
        if (!config.TieWordEmbeddings) register_module("lm_head", _lmHead = new Dense(config.NEmbd, config.VocabSize, bias: false));
        eval();
    }

    /// <summary>Copies the checkpoint in (bare GPT2Model or transformer.-prefixed names) and returns the unused keys.</summary>
    public override IReadOnlyList<string> LoadWeights(IWeightSource source)
    {
        var loader = new WeightLoader(source);
        loader.LoadModule(_transformer, ["transformer."],
            (name, t) => Conv1DWeights.Any(name.EndsWith) ? t.t().contiguous() : t.alias());   // [in, out] → [out, in]
        if (_lmHead is not null) loader.Load(_lmHead.Weight, "lm_head.weight");
        return loader.Finish();
    }

    public override ForwardResult Forward(ForwardInput input, CancellationToken cancellationToken = default)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = Inputs.ToTensor(input.InputIds);                                   // (B, T)
        Inputs.CheckIds(ids, VocabularySize, MaxPositions);
        var t = ids.shape[1];
        var padding = Inputs.Padding(input.AttentionMask, ids);                      // (B, T) or null
        var allowed = AttentionMasks.Build(t, causal: true, slidingWindow: null, padding)!;  // (B or 1, 1, T, T)

        var positions = arange(t, dtype: int64).unsqueeze(0);                        // (1, T)
        var x = _transformer.TokenEmbedding.forward(ids) + _transformer.PositionEmbedding.forward(positions);    // (B, T, C)
        var attentions = new Tensor[Layers];
        for (var i = 0; i < Layers; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            (x, var probabilities) = _transformer.Blocks[i].forward(x, allowed);
            attentions[i] = probabilities.MoveToOuterDisposeScope();                 // (B, H, T, T)
        }
        var hidden = _transformer.FinalNorm.forward(x);                                    // (B, T, C)
        Tensor? logits = null;
        if (input.WantLogits)
            logits = (_lmHead is null ? hidden.matmul(_transformer.TokenEmbedding.Weight.t()) : _lmHead.forward(hidden))
                .MoveToOuterDisposeScope();  // (B, T, V)
        return new ForwardResult(attentions, hidden.MoveToOuterDisposeScope(), logits);
    }
}
