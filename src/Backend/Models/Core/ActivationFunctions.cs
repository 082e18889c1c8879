using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace AttentionViz.Backend.Models.Core;

/// <summary>Hugging Face's hidden_act names. An unknown name is an error, never a silent default.</summary>
public static class ActivationFunctions
{
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "gelu" => x => gelu(x),
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => GeluTanh,
        "relu" => x => relu(x),
        "silu" or "swish" => x => silu(x),
        _ => throw new ModelLoadException($"Activation '{name}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu, silu)."),
    };

    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as HF's NewGELUActivation.
    private static Tensor GeluTanh(Tensor x)
    {
        using var scope = NewDisposeScope();
        var inner = (x + 0.044715 * x.pow(3)) * Math.Sqrt(2.0 / Math.PI);
        return (0.5 * x * (1.0 + inner.tanh())).MoveToOuterDisposeScope();
    }
}
