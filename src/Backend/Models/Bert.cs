using AttentionViz.Backend.Models.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttentionViz.Backend.Models;

// BERT as in Hugging Face's BertModel (and all-MiniLM-L6-v2). Parameter names are HF's state-dict keys, registered
// explicitly so that C# names stay PascalCase. B = batch, T = tokens, C = hidden, H = heads, D = C / H.

internal sealed class BertEmbeddings : Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding _word, _position, _tokenType;
    private readonly LayerNorm _norm;

    public BertEmbeddings(ModelConfig config) : base(nameof(BertEmbeddings))
    {
        register_module("word_embeddings", _word = Embedding(config.VocabSize, config.HiddenSize));
        register_module("position_embeddings", _position = Embedding(config.MaxPositionEmbeddings, config.HiddenSize));
        register_module("token_type_embeddings", _tokenType = Embedding(config.TypeVocabSize, config.HiddenSize));
        register_module("LayerNorm", _norm = LayerNorm(config.HiddenSize, config.LayerNormEps));
    }

    /// <param name="inputIds">(B, T)</param>
    /// <param name="tokenTypeIds">(B, T)</param>
    /// <returns>(B, T, C)</returns>
    public override Tensor forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        var positions = arange(inputIds.shape[1], dtype: int64).unsqueeze(0);      // (1, T)
        var sum = _word.forward(inputIds) + _position.forward(positions) + _tokenType.forward(tokenTypeIds);
        return _norm.forward(sum).MoveToOuterDisposeScope();
    }
}

internal sealed class BertSelfAttention : Module<Tensor, Tensor?, (Tensor Context, Tensor Probabilities)>
{
    private readonly Linear _query, _key, _value;
    private readonly int _heads;

    public BertSelfAttention(ModelConfig config) : base(nameof(BertSelfAttention))
    {
        _heads = config.NumHeads;
        register_module("query", _query = Linear(config.HiddenSize, config.HiddenSize));
        register_module("key", _key = Linear(config.HiddenSize, config.HiddenSize));
        register_module("value", _value = Linear(config.HiddenSize, config.HiddenSize));
    }

    /// <param name="x">(B, T, C)</param>
    /// <param name="additiveMask">(B, 1, 1, T) or null</param>
    /// <returns>context (B, T, C) and probabilities (B, H, T, T)</returns>
    public override (Tensor Context, Tensor Probabilities) forward(Tensor x, Tensor? additiveMask)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        Tensor SplitHeads(Tensor y) => y.view(b, t, _heads, c / _heads).transpose(1, 2);   // (B, H, T, D)
        var (context, probabilities) = AttentionCore.Attend(
            SplitHeads(_query.forward(x)), SplitHeads(_key.forward(x)), SplitHeads(_value.forward(x)), additiveMask);
        var merged = context.transpose(1, 2).reshape(b, t, c);                      // (B, T, C)
        return (merged.MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope());
    }
}

/// <summary>dense → LayerNorm(x + residual): BERT's post-norm sub-layer output, used after attention and after the FFN.</summary>
internal sealed class BertResidualOutput : Module<Tensor, Tensor, Tensor>
{
    private readonly Linear _dense;
    private readonly LayerNorm _norm;

    public BertResidualOutput(int inFeatures, ModelConfig config) : base(nameof(BertResidualOutput))
    {
        register_module("dense", _dense = Linear(inFeatures, config.HiddenSize));
        register_module("LayerNorm", _norm = LayerNorm(config.HiddenSize, config.LayerNormEps));
    }

    /// <param name="x">(B, T, in)</param>
    /// <param name="residual">(B, T, C)</param>
    public override Tensor forward(Tensor x, Tensor residual)
    {
        using var scope = NewDisposeScope();
        return _norm.forward(_dense.forward(x).add_(residual)).MoveToOuterDisposeScope();
    }
}

internal sealed class BertAttention : Module<Tensor, Tensor?, (Tensor Output, Tensor Probabilities)>
{
    private readonly BertSelfAttention _self;
    private readonly BertResidualOutput _output;

    public BertAttention(ModelConfig config) : base(nameof(BertAttention))
    {
        register_module("self", _self = new BertSelfAttention(config));
        register_module("output", _output = new BertResidualOutput(config.HiddenSize, config));
    }

    public override (Tensor Output, Tensor Probabilities) forward(Tensor x, Tensor? additiveMask)
    {
        var (context, probabilities) = _self.forward(x, additiveMask);
        using (context) return (_output.forward(context, x), probabilities);
    }
}

internal sealed class BertIntermediate : Module<Tensor, Tensor>
{
    private readonly Linear _dense;
    private readonly Func<Tensor, Tensor> _activation;

    public BertIntermediate(ModelConfig config) : base(nameof(BertIntermediate))
    {
        register_module("dense", _dense = Linear(config.HiddenSize, config.IntermediateSize));
        _activation = ActivationFunctions.Get(config.HiddenAct);
    }

    /// <param name="x">(B, T, C)</param>
    /// <returns>(B, T, intermediate)</returns>
    public override Tensor forward(Tensor x)
    {
        using var hidden = _dense.forward(x);
        return _activation(hidden);
    }
}

internal sealed class BertLayer : Module<Tensor, Tensor?, (Tensor Output, Tensor Probabilities)>
{
    private readonly BertAttention _attention;
    private readonly BertIntermediate _intermediate;
    private readonly BertResidualOutput _output;

    public BertLayer(ModelConfig config) : base(nameof(BertLayer))
    {
        register_module("attention", _attention = new BertAttention(config));
        register_module("intermediate", _intermediate = new BertIntermediate(config));
        register_module("output", _output = new BertResidualOutput(config.IntermediateSize, config));
    }

    /// <param name="x">(B, T, C)</param>
    /// <returns>(B, T, C) and probabilities (B, H, T, T)</returns>
    public override (Tensor Output, Tensor Probabilities) forward(Tensor x, Tensor? additiveMask)
    {
        var (attended, probabilities) = _attention.forward(x, additiveMask);
        using (attended)
        using (var hidden = _intermediate.forward(attended))
            return (_output.forward(hidden, attended), probabilities);
    }
}

internal sealed class BertEncoder : Module
{
    public readonly ModuleList<BertLayer> Layers;

    public BertEncoder(ModelConfig config) : base(nameof(BertEncoder))
    {
        register_module("layer", Layers = new ModuleList<BertLayer>(Enumerable.Range(0, config.NumLayers).Select(_ => new BertLayer(config)).ToArray()));
    }
}

/// <summary>BertModel without the pooler (the pooler plays no part in attention or last_hidden_state).</summary>
public sealed class BertModel : Module, ITransformerModel
{
    private readonly ModelConfig _config;
    private readonly BertEmbeddings _embeddings;
    private readonly BertEncoder _encoder;

    public BertModel(ModelConfig config) : base(nameof(BertModel))
    {
        config.Validate("config.json");
        if (config.PositionEmbeddingType != "absolute")
            throw new ModelLoadException($"position_embedding_type '{config.PositionEmbeddingType}' is not supported (only 'absolute').");
        _config = config;
        register_module("embeddings", _embeddings = new BertEmbeddings(config));
        register_module("encoder", _encoder = new BertEncoder(config));
        eval();
    }

    public static readonly string[] CheckpointPrefixes = ["bert."];

    public string Architecture => "bert";
    public int Layers => _config.NumLayers;
    public int Heads => _config.NumHeads;
    public int HiddenSize => _config.HiddenSize;
    public int VocabularySize => _config.VocabSize;
    public bool Causal => false;
    public int MaxPositions => _config.MaxPositionEmbeddings;

    public ForwardResult Forward(ForwardInput input, CancellationToken cancellationToken = default)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = ToTensor(input.InputIds);                                          // (B, T)
        if (ids.shape[1] > MaxPositions)
            throw new ArgumentException($"{ids.shape[1]} tokens exceed the model's window of {MaxPositions}.");
        var tokenTypes = input.TokenTypeIds is null ? zeros_like(ids) : ToTensor(input.TokenTypeIds);
        var mask = input.AttentionMask is null ? null : AttentionCore.PaddingToAdditive(ToTensor(input.AttentionMask));

        var x = _embeddings.forward(ids, tokenTypes);                                // (B, T, C)
        var attentions = new Tensor[Layers];
        for (var i = 0; i < Layers; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            (x, var probabilities) = _encoder.Layers[i].forward(x, mask);
            attentions[i] = probabilities.MoveToOuterDisposeScope();                 // (B, H, T, T)
        }
        return new ForwardResult(attentions, x.MoveToOuterDisposeScope());
    }

    internal static Tensor ToTensor(long[][] rows)
    {
        var width = rows[0].Length;
        if (rows.Any(r => r.Length != width)) throw new ArgumentException("All rows of a batch must have the same length.");
        return tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, width]);
    }
}
