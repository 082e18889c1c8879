using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Models.Core;

/// <summary>What one forward pass yields: every layer's attention probabilities and the final hidden states.</summary>
public sealed class ForwardResult(Tensor[] attentions, Tensor lastHiddenState, Tensor? logits = null) : IDisposable
{
    /// <summary>One (B, H, T, T) tensor per layer, row = query, column = key. Masked entries are exactly 0.</summary>
    public Tensor[] Attentions { get; } = attentions;

    /// <summary>(B, T, C), as Hugging Face's last_hidden_state (after the final norm for GPT-2 and Llama).</summary>
    public Tensor LastHiddenState { get; } = lastHiddenState;

    /// <summary>(B, T, V) language-model logits, when asked for with <see cref="ForwardInput.WantLogits"/> and the model has an LM head.</summary>
    public Tensor? Logits { get; } = logits;

    public void Dispose()
    {
        foreach (var a in Attentions) a.Dispose();
        LastHiddenState.Dispose();
        Logits?.Dispose();
    }
}

/// <summary>The inputs of one forward pass (batch of one or more rows of equal length).</summary>
/// <param name="InputIds">(B, T) token ids</param>
/// <param name="TokenTypeIds">(B, T) segment ids for BERT-style models; ignored by models without token types</param>
/// <param name="AttentionMask">(B, T) 1 = token, 0 = padding; padded keys get exactly zero attention</param>
/// <param name="WantLogits">also compute the LM head's logits (costs T × vocabulary × hidden; causal LMs only)</param>
/// <param name="Observer">for models that attend in blocks (<see cref="ITransformerModel.AttendsInBlocks"/>): receives
/// every block and layer state instead of <see cref="ForwardResult.Attentions"/>, which is then empty</param>
/// <param name="Prefix">for causal models that attend in blocks: the first <see cref="KeyValuePrefix.Length"/> tokens'
/// keys and values from an earlier forward over the same ids; only the rest runs, and the result's hidden states (and
/// logits) cover only those rows</param>
public sealed record ForwardInput(long[][] InputIds, long[][]? TokenTypeIds = null, long[][]? AttentionMask = null, bool WantLogits = false,
    IAttentionObserver? Observer = null, KeyValuePrefix? Prefix = null);

/// <summary>
/// A causal forward's per-layer keys (after RoPE) and values for its first <paramref name="Length"/> tokens: in a causal
/// model they depend on those tokens only, so a forward over the same prefix and a new suffix can start from them.
/// The tensors are read, never written: they may belong to an analysis that is still being read.
/// </summary>
/// <param name="Keys">per layer (KV, ≥ Length, D) float32; the first Length rows are used</param>
/// <param name="Values">per layer (KV, ≥ Length, D) float32</param>
public sealed record KeyValuePrefix(int Length, IReadOnlyList<Tensor> Keys, IReadOnlyList<Tensor> Values);

/// <summary>An observer that also keeps each layer's values (so that a later forward can reuse the prefix).</summary>
public interface IValueObserver
{
    /// <param name="values">(KV, T, D) float32, every position's values (the reused prefix's included)</param>
    void Values(int layer, Tensor values);
}

/// <summary>A transformer whose attention the backend can show.</summary>
public interface ITransformerModel : IDisposable
{
    /// <summary>config.json's model_type (bert, roberta, distilbert, gpt2, llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gemma3,
    /// phi3).</summary>
    string Architecture { get; }
    int Layers { get; }

    /// <summary>Query heads: the attention tensors have this many heads.</summary>
    int Heads { get; }

    /// <summary>Key/value heads (fewer than <see cref="Heads"/> for grouped- and multi-query attention).</summary>
    int KeyValueHeads { get; }
    int HiddenSize { get; }
    int VocabularySize { get; }

    /// <summary>True for decoder models: query i sees keys 0..i only.</summary>
    bool Causal { get; }

    /// <summary>The longest input the model accepts, special tokens included.</summary>
    int MaxPositions { get; }

    /// <summary>True when the forward attends in blocks and reports to <see cref="ForwardInput.Observer"/>.</summary>
    bool AttendsInBlocks { get; }

    /// <summary>The width of each query and key head.</summary>
    int HeadDim { get; }

    /// <summary>The weights' size in memory, bytes (float32 parameters).</summary>
    long WeightBytes { get; }

    /// <summary>The MLP's inner width: with the hidden size, what a forward's working set grows by per token.</summary>
    int IntermediateSize { get; }

    /// <summary>Runs the model in eval mode without gradients. Tensors in the result are owned by the caller.</summary>
    ForwardResult Forward(ForwardInput input, CancellationToken cancellationToken = default);
}

/// <summary>A model built from a config whose weights come from a checkpoint.</summary>
public interface ICheckpointModel : ITransformerModel
{
    /// <summary>Copies the weights in with a strict name and shape check; returns the checkpoint keys left unused (heads, buffers).</summary>
    IReadOnlyList<string> LoadWeights(IWeightSource source);
}

/// <summary>The top module of a family: what <see cref="ITransformerModel"/> reports comes from the config's shape, once.</summary>
public abstract class CheckpointModel(string name, ModelShape shape) : nn.Module(name), ICheckpointModel
{
    public string Architecture => shape.Architecture;
    public int Layers => shape.Layers;
    public int Heads => shape.Heads;
    public int KeyValueHeads => shape.KeyValueHeads;
    public int HiddenSize => shape.HiddenSize;
    public int VocabularySize => shape.VocabularySize;
    public bool Causal => shape.Causal;
    public int MaxPositions => shape.MaxPositions;
    public long WeightBytes => shape.EstimatedParameters * sizeof(float);
    public virtual bool AttendsInBlocks => false;
    public virtual int HeadDim => HiddenSize / Heads;
    public virtual int IntermediateSize => 4 * HiddenSize;

    public abstract IReadOnlyList<string> LoadWeights(IWeightSource source);
    public abstract ForwardResult Forward(ForwardInput input, CancellationToken cancellationToken = default);
}
