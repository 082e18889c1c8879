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
}
