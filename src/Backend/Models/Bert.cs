using System.Text.Json.Serialization;
using AttentionViz.Backend.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttentionViz.Backend.Models;

// BERT as in Hugging Face's BertModel (and all-MiniLM-L6-v2), and RoBERTa, which differs only in its position ids and
// checkpoint prefix. Parameter names are HF's state-dict keys, registered explicitly so that C# names stay PascalCase.
// B = batch, T = tokens, C = hidden, H = heads, D = C / H.

/// <summary>config.json of model_type bert or roberta.</summary>
public sealed record BertConfig : IModelConfig
{
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "bert";
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int NumLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public int NumHeads { get; init; }
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "gelu";
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; }
    [JsonPropertyName("type_vocab_size")] public int TypeVocabSize { get; init; } = 2;
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-12;
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; }
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; init; } = "absolute";

    public bool IsRoberta => ModelType == "roberta";

    /// <summary>RoBERTa's position ids start at padding_idx + 1, so the usable window is that much shorter.</summary>
    public int Window => IsRoberta ? MaxPositionEmbeddings - (PadTokenId ?? 1) - 1 : MaxPositionEmbeddings;

    public ModelShape Shape => new(ModelType, NumLayers, NumHeads, NumHeads, HiddenSize, VocabSize, Window, false, null,
        (long)(VocabSize + MaxPositionEmbeddings + TypeVocabSize) * HiddenSize
        + (long)NumLayers * (4L * HiddenSize * HiddenSize + 2L * HiddenSize * IntermediateSize));

    public void Validate(string source)
    {
        ConfigChecks.Common(source, Shape);
        ConfigChecks.Epsilon(source, "layer_norm_eps", LayerNormEps);
        ConfigChecks.Require(source, HiddenSize % NumHeads == 0, $"hidden_size {HiddenSize} is not divisible by num_attention_heads {NumHeads}.");
        ConfigChecks.InRange(source, "intermediate_size", IntermediateSize, 1, 1 << 20);
        ConfigChecks.InRange(source, "type_vocab_size", TypeVocabSize, 1, 1 << 16);
        ConfigChecks.Require(source, Window > 0, $"max_position_embeddings {MaxPositionEmbeddings} leaves no room after pad_token_id {PadTokenId}.");
        ConfigChecks.Require(source, !IsRoberta || PadTokenId is >= 0 && PadTokenId < VocabSize, $"pad_token_id {PadTokenId} is not a token id.");
        if (PositionEmbeddingType != "absolute")
            throw new ModelLoadException($"{source}: position_embedding_type '{PositionEmbeddingType}' is not supported (only 'absolute').");
        ActivationFunctions.Get(HiddenAct);
    }
}

internal sealed class BertEmbeddings : Module<Tensor, Tensor, Tensor>
{
    private readonly EmbeddingTable _word, _position, _tokenType;
    private readonly LayerNormalization _norm;
    private readonly int? _robertaPaddingIndex;

    public BertEmbeddings(BertConfig config) : base(nameof(BertEmbeddings))
    {
        _robertaPaddingIndex = config.IsRoberta ? config.PadTokenId ?? 1 : null;
        register_module("word_embeddings", _word = new EmbeddingTable(config.VocabSize, config.HiddenSize));
        register_module("position_embeddings", _position = new EmbeddingTable(config.MaxPositionEmbeddings, config.HiddenSize));
        register_module("token_type_embeddings", _tokenType = new EmbeddingTable(config.TypeVocabSize, config.HiddenSize));
        register_module("LayerNorm", _norm = new LayerNormalization(config.HiddenSize, config.LayerNormEps));
    }

    /// <param name="inputIds">(B, T)</param>
    /// <param name="tokenTypeIds">(B, T)</param>
    /// <returns>(B, T, C)</returns>
    public override Tensor forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        var positions = _robertaPaddingIndex is { } pad
            ? RobertaPositionIds(inputIds, pad)                                      // (B, T)
            : arange(inputIds.shape[1], dtype: int64).unsqueeze(0);                  // (1, T)
        var sum = _word.forward(inputIds) + _position.forward(positions) + _tokenType.forward(tokenTypeIds);
        return _norm.forward(sum).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// HF's create_position_ids_from_input_ids: non-padding tokens count up from padding_idx + 1, padding tokens keep
    /// padding_idx. (B, T) → (B, T)
    /// </summary>
    public static Tensor RobertaPositionIds(Tensor inputIds, long paddingIndex)
    {
        using var scope = NewDisposeScope();
        var mask = inputIds.ne(paddingIndex).to(int64);                             // (B, T)
        return (mask.cumsum(1, int64) * mask + paddingIndex).MoveToOuterDisposeScope();
    }
}

internal sealed class BertSelfAttention : Module<Tensor, Tensor?, (Tensor Context, Tensor Probabilities)>
{
    private readonly Dense _query, _key, _value;
    private readonly int _heads;

    public BertSelfAttention(BertConfig config) : base(nameof(BertSelfAttention))
    {
        _heads = config.NumHeads;
        register_module("query", _query = new Dense(config.HiddenSize, config.HiddenSize));
        register_module("key", _key = new Dense(config.HiddenSize, config.HiddenSize));
        register_module("value", _value = new Dense(config.HiddenSize, config.HiddenSize));
    }

    /// <param name="x">(B, T, C)</param>
    /// <param name="allowed">bool (B, 1, 1, T): false for padded keys; or null</param>
    /// <returns>context (B, T, C) and probabilities (B, H, T, T)</returns>
    public override (Tensor Context, Tensor Probabilities) forward(Tensor x, Tensor? allowed)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        Tensor SplitHeads(Tensor y) => y.view(b, t, _heads, c / _heads).transpose(1, 2);   // (B, H, T, D)
        var (context, probabilities) = AttentionCore.Attend(
            SplitHeads(_query.forward(x)), SplitHeads(_key.forward(x)), SplitHeads(_value.forward(x)), allowed);
        var merged = context.transpose(1, 2).reshape(b, t, c);                      // (B, T, C)
        return (merged.MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope());
    }
}

/// <summary>dense → LayerNorm(x + residual): BERT's post-norm sub-layer output, used after attention and after the FFN.</summary>
internal sealed class BertResidualOutput : Module<Tensor, Tensor, Tensor>
{
    private readonly Dense _dense;
    private readonly LayerNormalization _norm;

    public BertResidualOutput(int inFeatures, BertConfig config) : base(nameof(BertResidualOutput))
    {
        register_module("dense", _dense = new Dense(inFeatures, config.HiddenSize));
        register_module("LayerNorm", _norm = new LayerNormalization(config.HiddenSize, config.LayerNormEps));
    }

    /// <param name="x">(B, T, in)</param>
    /// <param name="residual">(B, T, C)</param>
    public override Tensor forward(Tensor x, Tensor residual)
    {
        using var scope = NewDisposeScope();
        return _norm.forward(_dense.forward(x, null, residual)).MoveToOuterDisposeScope();
    }
}

internal sealed class BertAttention : Module<Tensor, Tensor?, (Tensor Output, Tensor Probabilities)>
{
    private readonly BertSelfAttention _self;
    private readonly BertResidualOutput _output;

    public BertAttention(BertConfig config) : base(nameof(BertAttention))
    {
        register_module("self", _self = new BertSelfAttention(config));
        register_module("output", _output = new BertResidualOutput(config.HiddenSize, config));
    }

    public override (Tensor Output, Tensor Probabilities) forward(Tensor x, Tensor? allowed)
    {
        var (context, probabilities) = _self.forward(x, allowed);
        using (context) return (_output.forward(context, x), probabilities);
    }
}

internal sealed class BertIntermediate : Module<Tensor, Tensor>
{
    private readonly Dense _dense;
    private readonly ActivationFunction _activation;

    public BertIntermediate(BertConfig config) : base(nameof(BertIntermediate))
    {
        register_module("dense", _dense = new Dense(config.HiddenSize, config.IntermediateSize));
        _activation = ActivationFunctions.Resolve(config.HiddenAct);
    }

    /// <param name="x">(B, T, C)</param>
    /// <returns>(B, T, intermediate)</returns>
    public override Tensor forward(Tensor x) => _dense.forward(x, _activation);
}

internal sealed class BertLayer : Module<Tensor, Tensor?, (Tensor Output, Tensor Probabilities)>
{
    private readonly BertAttention _attention;
    private readonly BertIntermediate _intermediate;
    private readonly BertResidualOutput _output;

    public BertLayer(BertConfig config) : base(nameof(BertLayer))
    {
        register_module("attention", _attention = new BertAttention(config));
        register_module("intermediate", _intermediate = new BertIntermediate(config));
        register_module("output", _output = new BertResidualOutput(config.IntermediateSize, config));
    }

    /// <param name="x">(B, T, C)</param>
    /// <returns>(B, T, C) and probabilities (B, H, T, T)</returns>
    public override (Tensor Output, Tensor Probabilities) forward(Tensor x, Tensor? allowed)
    {
        var (attended, probabilities) = _attention.forward(x, allowed);
        using (attended)
        using (var hidden = _intermediate.forward(attended))
            return (_output.forward(hidden, attended), probabilities);
    }
}

internal sealed class BertEncoder : Module
{
    public readonly ModuleList<BertLayer> Layers;

    public BertEncoder(BertConfig config) : base(nameof(BertEncoder))
    {
        register_module("layer",
            Layers = new ModuleList<BertLayer>(Enumerable.Range(0, config.NumLayers).Select(_ => new BertLayer(config)).ToArray()));
    }
}

/// <summary>BertModel / RobertaModel without the pooler (the pooler plays no part in attention or last_hidden_state).</summary>
public sealed class BertModel : CheckpointModel
{
    private readonly BertConfig _config;
    private readonly BertEmbeddings _embeddings;
    private readonly BertEncoder _encoder;

    public BertModel(BertConfig config, string source = "config.json") : base(nameof(BertModel), config.Shape)
    {
        config.Validate(source);
        _config = config;
        register_module("embeddings", _embeddings = new BertEmbeddings(config));
        register_module("encoder", _encoder = new BertEncoder(config));
        eval();
    }

    /// <summary>Copies the checkpoint in (bare, bert.- or roberta.-prefixed names) and returns the unused keys (pooler, cls.*, lm_head.*).</summary>
    public override IReadOnlyList<string> LoadWeights(IWeightSource source)
    {
        var loader = new WeightLoader(source);
        loader.LoadModule(this, _config.IsRoberta ? ["roberta."] : ["bert."]);
        return loader.Finish();
    }

    public override ForwardResult Forward(ForwardInput input, CancellationToken cancellationToken = default)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = Inputs.ToTensor(input.InputIds);                                   // (B, T)
        Inputs.CheckIds(ids, VocabularySize, MaxPositions);
        var tokenTypes = input.TokenTypeIds is null ? zeros_like(ids) : Inputs.ToTensor(input.TokenTypeIds);
        if (!tokenTypes.shape.SequenceEqual(ids.shape)) throw new ArgumentException("token_type_ids must have the shape of input_ids.");
        if (tokenTypes.min().item<long>() < 0 || tokenTypes.max().item<long>() >= _config.TypeVocabSize)
            throw new ArgumentException($"token type ids must be in 0..{_config.TypeVocabSize - 1}.");
        var padding = Inputs.Padding(input.AttentionMask, ids);                      // (B, T) or null
        var allowed = AttentionMasks.Build(ids.shape[1], causal: false, slidingWindow: null, padding);  // (B, 1, 1, S) or null

        var x = _embeddings.forward(ids, tokenTypes);                                // (B, T, C)
        var attentions = new Tensor[Layers];
        for (var i = 0; i < Layers; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            (x, var probabilities) = _encoder.Layers[i].forward(x, allowed);
            attentions[i] = probabilities.MoveToOuterDisposeScope();                 // (B, H, T, T)
        }
        return new ForwardResult(attentions, x.MoveToOuterDisposeScope());
    }
}
