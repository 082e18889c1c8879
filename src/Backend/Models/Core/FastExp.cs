using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AttentionViz.Backend.Models.Core;

/// <summary>
/// exp over a row of attention scores, fused with the softmax's sum. TensorPrimitives.Exp is exact to ~1 ulp but
/// evaluates in double precision: it was a third of the attention kernel's time at 128 tokens (issue #15). This is
/// Cephes' expf (range reduction by ln 2 in two parts, a degree-5 polynomial, the power of two built in the exponent
/// bits), relative error under 2·10⁻⁷ on the softmax's range (arguments ≤ 0), the same formula on every path so that a
/// row's value does not depend on where the vector loop ends. Arguments below −87.3 (e⁻⁸⁷ is under float's
/// smallest normal) give exactly 0, so a masked key (−∞) is 0; above 88.4, ∞.
/// </summary>
internal static class FastExp
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f, Ln2Low = -2.12194440e-4f;
    private const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f,
        P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    /// <summary>Below this, exp is 0 here.</summary>
    public const float Lowest = -87.33654f;

    /// <summary>Above this, exp passes float's largest power of two: ∞ (a softmax's arguments are ≤ 0; SiLU's e⁻ˣ is not).</summary>
    private const float Highest = 88.3762626647949f;

    /// <summary>
    /// A softmax in place over a row of unscaled scores: exp(x·scale − max·scale) / Σ, with the scale positive (so that
    /// the largest score is the largest scaled one). Returns the shift (the scaled maximum) and the sum, whose log plus the
    /// shift is the row's log-sum-exp.
    /// </summary>
    public static (float Shift, float Sum) Softmax(Span<float> row, float scale) =>
        Softmax(row, scale, System.Numerics.Tensors.TensorPrimitives.Max(row));

    /// <summary><see cref="Softmax(Span{float}, float)"/> given the row's maximum.</summary>
    public static (float Shift, float Sum) Softmax(Span<float> row, float scale, float max)
    {
        var shift = max * scale;
        var sum = ExpSum(row, scale, shift);
        System.Numerics.Tensors.TensorPrimitives.Multiply(row, 1f / sum, row);
        return (shift, sum);
    }

    /// <summary>In place: row[j] = exp(row[j]·scale − shift); returns their sum (float32, as libtorch's softmax sums).</summary>
    public static float ExpSum(Span<float> row, float scale, float shift)
    {
        ref var x = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(row);
        var (n, j) = ((nuint)row.Length, (nuint)0);
        var sum = 0f;
        // The linear layers' path picks the vectors (tests force each); libtorch's path takes the widest there are.
        var path = LinearKernel.Selected;
        if (path == LinearKernel.Path.Torch)
            path = LinearKernel.Supported(LinearKernel.Path.Vector512) ? LinearKernel.Path.Vector512 : LinearKernel.Path.Vector256;
        if (path == LinearKernel.Path.Vector512 && n >= 16)
        {
            var total = Vector512<float>.Zero;
            for (; j + 16 <= n; j += 16)
            {
                var e = Exp(Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref x, j), Vector512.Create(scale), Vector512.Create(-shift)));
                e.StoreUnsafe(ref x, j);
                total += e;
            }
            sum = Vector512.Sum(total);
        }
        else if (path == LinearKernel.Path.Vector256 && LinearKernel.Supported(path) && n >= 8)
        {
            var total = Vector256<float>.Zero;
            for (; j + 8 <= n; j += 8)
            {
                var e = Exp(Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref x, j), Vector256.Create(scale), Vector256.Create(-shift)));
                e.StoreUnsafe(ref x, j);
                total += e;
            }
            sum = Vector256.Sum(total);
        }
        for (; j < n; j++)
        {
            ref var value = ref Unsafe.Add(ref x, j);
            value = Exp(MathF.FusedMultiplyAdd(value, scale, -shift));
            sum += value;
        }
        return sum;
    }

    /// <summary>The scalar form, which the vector loops' tails use: the same bits as a vector lane.</summary>
    public static float Exp(float x)
    {
        if (!(x >= Lowest)) return 0f;                                   // −∞ (a masked key) and NaN
        if (x > Highest) return float.PositiveInfinity;
        var k = MathF.Round(x * Log2E);
        var r = MathF.FusedMultiplyAdd(k, -Ln2Low, MathF.FusedMultiplyAdd(k, -Ln2High, x));
        var p = Polynomial(r);
        return p * BitConverter.Int32BitsToSingle(((int)k + 127) << 23);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Polynomial(float r)
    {
        var p = MathF.FusedMultiplyAdd(P0, r, P1);
        p = MathF.FusedMultiplyAdd(p, r, P2);
        p = MathF.FusedMultiplyAdd(p, r, P3);
        p = MathF.FusedMultiplyAdd(p, r, P4);
        p = MathF.FusedMultiplyAdd(p, r, P5);
        return MathF.FusedMultiplyAdd(p, r * r, r) + 1f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp(Vector512<float> x)
    {
        var valid = Vector512.GreaterThanOrEqual(x, Vector512.Create(Lowest));
        var overflow = Vector512.GreaterThan(x, Vector512.Create(Highest));
        x = Vector512.Min(x, Vector512.Create(Highest));
        var k = Vector512.Round(x * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2Low), Vector512.FusedMultiplyAdd(k, Vector512.Create(-Ln2High), x));
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        p = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        // k is in [−126, 127] for valid arguments; invalid lanes are zeroed below, whatever their bits.
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(k) + Vector512.Create(127), 23).AsSingle();
        var result = Vector512.ConditionalSelect(valid, p * scale, Vector512<float>.Zero);
        return Vector512.ConditionalSelect(overflow, Vector512.Create(float.PositiveInfinity), result);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp(Vector256<float> x)
    {
        var valid = Vector256.GreaterThanOrEqual(x, Vector256.Create(Lowest));
        var overflow = Vector256.GreaterThan(x, Vector256.Create(Highest));
        x = Vector256.Min(x, Vector256.Create(Highest));
        var k = Vector256.Round(x * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(k, Vector256.Create(-Ln2Low), Vector256.FusedMultiplyAdd(k, Vector256.Create(-Ln2High), x));
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(P0), r, Vector256.Create(P1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P5));
        p = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(k) + Vector256.Create(127), 23).AsSingle();
        var result = Vector256.ConditionalSelect(valid, p * scale, Vector256<float>.Zero);
        return Vector256.ConditionalSelect(overflow, Vector256.Create(float.PositiveInfinity), result);
    }
}
