using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Models.Core;

/// <summary>What one forward pass yields: every layer's attention probabilities and the final hidden states.</summary>
public sealed class ForwardResult(Tensor[] attentions, Tensor lastHiddenState) : IDisposable
{
    /// <summary>One (B, H, T, T) tensor per layer, row = query, column = key.</summary>
    public Tensor[] Attentions { get; } = attentions;

    /// <summary>(B, T, C), as Hugging Face's last_hidden_state.</summary>
    public Tensor LastHiddenState { get; } = lastHiddenState;

    public void Dispose()
    {
        foreach (var a in Attentions) a.Dispose();
        LastHiddenState.Dispose();
    }
}

/// <summary>The inputs of one forward pass (batch of one or more rows of equal length).</summary>
public sealed record ForwardInput(long[][] InputIds, long[][]? TokenTypeIds = null, long[][]? AttentionMask = null);

/// <summary>A transformer whose attention the backend can show.</summary>
public interface ITransformerModel : IDisposable
{
    string Architecture { get; }
    int Layers { get; }
    int Heads { get; }
    int HiddenSize { get; }
    int VocabularySize { get; }
    bool Causal { get; }

    /// <summary>The longest input the model accepts, special tokens included.</summary>
    int MaxPositions { get; }

    /// <summary>Runs the model in eval mode without gradients. Tensors in the result are owned by the caller.</summary>
    ForwardResult Forward(ForwardInput input, CancellationToken cancellationToken = default);
}
