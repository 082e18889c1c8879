using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttentionViz.Backend.Models.Core;

/// <summary>RMSNorm as HF's LlamaRMSNorm: weight · x / √(mean(x²) + ε), in float32.</summary>
public sealed class RmsNorm : Module<Tensor, Tensor>
{
    private readonly Parameter _weight;
    private readonly double _eps;

    public RmsNorm(int size, double eps) : base(nameof(RmsNorm))
    {
        register_parameter("weight", _weight = Parameter(ones(size)));
        _eps = eps;
    }

    /// <param name="x">(…, C)</param>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var variance = x.pow(2).mean([-1], keepdim: true);                         // (…, 1)
        return (_weight * (x * (variance + _eps).rsqrt())).MoveToOuterDisposeScope();
    }
}

/// <summary>The gated MLP of Llama, Mistral and Qwen2: down(act(gate(x)) · up(x)).</summary>
public sealed class GatedMlp : Module<Tensor, Tensor>
{
    private readonly Linear _gate, _up, _down;
    private readonly Func<Tensor, Tensor> _activation;

    public GatedMlp(int hidden, int intermediate, string activation, bool bias) : base(nameof(GatedMlp))
    {
        register_module("gate_proj", _gate = Linear(hidden, intermediate, hasBias: bias));
        register_module("up_proj", _up = Linear(hidden, intermediate, hasBias: bias));
        register_module("down_proj", _down = Linear(intermediate, hidden, hasBias: bias));
        _activation = ActivationFunctions.Get(activation);
    }

    /// <param name="x">(B, T, C)</param>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gated = _activation(_gate.forward(x)).mul_(_up.forward(x));            // (B, T, I)
        return _down.forward(gated).MoveToOuterDisposeScope();                      // (B, T, C)
    }
}

/// <summary>Helpers for turning request arrays into tensors.</summary>
public static class Inputs
{
    /// <returns>(B, T) int64</returns>
    public static Tensor ToTensor(long[][] rows)
    {
        if (rows.Length == 0) throw new ArgumentException("The batch is empty.");
        var width = rows[0].Length;
        if (width == 0) throw new ArgumentException("A row of the batch is empty.");
        if (rows.Any(r => r.Length != width)) throw new ArgumentException("All rows of a batch must have the same length.");
        return tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, width]);
    }

    public static void CheckIds(Tensor ids, int vocabulary, int maxPositions)
    {
        if (ids.shape[1] > maxPositions)
            throw new ArgumentException($"{ids.shape[1]} tokens exceed the model's window of {maxPositions}.");
        var (min, max) = (ids.min().item<long>(), ids.max().item<long>());
        if (min < 0 || max >= vocabulary)
            throw new ArgumentException($"Token id {(min < 0 ? min : max)} is outside the vocabulary (0..{vocabulary - 1}).");
    }
}
