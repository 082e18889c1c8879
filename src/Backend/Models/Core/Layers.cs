using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace AttentionViz.Backend.Models.Core;

// The checkpoint overwrites every parameter (the loader's check is strict), so these layers allocate their parameters
// without TorchSharp's random initialisation, which costs seconds per billion parameters and touches every page.

/// <summary>nn.Linear (y = x·Wᵀ + b, weight [out, in]) with uninitialised parameters.</summary>
public sealed class Dense : Module<Tensor, Tensor>
{
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public Dense(long inFeatures, long outFeatures, bool bias = true) : base(nameof(Dense))
    {
        register_parameter("weight", Weight = new Parameter(empty(outFeatures, inFeatures), requires_grad: false));
        if (bias) register_parameter("bias", Bias = new Parameter(empty(outFeatures), requires_grad: false));
    }

    /// <summary>The most floats one span may cover (2 GB); tests lower it to run the row steps on small inputs.</summary>
    internal static long SpanLimitFloats { get; set; } = int.MaxValue / sizeof(float);

    /// <summary>The kernel that runs this layer once its weight is packed (<see cref="PackAll"/>), else null: libtorch.</summary>
    public LinearKernel.Path? PackedFor { get; private set; }

    /// <summary>
    /// Packs every dense layer's weight in place for <paramref name="path"/> once the checkpoint is loaded (no second
    /// copy). Layers whose weight would pass 2 GB (a span's limit), and every layer on the torch path, stay
    /// as they are and run in libtorch.
    /// </summary>
    public static void PackAll(Module root, LinearKernel.Path path)
    {
        if (path == LinearKernel.Path.Torch) return;
        // A module registered twice, or two layers sharing one weight, must be packed once.
        var weights = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var dense in root.modules().OfType<Dense>().Distinct())
        {
            if (dense.Weight.NumberOfElements > int.MaxValue / sizeof(float) || dense.Weight.dtype != float32) continue;
            if (weights.Add(dense.Weight)) LinearKernel.Pack(Floats(dense.Weight), (int)dense.Weight.shape[0], (int)dense.Weight.shape[1]);
            dense.PackedFor = path;
        }
    }

    /// <param name="x">(…, in)</param>
    /// <returns>(…, out)</returns>
    public override Tensor forward(Tensor x) => forward(x, null);

    /// <summary>act(x·Wᵀ + b) + residual, the activation and the residual in the kernel's epilogue when it runs this layer
    /// (no pass of their own, no libtorch op per element-wise step).</summary>
    /// <param name="x">(…, in)</param>
    /// <param name="residual">(…, out) or null</param>
    /// <returns>(…, out)</returns>
    public unsafe Tensor forward(Tensor x, ActivationFunction? activation, Tensor? residual = null) =>
        forward(x, activation, residual, multiply: false);

    /// <summary>(x·Wᵀ + b) ⊙ factor, the product in the kernel's epilogue: a gated MLP's up(x) · act(gate(x)).</summary>
    public Tensor Times(Tensor x, Tensor factor) => forward(x, null, factor, multiply: true);

    private unsafe Tensor forward(Tensor x, ActivationFunction? activation, Tensor? residual, bool multiply)
    {
        if (PackedFor is not { } path)
        {
            var y = functional.linear(x, Weight, Bias);
            if (activation is not null)
                using (var linear = y) y = activation.Torch(linear);
            return residual is null ? y : multiply ? y.mul_(residual) : y.add_(residual);
        }
        var shape = x.shape;
        int k = (int)Weight.shape[1], n = (int)Weight.shape[0];
        if (shape[^1] != k) throw new ArgumentException($"a linear layer of {k} inputs got {shape[^1]}");
        using var scope = NewDisposeScope();
        var input = x.dtype == float32 && x.is_contiguous() ? x : x.to(float32).contiguous();
        var output = empty([.. shape[..^1], n], dtype: float32);
        var rows = output.NumberOfElements / n;
        Tensor? sum = null;
        if (residual is not null)
        {
            if (!residual.shape.SequenceEqual(output.shape)) throw new ArgumentException("the residual must have the output's shape");
            sum = residual.dtype == float32 && residual.is_contiguous() ? residual : residual.to(float32).contiguous();
        }
        var kernelActivation = activation?.Kernel ?? Activation.None;
        // A span stops at 2 GB: the rows go in steps whose input and output stay under it (an LM head's logits over a
        // long input, 4,096 × 128,256 floats, are 2.1 GB), each step's data read through its own view.
        var step = (int)Math.Max(1, Math.Min(rows, SpanLimitFloats / Math.Max(k, n)));
        for (long start = 0; start < rows; start += step)
        {
            var count = (int)Math.Min(step, rows - start);
            using var stepScope = NewDisposeScope();
            Tensor Rows(Tensor t, long width) => step >= rows ? t : t.view(-1, width).narrow(0, start, count);
            float* a = AttentionKernel.Data(Rows(input, k)), c = AttentionKernel.Data(Rows(output, n));
            float* r = sum is null ? null : AttentionKernel.Data(Rows(sum, n));
            LinearKernel.Multiply(path, new ReadOnlySpan<float>(a, count * k), Floats(Weight),
                Bias is null ? default : Floats(Bias), new Span<float>(c, count * n), count, n, k, kernelActivation,
                r is null ? default : new ReadOnlySpan<float>(r, count * n), multiply);
        }
        GC.KeepAlive(x);
        GC.KeepAlive(residual);
        return output.MoveToOuterDisposeScope();
    }

    private static Span<float> Floats(Tensor t) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.bytes);
}

/// <summary>nn.Embedding (rows of weight [count, dim] looked up by id) with an uninitialised table.</summary>
public sealed class EmbeddingTable : Module<Tensor, Tensor>
{
    public Parameter Weight { get; }

    public EmbeddingTable(long count, long dim) : base(nameof(EmbeddingTable))
    {
        register_parameter("weight", Weight = new Parameter(empty(count, dim), requires_grad: false));
    }

    /// <param name="ids">(…) int64</param>
    /// <returns>(…, dim)</returns>
    public override Tensor forward(Tensor ids)
    {
        using var flat = ids.reshape(-1);
        using var rows = Weight.index_select(0, flat);
        return rows.reshape([.. ids.shape, Weight.shape[1]]);
    }
}

/// <summary>nn.LayerNorm over the last dimension, with weight and bias, uninitialised.</summary>
public sealed class LayerNormalization : Module<Tensor, Tensor>
{
    private readonly Parameter _weight, _bias;
    private readonly double _eps;

    public LayerNormalization(long size, double eps) : base(nameof(LayerNormalization))
    {
        register_parameter("weight", _weight = new Parameter(empty(size), requires_grad: false));
        register_parameter("bias", _bias = new Parameter(empty(size), requires_grad: false));
        _eps = eps;
    }

    /// <param name="x">(…, C)</param>
    public override Tensor forward(Tensor x)
    {
        if (!AttentionKernel.Runs || x.dtype != float32 || x.NumberOfElements > int.MaxValue / sizeof(float))
            return functional.layer_norm(x, [x.shape[^1]], _weight, _bias, _eps);
        // Row by row on this thread: libtorch's layer_norm cost ~60 µs a call on a short prompt, waking its thread team
        // for a few hundred rows; this is (x − mean)·rstd·γ + β with the same float32 moments.
        using var input = x.contiguous();
        var output = empty_like(input);
        var size = (int)x.shape[^1];
        var from = MemoryMarshal.Cast<byte, float>(input.bytes);
        var to = MemoryMarshal.Cast<byte, float>(output.bytes);
        var gamma = MemoryMarshal.Cast<byte, float>(_weight.bytes);
        var beta = MemoryMarshal.Cast<byte, float>(_bias.bytes);
        var eps = (float)_eps;
        for (var start = 0; start < from.Length; start += size)
        {
            var row = from.Slice(start, size);
            var y = to.Slice(start, size);
            TensorPrimitives.Subtract(row, TensorPrimitives.Sum(row) / size, y);
            var rstd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(y) / size + eps);
            TensorPrimitives.Multiply(y, rstd, y);
            TensorPrimitives.MultiplyAdd(y, gamma, beta, y);
        }
        return output;
    }
}

/// <summary>
/// RMSNorm as HF's LlamaRMSNorm: weight · x / √(mean(x²) + ε), in float32. With <c>plusOne</c>, Gemma's RMSNorm:
/// (1 + weight) · x / √(mean(x²) + ε) (its weights are stored as offsets from 1). Over the last dimension, so the same
/// class is the per-head q/k norm of Qwen3 and Gemma 3 when given (…, heads, head_dim).
/// </summary>
public sealed class RmsNorm : Module<Tensor, Tensor>
{
    private readonly Parameter _weight;
    private readonly double _eps;
    private readonly bool _plusOne;

    public RmsNorm(int size, double eps, bool plusOne = false) : base(nameof(RmsNorm))
    {
        register_parameter("weight", _weight = new Parameter(empty(size), requires_grad: false));
        (_eps, _plusOne) = (eps, plusOne);
    }

    /// <param name="x">(…, C)</param>
    public override Tensor forward(Tensor x)
    {
        if (AttentionKernel.Runs && x.dtype == float32 && x.NumberOfElements <= int.MaxValue / sizeof(float)) return Rows(x);
        using var scope = NewDisposeScope();
        var variance = x.pow(2).mean([-1], keepdim: true);                         // (…, 1)
        var scale = _plusOne ? _weight + 1f : _weight;
        return (scale * (x * (variance + _eps).rsqrt())).MoveToOuterDisposeScope();
    }

    /// <summary>Rows of runs on the kernel team, each one pass: libtorch's six ops (pow, mean, add, rsqrt and two
    /// products) each went through memory, at 8k tokens 19 MB a pass (issue #15). The same float32 steps in the same
    /// order: mean(x²), 1/√(· + ε), x · that, then · weight.</summary>
    private unsafe Tensor Rows(Tensor x)
    {
        using var input = x.contiguous();
        var output = empty_like(input);
        var size = (int)x.shape[^1];
        var rows = input.NumberOfElements / size;
        var scale = MemoryMarshal.Cast<byte, float>(_weight.bytes).ToArray();
        if (_plusOne) TensorPrimitives.Add(scale, 1f, scale);
        float* from = AttentionKernel.Data(input), to = AttentionKernel.Data(output);
        var eps = (float)_eps;
        const int RunRows = 64;
        KernelTeam.For((rows + RunRows - 1) / RunRows, run =>
        {
            for (var r = run * RunRows; r < Math.Min(rows, (run + 1) * RunRows); r++)
            {
                var row = new ReadOnlySpan<float>(from + r * size, size);
                var y = new Span<float>(to + r * size, size);
                var rstd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(row) / size + eps);
                TensorPrimitives.Multiply(row, rstd, y);
                TensorPrimitives.Multiply(y, scale, y);
            }
        });
        GC.KeepAlive(input);
        return output;
    }
}

/// <summary>Soft-capping as Gemma 2: c·tanh(x / c), which keeps x's sign and order and bounds it to (−c, c).</summary>
public static class SoftCapping
{
    /// <returns>a new tensor; <paramref name="x"/> is left as it is</returns>
    public static Tensor Apply(Tensor x, double cap)
    {
        using var scope = NewDisposeScope();
        return x.div(cap).tanh_().mul_(cap).MoveToOuterDisposeScope();
    }

    /// <summary>In place over a row of scores.</summary>
    public static void Apply(Span<float> x, float cap)
    {
        TensorPrimitives.Multiply(x, 1f / cap, x);
        TensorPrimitives.Tanh(x, x);
        TensorPrimitives.Multiply(x, cap, x);
    }

    /// <summary>The same float32 steps as the span overload (× 1/c, tanh, × c), so a recomputed score is the forward's.</summary>
    public static float Apply(float x, float cap) => MathF.Tanh(x * (1f / cap)) * cap;
}

/// <summary>
/// The gated MLP of Llama, Mistral, Qwen and Gemma: down(act(gate(x)) · up(x)). Phi-3 stores gate and up as one
/// gate_up_proj (gate rows first): <c>fused</c>.
/// </summary>
public sealed class GatedMlp : Module<Tensor, Tensor>
{
    private readonly Dense? _gate, _up, _gateUp;
    private readonly Dense _down;
    private readonly ActivationFunction _activation;
    private readonly int _intermediate;

    public GatedMlp(int hidden, int intermediate, string activation, bool bias, bool fused = false) : base(nameof(GatedMlp))
    {
        if (fused) register_module("gate_up_proj", _gateUp = new Dense(hidden, 2 * intermediate, bias));
        else
        {
            register_module("gate_proj", _gate = new Dense(hidden, intermediate, bias));
            register_module("up_proj", _up = new Dense(hidden, intermediate, bias));
        }
        register_module("down_proj", _down = new Dense(intermediate, hidden, bias));
        _activation = ActivationFunctions.Resolve(activation);
        _intermediate = intermediate;
    }

    /// <summary>Rows per step of a long input: its (B, rows, I) temporaries then take 6 MB for SmolLM2's 1,536 instead
    /// of 200 MB at 8,192 tokens, and every step reuses the same freed blocks of the heap.</summary>
    public const int ChunkRows = 1024;

    /// <param name="x">(B, T, C)</param>
    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>down(act(gate(x)) · up(x)) + residual, the residual added in the down projection's epilogue.</summary>
    /// <param name="x">(B, T, C)</param>
    /// <param name="residual">(B, T, C) or null</param>
    public Tensor Forward(Tensor x, Tensor? residual)
    {
        using var scope = NewDisposeScope();
        var t = x.shape[^2];
        if (t <= ChunkRows) return Gated(x, residual).MoveToOuterDisposeScope();
        var output = empty([.. x.shape[..^1], _down.Weight.shape[0]], dtype: x.dtype); // (B, T, C)
        for (long start = 0; start < t; start += ChunkRows)
        {
            using var step = NewDisposeScope();
            var rows = Math.Min(ChunkRows, t - start);
            output.narrow(-2, start, rows).copy_(Gated(x.narrow(-2, start, rows), residual?.narrow(-2, start, rows)));
        }
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>down(act(gate(x)) · up(x)) + residual, each row on its own; on the kernel, act and the product are the
    /// gate's and the up projection's epilogues (up(x) · act(gate(x)): the same floats, the product commutes).</summary>
    private Tensor Gated(Tensor x, Tensor? residual)
    {
        if (_gateUp is null)
        {
            using var gate = _gate!.forward(x, _activation);
            using var gated = _up!.Times(x, gate);
            return _down.forward(gated, null, residual);
        }
        using var gateUp = _gateUp.forward(x);
        using var product = _activation.Torch(gateUp.narrow(-1, 0, _intermediate)).mul_(gateUp.narrow(-1, _intermediate, _intermediate));
        return _down.forward(product, null, residual);
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

    /// <summary>The attention mask as a (B, T) tensor of 0/1 matching the ids, or null when there is none.</summary>
    public static Tensor? Padding(long[][]? attentionMask, Tensor ids)
    {
        if (attentionMask is null) return null;
        var mask = ToTensor(attentionMask);
        if (!mask.shape.SequenceEqual(ids.shape))
            throw new ArgumentException($"attention_mask has shape [{string.Join(", ", mask.shape)}]; " +
                $"input_ids have [{string.Join(", ", ids.shape)}].");
        if (attentionMask.Any(row => row.Any(v => v is not (0 or 1))))
            throw new ArgumentException("attention_mask values must be 0 (padding) or 1 (token).");
        return mask;
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
