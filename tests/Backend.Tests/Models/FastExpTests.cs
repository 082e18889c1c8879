using AttentionViz.Backend.Models.Core;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>
/// The attention softmax's exp on every vector path this CPU runs: within 3·10⁻⁷ of double precision's exp over the
/// softmax's range, bit-identical between a vector lane and the scalar tail, 0 for a masked key, and a softmax that
/// matches a float64 one.
/// </summary>
[TestClass]
[DoNotParallelize]                                                                   // LinearKernel.Selected is process-wide
public sealed class FastExpTests
{
    public static IEnumerable<object[]> Paths =>
        new[] { LinearKernel.Path.Vector512, LinearKernel.Path.Vector256, LinearKernel.Path.Scalar }.Select(p => new object[] { p });

    private static T On<T>(LinearKernel.Path path, Func<T> run)
    {
        var before = LinearKernel.Selected;
        LinearKernel.Selected = path;
        try { return run(); }
        finally { LinearKernel.Selected = before; }
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void MatchesDoublePrecisionExp(LinearKernel.Path path)
    {
        if (!LinearKernel.Supported(path)) return;
        // Arguments from −87 to +10 in steps that hit every part of the range reduction, 37 per row (vector + tail).
        var arguments = Enumerable.Range(0, 97 * 37).Select(i => -87f + i * (97f / (97 * 37))).ToArray();
        var values = arguments.ToArray();
        var sum = On(path, () => FastExp.ExpSum(values, 1f, 0f));
        var worst = 0.0;
        for (var i = 0; i < arguments.Length; i++)
        {
            var exact = Math.Exp(arguments[i]);
            worst = Math.Max(worst, Math.Abs(values[i] - exact) / exact);
            Assert.AreEqual(FastExp.Exp(arguments[i]), values[i], $"lane and scalar differ at {arguments[i]}");
        }
        Assert.IsTrue(worst < 3e-7, $"relative error {worst:E2}");
        Assert.AreEqual(values.Select(v => (double)v).Sum(), sum, 1e-5 * sum);
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void MaskedAndTinyArgumentsGiveZero(LinearKernel.Path path)
    {
        if (!LinearKernel.Supported(path)) return;
        var row = Enumerable.Repeat(float.NegativeInfinity, 33).ToArray();
        row[5] = -88f;
        row[20] = 0f;
        row[32] = float.NaN;
        var sum = On(path, () => FastExp.ExpSum(row, 1f, 0f));
        Assert.AreEqual(1f, sum);
        Assert.AreEqual(1f, row[20]);
        Assert.IsTrue(row.Where((_, i) => i != 20).All(v => v == 0f), string.Join(", ", row));
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void OverflowIsInfinite(LinearKernel.Path path)
    {
        // SiLU's e⁻ˣ of a very negative x: ∞, so that x / (1 + e⁻ˣ) is −0 as in libtorch (and NaN for −∞).
        if (!LinearKernel.Supported(path)) return;
        var row = Enumerable.Repeat(100f, 19).Append(float.PositiveInfinity).Append(88f).ToArray();
        On(path, () => FastExp.ExpSum(row, 1f, 0f));
        Assert.IsTrue(row.Take(20).All(float.IsPositiveInfinity), string.Join(", ", row));
        Assert.AreEqual(Math.Exp(88), row[20], 1e-6 * Math.Exp(88));
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void SoftmaxMatchesFloat64(LinearKernel.Path path)
    {
        if (!LinearKernel.Supported(path)) return;
        var random = new Random(20261204);
        foreach (var length in new[] { 1, 7, 8, 15, 16, 17, 48, 130, 1000 })
        {
            var scores = Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 40 - 20)).ToArray();
            var row = scores.ToArray();
            const float scale = 0.125f;
            var (shift, sum) = On(path, () => FastExp.Softmax(row, scale));
            var max = scores.Max() * (double)scale;
            var exact = scores.Select(x => Math.Exp(x * (double)scale - max)).ToArray();
            var total = exact.Sum();
            for (var j = 0; j < length; j++) Assert.AreEqual(exact[j] / total, row[j], 1e-6, $"length {length}, key {j}");
            Assert.AreEqual(Math.Log(total) + max, shift + Math.Log(sum), 1e-5, "log-sum-exp");
        }
    }

    /// <summary>
    /// The attention kernel's row softmax: masked keys are exactly 0 whatever their score (NaN included), a row that
    /// sees no key is all 0, and it reports a row non-finite exactly when a key it sees is NaN or infinite.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(Paths))]
    public unsafe void MaskedSoftmaxZeroesMaskedKeysAndReportsNonFiniteRows(LinearKernel.Path path)
    {
        if (!LinearKernel.Supported(path)) return;
        const float scale = 0.5f;
        // Long enough for full vectors and a scalar tail. +∞ in the first lane and in the tail reaches the exp's vector and
        // scalar code; a NaN is already the row's maximum (TensorPrimitives.Max), whatever its lane.
        var scores = Enumerable.Range(0, 37).Select(j => (float)Math.Sin(j) * 6).ToArray();
        var mask = Enumerable.Range(0, 37).Select(j => (byte)(j % 3 == 1 ? 0 : 1)).ToArray();

        bool Run(float[] row, byte[]? keys)
        {
            fixed (byte* m = keys) { var p = (nint)m; return On(path, () => AttentionKernel.SoftmaxMasked(row, scale, (byte*)p)); }
        }

        var masked = scores.ToArray();
        masked[1] = float.NaN;
        masked[34] = float.PositiveInfinity;                                        // both masked (j % 3 == 1)
        Assert.IsTrue(Run(masked, mask), "a NaN or ∞ under the mask leaves the row finite");
        var seen = Enumerable.Range(0, 37).Where(j => mask[j] != 0).ToArray();
        var max = seen.Max(j => scores[j] * (double)scale);
        var total = seen.Sum(j => Math.Exp(scores[j] * (double)scale - max));
        for (var j = 0; j < 37; j++)
            Assert.AreEqual(mask[j] == 0 ? 0 : Math.Exp(scores[j] * (double)scale - max) / total, masked[j], 1e-6, $"key {j}");
        Assert.AreEqual(0f, masked[1], "a masked NaN is exactly 0");

        var none = scores.ToArray();
        Assert.IsTrue(Run(none, new byte[37]), "a row that sees no key is finite");
        Assert.IsTrue(none.All(x => x == 0), "a row that sees no key is all 0");

        foreach (var (key, bad) in new[] { (0, float.NaN), (36, float.NaN), (0, float.PositiveInfinity), (36, float.NegativeInfinity) })
        {
            var row = scores.ToArray();
            row[key] = bad;
            if (float.IsNegativeInfinity(bad))
            {
                // −∞ is a key with probability 0, not a fault.
                Assert.IsTrue(Run(row, null), "−∞ at the last key");
                Assert.AreEqual(0f, row[key]);
                continue;
            }
            Assert.IsFalse(Run(row, null), $"{bad} at key {key} without a mask");
            row = scores.ToArray();
            row[key] = bad;
            Assert.IsFalse(Run(row, mask), $"{bad} at key {key}, which the mask lets through");
        }
    }
}
