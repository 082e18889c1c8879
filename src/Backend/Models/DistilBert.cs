using System.Text.Json.Serialization;
using AttentionViz.Backend.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttentionViz.Backend.Models;

// DistilBERT as in Hugging Face's DistilBertModel: BERT-like post-norm layers under its own names (q_lin, sa_layer_norm,
// ffn.lin1, …), learned (or fixed sinusoidal, stored in the checkpoint) positions, no token types.
// B = batch, T = tokens, C = dim, H = n_heads, D = C / H.

/// <summary>config.json of model_type distilbert.</summary>
public sealed record DistilBertConfig : IModelConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 30522;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 512;
    [JsonPropertyName("n_layers")] public int NLayers { get; init; } = 6;
    [JsonPropertyName("n_heads")] public int NHeads { get; init; } = 12;
    [JsonPropertyName("dim")] public int Dim { get; init; } = 768;
    [JsonPropertyName("hidden_dim")] public int HiddenDim { get; init; } = 3072;
    [JsonPropertyName("activation")] public string Activation { get; init; } = "gelu";

    /// <summary>DistilBERT's LayerNorms use a fixed ε (not in config.json).</summary>
    public const double LayerNormEps = 1e-12;

    public ModelShape Shape => new("distilbert", NLayers, NHeads, NHeads, Dim, VocabSize, MaxPositionEmbeddings, false, null,
        (long)(VocabSize + MaxPositionEmbeddings) * Dim + (long)NLayers * (4L * Dim * Dim + 2L * Dim * HiddenDim));

    public void Validate(string source)
    {
        ConfigChecks.Common(source, Shape);
        ConfigChecks.Require(source, Dim % NHeads == 0, $"dim {Dim} is not divisible by n_heads {NHeads}.");
        ConfigChecks.InRange(source, "hidden_dim", HiddenDim, 1, 1 << 20);
        ActivationFunctions.Get(Activation);
    }
}

internal sealed class DistilBertEmbeddings : Module<Tensor, Tensor>
{
    private readonly EmbeddingTable _word, _position;
    private readonly LayerNormalization _norm;

    public DistilBertEmbeddings(DistilBertConfig config) : base(nameof(DistilBertEmbeddings))
    {
        register_module("word_embeddings", _word = new EmbeddingTable(config.VocabSize, config.Dim));
        register_module("position_embeddings", _position = new EmbeddingTable(config.MaxPositionEmbeddings, config.Dim));
        register_module("LayerNorm", _norm = new LayerNormalization(config.Dim, DistilBertConfig.LayerNormEps));
    }

    /// <param name="inputIds">(B, T)</param>
    /// <returns>(B, T, C)</returns>
    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var positions = arange(inputIds.shape[1], dtype: int64).unsqueeze(0);      // (1, T)
        return _norm.forward(_word.forward(inputIds) + _position.forward(positions)).MoveToOuterDisposeScope();
    }
}

internal sealed class DistilBertAttention : Module<Tensor, Tensor?, (Tensor Output, Tensor Probabilities)>
{
    private readonly Dense _q, _k, _v, _out;
    private readonly int _heads;

    public DistilBertAttention(DistilBertConfig config) : base(nameof(DistilBertAttention))
    {
        _heads = config.NHeads;
        register_module("q_lin", _q = new Dense(config.Dim, config.Dim));
        register_module("k_lin", _k = new Dense(config.Dim, config.Dim));
        register_module("v_lin", _v = new Dense(config.Dim, config.Dim));
        register_module("out_lin", _out = new Dense(config.Dim, config.Dim));
    }

    /// <param name="x">(B, T, C)</param>
    /// <param name="allowed">bool (B, 1, 1, T) or null</param>
    public override (Tensor Output, Tensor Probabilities) forward(Tensor x, Tensor? allowed)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        Tensor Heads(Tensor y) => y.view(b, t, _heads, c / _heads).transpose(1, 2);   // (B, H, T, D)
        var (context, probabilities) = AttentionCore.Attend(Heads(_q.forward(x)), Heads(_k.forward(x)), Heads(_v.forward(x)), allowed);
        var merged = context.transpose(1, 2).reshape(b, t, c);                        // (B, T, C)
        return (_out.forward(merged).MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope());
    }
}

internal sealed class DistilBertFfn : Module<Tensor, Tensor>
{
    private readonly Dense _lin1, _lin2;
    private readonly ActivationFunction _activation;

    public DistilBertFfn(DistilBertConfig config) : base(nameof(DistilBertFfn))
    {
        register_module("lin1", _lin1 = new Dense(config.Dim, config.HiddenDim));
        register_module("lin2", _lin2 = new Dense(config.HiddenDim, config.Dim));
        _activation = ActivationFunctions.Resolve(config.Activation);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _lin2.forward(_lin1.forward(x, _activation)).MoveToOuterDisposeScope();  // (B, T, hidden_dim) → (B, T, C)
    }
}

internal sealed class DistilBertLayer : Module<Tensor, Tensor?, (Tensor Output, Tensor Probabilities)>
{
    private readonly DistilBertAttention _attention;
    private readonly LayerNormalization _attentionNorm, _outputNorm;
    private readonly DistilBertFfn _ffn;

    public DistilBertLayer(DistilBertConfig config) : base(nameof(DistilBertLayer))
    {
        register_module("attention", _attention = new DistilBertAttention(config));
        register_module("sa_layer_norm", _attentionNorm = new LayerNormalization(config.Dim, DistilBertConfig.LayerNormEps));
        register_module("ffn", _ffn = new DistilBertFfn(config));
        register_module("output_layer_norm", _outputNorm = new LayerNormalization(config.Dim, DistilBertConfig.LayerNormEps));
    }

    /// <param name="x">(B, T, C)</param>
    public override (Tensor Output, Tensor Probabilities) forward(Tensor x, Tensor? allowed)
    {
        using var scope = NewDisposeScope();
        var (attended, probabilities) = _attention.forward(x, allowed);
        var h = _attentionNorm.forward(attended + x);                                 // post-norm residual
        var output = _outputNorm.forward(_ffn.forward(h) + h);
        return (output.MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope());
    }
}

internal sealed class DistilBertTransformer : Module
{
    public readonly ModuleList<DistilBertLayer> Layers;

    public DistilBertTransformer(DistilBertConfig config) : base(nameof(DistilBertTransformer))
    {
        register_module("layer", Layers = new ModuleList<DistilBertLayer>(
            Enumerable.Range(0, config.NLayers).Select(_ => new DistilBertLayer(config)).ToArray()));
    }
}

/// <summary>DistilBertModel: attention and last_hidden_state.</summary>
public sealed class DistilBertModel : CheckpointModel
{
    private readonly DistilBertConfig _config;
    private readonly DistilBertEmbeddings _embeddings;
    private readonly DistilBertTransformer _transformer;

    public DistilBertModel(DistilBertConfig config, string source = "config.json") : base(nameof(DistilBertModel), config.Shape)
    {
        config.Validate(source);
        _config = config;
        register_module("embeddings", _embeddings = new DistilBertEmbeddings(config));
        register_module("transformer", _transformer = new DistilBertTransformer(config));
        eval();
    }

    /// <summary>Copies the checkpoint in (bare or distilbert.-prefixed names) and returns the unused keys (vocab_*, classifier, …).</summary>
    public override IReadOnlyList<string> LoadWeights(IWeightSource source)
    {
        var loader = new WeightLoader(source);
        loader.LoadModule(this, ["distilbert."]);
        return loader.Finish();
    }

    public override ForwardResult Forward(ForwardInput input, CancellationToken cancellationToken = default)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = Inputs.ToTensor(input.InputIds);                                   // (B, T)
        Inputs.CheckIds(ids, VocabularySize, MaxPositions);
        var padding = Inputs.Padding(input.AttentionMask, ids);                      // (B, T) or null
        var allowed = AttentionMasks.Build(ids.shape[1], causal: false, slidingWindow: null, padding);  // (B, 1, 1, S) or null

        var x = _embeddings.forward(ids);                                            // (B, T, C)
        var attentions = new Tensor[Layers];
        for (var i = 0; i < Layers; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            (x, var probabilities) = _transformer.Layers[i].forward(x, allowed);
            attentions[i] = probabilities.MoveToOuterDisposeScope();                 // (B, H, T, T)
        }
        return new ForwardResult(attentions, x.MoveToOuterDisposeScope());
    }
}
