using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace AttentionViz.Backend.Models.Core;

/// <summary>
/// The attention products (QKᵀ and P·V) on <see cref="LinearKernel"/>'s micro-kernels, one head and a run of query
/// rows at a time with the softmax between them, so a row's scores are still in cache when they are normalised and
/// multiplied by the values: libtorch ran them as batched MKL calls at a quarter of the kernel's throughput here, plus a
/// mask, a softmax and copies per layer (issue #15). Keys are packed per layer as 48-key panels (q·kᵀ's "weights"),
/// values as 48-column panels over all keys (p·v's).
/// </summary>
internal static unsafe class AttentionKernel
{
    /// <summary>Whether attention runs here: on every path but libtorch's (tests force the path).</summary>
    public static bool Runs => LinearKernel.Selected != LinearKernel.Path.Torch;

    /// <summary>Keys are packed in panels of this many: a block's first key is rounded down to one.</summary>
    public const int KeyPanel = LinearKernel.PanelWidth;

    /// <summary>The data of a contiguous float32 tensor.</summary>
    public static float* Data(Tensor t) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));

    /// <summary>
    /// softmax(q·kᵀ·scale) over the allowed keys, as <see cref="AttentionCore.Attend"/>: q, k, v (B, H, T or S, D) with
    /// each row's D values side by side (the heads of a (B, T, H, D) projection, or contiguous); allowed bool
    /// broadcastable to (B, 1, T, S) or null. Returns the context (B, H, T, D), a view of a (B, T, H, D) tensor (the
    /// heads merge back without a copy), and the probabilities (B, H, T, S), written into <paramref name="destination"/>
    /// (contiguous, that shape) when given.
    /// </summary>
    /// <returns>… and whether every probability is finite (each row's sum was: a NaN or ∞ anywhere in a row makes it not),
    /// so that the caller need not read them all again to find out.</returns>
    public static (Tensor Context, Tensor Probabilities, bool Finite) Attend(Tensor q, Tensor k, Tensor v, Tensor? allowed,
        double scale, Tensor? destination = null)
    {
        long batch = q.shape[0], heads = q.shape[1], t = q.shape[2], d = q.shape[3], s = k.shape[2];
        var path = LinearKernel.Selected;
        using var scope = NewDisposeScope();
        var (qAddress, qStrides) = RowsOf(q);
        var (kAddress, kStrides) = RowsOf(k);
        var (vAddress, vStrides) = RowsOf(v);
        float* qData = (float*)qAddress, kData = (float*)kAddress, vData = (float*)vAddress;
        var mask = allowed is null ? null : allowed.expand(batch, 1, t, s).contiguous();
        var maskData = mask is null ? null : (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(mask.bytes));
        var probabilities = destination ?? empty(batch, heads, t, s, dtype: float32);
        var context = empty(batch, t, heads, d, dtype: float32);
        float* pData = Data(probabilities), cData = Data(context);
        var packed = empty(2 * batch * heads * s * d, dtype: float32);
        var packedData = Data(packed);
        var scaleF = (float)scale;
        var nonFinite = 0;
        void Head(long index)
        {
            long b = index / heads, h = index % heads;
            var keys = packedData + index * s * d;
            var values = packedData + (batch * heads + index) * s * d;
            LinearKernel.PackRows(kData + b * kStrides.Batch + h * kStrides.Head, kStrides.Row, (int)s, (int)d, keys);
            LinearKernel.PackColumns(vData + b * vStrides.Batch + h * vStrides.Head, vStrides.Row, (int)s, (int)d, values);
            var p = pData + index * t * s;
            LinearKernel.MultiplyPacked(path, qData + b * qStrides.Batch + h * qStrides.Head, qStrides.Row, keys, d, 0, p, s, (int)t, (int)s, (int)d);
            for (var r = 0L; r < t; r++)
                if (!SoftmaxMasked(new Span<float>(p + r * s, (int)s), scaleF, maskData is null ? null : maskData + (b * t + r) * s))
                    Volatile.Write(ref nonFinite, 1);
            LinearKernel.MultiplyPacked(path, p, s, values, s, 0, cData + b * t * heads * d + h * d, heads * d, (int)t, (int)d, (int)s);
        }
        if (batch * heads * t * s * d < 1L << 17) for (var i = 0L; i < batch * heads; i++) Head(i);
        else KernelTeam.For(batch * heads, Head);
        GC.KeepAlive(q); GC.KeepAlive(k); GC.KeepAlive(v);
        return (context.transpose(1, 2).MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope(), nonFinite == 0);
    }

    /// <summary>Element strides of a (B, H, T, D) tensor's batches, heads and rows, D values side by side.</summary>
    public readonly record struct Strides(long Batch, long Head, long Row);

    /// <summary>
    /// The data of a (B, H, T, D) float32 tensor read in place when each row's D values are side by side (the heads of
    /// a projection, or of one of q/k/v split from a fused one), else of a contiguous copy in the caller's dispose scope.
    /// </summary>
    public static (nint Data, Strides Strides) RowsOf(Tensor x)
    {
        var t = x.dtype == float32 ? x : x.to(float32);
        if (t.stride(3) != 1) t = t.contiguous();
        var strides = t.stride();
        // The first row of a strided view is contiguous: its span starts at the view's first element.
        return ((nint)Data(t.select(0, 0).select(0, 0).select(0, 0)), new Strides(strides[0], strides[1], strides[2]));
    }

    /// <summary>
    /// In place: a row of q·k dot products becomes softmax(dot·scale) over the keys whose mask byte is non-zero (all
    /// keys when <paramref name="mask"/> is null), 0 elsewhere; a row that sees no key is all 0 (as AttentionCore).
    /// Returns whether the row is finite.
    /// </summary>
    public static bool SoftmaxMasked(Span<float> row, float scale, byte* mask)
    {
        if (mask is not null)
            for (var j = 0; j < row.Length; j++)
                if (mask[j] == 0) row[j] = float.NegativeInfinity;
        var max = TensorPrimitives.Max(row);
        if (float.IsNegativeInfinity(max))
        {
            row.Clear();
            return true;
        }
        // Each probability is exp(…) ≤ the sum, times 1/sum: all finite exactly when the sum is finite and positive.
        var sum = FastExp.Softmax(row, scale, max).Sum;
        return float.IsFinite(sum) && sum > 0;
    }
}
