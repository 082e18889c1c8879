using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace AttentionViz.Backend.Models.Core;

/// <summary>An activation <see cref="LinearKernel"/> applies to a product as it finishes it (its epilogue).</summary>
public enum Activation { None, Gelu, GeluTanh, Relu, Silu }

/// <summary>A hidden_act: libtorch's function, and the kernel's form of it.</summary>
public sealed record ActivationFunction(string Name, Func<Tensor, Tensor> Torch, Activation Kernel);

/// <summary>Hugging Face's hidden_act names. An unknown name is an error, never a silent default.</summary>
public static class ActivationFunctions
{
    public static Func<Tensor, Tensor> Get(string name) => Resolve(name).Torch;

    public static ActivationFunction Resolve(string name) => name switch
    {
        "gelu" => new(name, x => gelu(x), Activation.Gelu),
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => new(name, GeluTanh, Activation.GeluTanh),
        "relu" => new(name, x => relu(x), Activation.Relu),
        "silu" or "swish" => new(name, x => silu(x), Activation.Silu),
        _ => throw new ModelLoadException($"Activation '{name}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu, silu)."),
    };

    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as HF's NewGELUActivation.
    private static Tensor GeluTanh(Tensor x)
    {
        using var scope = NewDisposeScope();
        var inner = (x + 0.044715 * x.pow(3)) * Math.Sqrt(2.0 / Math.PI);
        return (0.5 * x * (1.0 + inner.tanh())).MoveToOuterDisposeScope();
    }

    private const float SqrtHalf = 0.70710678118654752440f, SqrtTwoOverPi = 0.7978845608028654f;

    /// <summary>
    /// In place, the kernel's form, then (when <paramref name="residual"/> is given) the residual added, or multiplied
    /// with <paramref name="multiply"/>: GELU as libtorch computes it, x·½·(1 + erf(x/√2)) with ATen's vectorised erf
    /// (Abramowitz and Stegun 7.1.26, absolute error under 1.5·10⁻⁷) over <see cref="FastExp"/>, ReLU, SiLU; the tanh
    /// form with TensorPrimitives. One pass per vector: spans are a finished block's row (48 values), and a call per
    /// row for the activation and another for the residual cost more than the arithmetic (2 ms of CPU a 128-token
    /// MiniLM forward).
    /// </summary>
    public static void Apply(Activation activation, LinearKernel.Path path, Span<float> y, ReadOnlySpan<float> residual = default,
        bool multiply = false)
    {
        if (!residual.IsEmpty && residual.Length < y.Length) throw new ArgumentException("the residual is shorter than the row");
        if (activation == Activation.GeluTanh)
        {
            GeluTanhSpan(y);
            activation = Activation.None;
        }
        else if (activation is < Activation.None or > Activation.Silu) throw new ArgumentOutOfRangeException(nameof(activation));
        if (activation == Activation.None && residual.IsEmpty) return;
        ref var x = ref MemoryMarshal.GetReference(y);
        ref var r = ref MemoryMarshal.GetReference(residual);
        var (n, j, add) = ((nuint)y.Length, (nuint)0, !residual.IsEmpty);
        if (path == LinearKernel.Path.Vector512)
            for (; j + 16 <= n; j += 16)
            {
                var v = Activate(activation, Vector512.LoadUnsafe(ref x, j));
                if (add) v = multiply ? v * Vector512.LoadUnsafe(ref r, j) : v + Vector512.LoadUnsafe(ref r, j);
                v.StoreUnsafe(ref x, j);
            }
        else if (path == LinearKernel.Path.Vector256)
            for (; j + 8 <= n; j += 8)
            {
                var v = Activate(activation, Vector256.LoadUnsafe(ref x, j));
                if (add) v = multiply ? v * Vector256.LoadUnsafe(ref r, j) : v + Vector256.LoadUnsafe(ref r, j);
                v.StoreUnsafe(ref x, j);
            }
        for (; j < n; j++)
        {
            ref var v = ref Unsafe.Add(ref x, j);
            v = Activate(activation, v);
            if (add) v = multiply ? v * Unsafe.Add(ref r, j) : v + Unsafe.Add(ref r, j);
        }
    }

    private static void GeluTanhSpan(Span<float> y)
    {
        Span<float> inner = y.Length <= 256 ? stackalloc float[y.Length] : new float[y.Length];
        TensorPrimitives.Multiply(y, y, inner);
        TensorPrimitives.Multiply(inner, y, inner);                               // x³
        TensorPrimitives.MultiplyAdd(inner, 0.044715f, y, inner);
        TensorPrimitives.Multiply(inner, SqrtTwoOverPi, inner);
        TensorPrimitives.Tanh(inner, inner);
        TensorPrimitives.Add(inner, 1f, inner);
        TensorPrimitives.Multiply(y, 0.5f, y);
        TensorPrimitives.Multiply(y, inner, y);
    }

    // GELU x·½·(1 + erf(x/√2)); ReLU max(x, 0) with NaN kept (as libtorch's relu); SiLU x / (1 + e⁻ˣ) (libtorch's silu).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Activate(Activation activation, Vector512<float> v) => activation switch
    {
        Activation.Gelu => v * Vector512.Create(0.5f) * (Vector512<float>.One + Erf(v * Vector512.Create(SqrtHalf))),
        Activation.Relu => Vector512.ConditionalSelect(Vector512.LessThan(v, Vector512<float>.Zero), Vector512<float>.Zero, v),
        Activation.Silu => v / (Vector512<float>.One + FastExp.Exp(-v)),
        _ => v,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Activate(Activation activation, Vector256<float> v) => activation switch
    {
        Activation.Gelu => v * Vector256.Create(0.5f) * (Vector256<float>.One + Erf(v * Vector256.Create(SqrtHalf))),
        Activation.Relu => Vector256.ConditionalSelect(Vector256.LessThan(v, Vector256<float>.Zero), Vector256<float>.Zero, v),
        Activation.Silu => v / (Vector256<float>.One + FastExp.Exp(-v)),
        _ => v,
    };

    private static float Activate(Activation activation, float v) => activation switch
    {
        Activation.Gelu => v * 0.5f * (1f + Erf(v * SqrtHalf)),
        Activation.Relu => v < 0f ? 0f : v,
        Activation.Silu => v / (1f + FastExp.Exp(-v)),
        _ => v,
    };

    private const float ErfP = 0.3275911f, ErfA1 = 0.254829592f, ErfA2 = -0.284496736f, ErfA3 = 1.421413741f,
        ErfA4 = -1.453152027f, ErfA5 = 1.061405429f;

    /// <summary>erf(x) = sign(x)·(1 − t·r(t)·e^(−x²)), t = 1 / (1 + p|x|): ATen's Vectorized&lt;float&gt;::erf.</summary>
    internal static float Erf(float x)
    {
        var t = 1f / MathF.FusedMultiplyAdd(ErfP, MathF.Abs(x), 1f);
        var r = MathF.FusedMultiplyAdd(ErfA5, t, ErfA4);
        r = MathF.FusedMultiplyAdd(r, t, ErfA3);
        r = MathF.FusedMultiplyAdd(r, t, ErfA2);
        r = MathF.FusedMultiplyAdd(r, t, ErfA1);
        var e = MathF.FusedMultiplyAdd(-FastExp.Exp(-(x * x)) * t, r, 1f);
        return MathF.CopySign(e, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Erf(Vector512<float> x)
    {
        var t = Vector512<float>.One / Vector512.FusedMultiplyAdd(Vector512.Create(ErfP), Vector512.Abs(x), Vector512<float>.One);
        var r = Vector512.FusedMultiplyAdd(Vector512.Create(ErfA5), t, Vector512.Create(ErfA4));
        r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(ErfA3));
        r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(ErfA2));
        r = Vector512.FusedMultiplyAdd(r, t, Vector512.Create(ErfA1));
        var e = Vector512.FusedMultiplyAdd(-FastExp.Exp(-(x * x)) * t, r, Vector512<float>.One);
        return Vector512.CopySign(e, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Erf(Vector256<float> x)
    {
        var t = Vector256<float>.One / Vector256.FusedMultiplyAdd(Vector256.Create(ErfP), Vector256.Abs(x), Vector256<float>.One);
        var r = Vector256.FusedMultiplyAdd(Vector256.Create(ErfA5), t, Vector256.Create(ErfA4));
        r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(ErfA3));
        r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(ErfA2));
        r = Vector256.FusedMultiplyAdd(r, t, Vector256.Create(ErfA1));
        var e = Vector256.FusedMultiplyAdd(-FastExp.Exp(-(x * x)) * t, r, Vector256<float>.One);
        return Vector256.CopySign(e, x);
    }
}
