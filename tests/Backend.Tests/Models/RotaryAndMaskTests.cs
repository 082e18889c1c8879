using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>The shared pieces in Models/Core against values computed by hand from their formulas.</summary>
[TestClass]
public sealed class RotaryAndMaskTests
{
    [TestInitialize]
    public void Init() => TorchSetup.EnsureInitialized();

    private static double[] Values(Tensor t) => t.to(float64).data<double>().ToArray();

    /// <summary>θ_i = base^(−2i/dim), computed in double.</summary>
    private static double[] DefaultFrequencies(int dim, double theta) =>
        Enumerable.Range(0, dim / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / dim)).ToArray();

    private static void AssertRelativelyClose(double[] expected, double[] actual, double tolerance, string what)
    {
        Assert.HasCount(expected.Length, actual);
        for (var i = 0; i < expected.Length; i++)
            Assert.IsLessThanOrEqualTo(tolerance, Math.Abs(expected[i] - actual[i]) / Math.Abs(expected[i]),
                $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
    }

    [TestMethod]
    public void RotaryRotatesHalvesByPositionTimesFrequency()
    {
        // dim 4, base 10000: frequencies 1 and 0.01; x = (1, 2, 3, 4) pairs (x0, x2) and (x1, x3) in the rotate-half layout.
        var rotary = new RotaryEmbedding(4, 10_000, null, 128);
        CollectionAssert.AreEqual(new[] { 1.0, 0.01 }, Values(rotary.InverseFrequencies(8)).Select(v => Math.Round(v, 7)).ToArray());
        var positions = tensor(new long[] { 0, 1, 5, 77 }, [1, 4]);
        var (cos, sin) = rotary.CosSin(positions);                                   // (1, 4, 4)
        var x = tensor(new float[] { 1, 2, 3, 4 }).expand(1, 1, 4, 4).contiguous();  // (B=1, H=1, T=4, D=4)
        var rotated = RotaryEmbedding.Apply(x, cos, sin);
        long[] ps = [0, 1, 5, 77];
        for (var t = 0; t < ps.Length; t++)
        {
            double a = ps[t] * 1.0, b = ps[t] * 0.01;
            Assert.AreEqual(Math.Cos(a), cos[0, t, 0].item<float>(), 1e-6, "cos θ0");
            Assert.AreEqual(Math.Cos(a), cos[0, t, 2].item<float>(), 1e-6, "cos repeats in the second half");
            Assert.AreEqual(Math.Sin(b), sin[0, t, 1].item<float>(), 1e-6, "sin θ1");
            double[] expected =
            [
                1 * Math.Cos(a) - 3 * Math.Sin(a),
                2 * Math.Cos(b) - 4 * Math.Sin(b),
                3 * Math.Cos(a) + 1 * Math.Sin(a),
                4 * Math.Cos(b) + 2 * Math.Sin(b),
            ];
            var actual = Values(rotated[0, 0, t]);
            for (var d = 0; d < 4; d++) Assert.AreEqual(expected[d], actual[d], 2e-5, $"position {ps[t]}, dim {d}");
        }
        CollectionAssert.AreEqual(new float[] { -3, -4, 1, 2 },
            RotaryEmbedding.RotateHalf(tensor(new float[] { 1, 2, 3, 4 })).data<float>().ToArray());
    }

    [TestMethod]
    public void DefaultFrequenciesFollowTheFormula()
    {
        var rotary = new RotaryEmbedding(64, 500_000, null, 128);
        AssertRelativelyClose(DefaultFrequencies(64, 500_000), Values(rotary.InverseFrequencies(16)), 2e-6, "inv_freq");
    }

    [TestMethod]
    public void LinearScalingDividesEveryFrequency()
    {
        var rotary = new RotaryEmbedding(16, 10_000, new RopeScaling { RopeType = "linear", Factor = 4 }, 128);
        AssertRelativelyClose(DefaultFrequencies(16, 10_000).Select(f => f / 4).ToArray(), Values(rotary.InverseFrequencies(16)), 2e-6, "linear");
        var legacy = new RotaryEmbedding(16, 10_000, new RopeScaling { LegacyType = "linear", Factor = 2 }, 128);
        AssertRelativelyClose(DefaultFrequencies(16, 10_000).Select(f => f / 2).ToArray(), Values(legacy.InverseFrequencies(16)), 2e-6,
            "legacy 'type' key");
    }

    [TestMethod]
    public void DynamicNtkChangesTheBaseOnlyBeyondTheTrainedLength()
    {
        const int dim = 16, maxPositions = 128;
        const double theta = 10_000, factor = 2;
        var rotary = new RotaryEmbedding(dim, theta, new RopeScaling { RopeType = "dynamic", Factor = factor }, maxPositions);
        AssertRelativelyClose(DefaultFrequencies(dim, theta), Values(rotary.InverseFrequencies(maxPositions)), 2e-6, "within the trained length");
        foreach (var length in new[] { 129, 256, 1000 })
        {
            // base · ((factor · seq_len / max_pos) − (factor − 1)) ^ (dim / (dim − 2))
            var scaledBase = theta * Math.Pow(factor * length / maxPositions - (factor - 1), dim / (dim - 2.0));
            AssertRelativelyClose(DefaultFrequencies(dim, scaledBase), Values(rotary.InverseFrequencies(length)), 5e-6, $"seq_len {length}");
        }
    }

    [TestMethod]
    public void Llama3ScalingKeepsHighFrequenciesDividesLowOnesAndSmoothsBetween()
    {
        // Llama 3.1's values: factor 8, low_freq_factor 1, high_freq_factor 4, original 8192, base 500000, head_dim 128.
        const double factor = 8, low = 1, high = 4, old = 8192;
        var scaling = new RopeScaling
        {
            RopeType = "llama3", Factor = factor, LowFreqFactor = low, HighFreqFactor = high,
            OriginalMaxPositionEmbeddings = 8192
        };
        var rotary = new RotaryEmbedding(128, 500_000, scaling, 131_072);
        var regions = new HashSet<string>();
        var expected = DefaultFrequencies(128, 500_000).Select(f =>
        {
            var wavelen = 2 * Math.PI / f;
            if (wavelen < old / high) { regions.Add("high"); return f; }
            if (wavelen > old / low) { regions.Add("low"); return f / factor; }
            regions.Add("medium");
            var smooth = (old / wavelen - low) / (high - low);
            return (1 - smooth) * f / factor + smooth * f;
        }).ToArray();
        Assert.HasCount(3, regions, "the test must cover all three frequency bands");
        AssertRelativelyClose(expected, Values(rotary.InverseFrequencies(16)), 1e-5, "llama3");
    }

    [TestMethod]
    [DataRow("yarn")]
    [DataRow("mrope")]
    [DataRow("su")]
    public void UnknownRopeTypeIsAClearError(string type)
    {
        var error = Assert.ThrowsExactly<ModelLoadException>(() => new RotaryEmbedding(16, 10_000, new RopeScaling { RopeType = type, Factor = 2 },
            128));
        StringAssert.Contains(error.Message, type);
        StringAssert.Contains(error.Message, "llama3");
    }

    [TestMethod]
    public void Llama3WithoutItsFactorsIsAnError()
    {
        var error = Assert.ThrowsExactly<ModelLoadException>(() => new RotaryEmbedding(16, 10_000,
            new RopeScaling { RopeType = "llama3", Factor = 8 }, 128));
        StringAssert.Contains(error.Message, "low_freq_factor");
    }

    private static bool[,] Grid(Tensor allowed)
    {
        var t = (int)allowed.shape[^1];
        var values = allowed.reshape(-1, t, t)[0].data<bool>().ToArray();
        var grid = new bool[t, t];
        for (var i = 0; i < t; i++) for (var j = 0; j < t; j++) grid[i, j] = values[i * t + j];
        return grid;
    }

    [TestMethod]
    public void CausalSlidingWindowMaskKeepsTheLastWindowKeys()
    {
        const int t = 7, window = 3;
        var grid = Grid(AttentionMasks.Build(t, causal: true, window, null)!);
        for (var i = 0; i < t; i++)
            for (var j = 0; j < t; j++)
                Assert.AreEqual(j <= i && i - j < window, grid[i, j], $"query {i}, key {j}");
    }

    [TestMethod]
    public void PaddingAndCausalCombine()
    {
        var padding = tensor(new long[] { 0, 1, 1, 1, 0 }, [1, 5]);
        var allowed = AttentionMasks.Build(5, causal: true, null, padding)!;
        CollectionAssert.AreEqual(new long[] { 1, 1, 5, 5 }, allowed.shape);
        var grid = Grid(allowed);
        for (var i = 0; i < 5; i++)
            for (var j = 0; j < 5; j++)
                Assert.AreEqual(j <= i && j is >= 1 and <= 3, grid[i, j], $"query {i}, key {j}");
        Assert.IsNull(AttentionMasks.Build(5, causal: false, null, null));
    }

    [TestMethod]
    public void MaskedProbabilitiesAreExactlyZeroAndRowsSumToOne()
    {
        var generator = new TorchSharp.torch.Generator(7);
        var q = randn([1, 2, 6, 4], generator: generator);
        var k = randn([1, 2, 6, 4], generator: generator);
        var v = randn([1, 2, 6, 4], generator: generator);
        var allowed = AttentionMasks.Build(6, causal: true, 2, null);
        var (_, p) = AttentionCore.Attend(q, k, v, allowed);
        Assert.AreEqual(0f, p.masked_select(allowed!.logical_not().expand_as(p)).abs().max().item<float>());
        Assert.IsLessThan(1e-6, (p.sum(-1) - 1).abs().max().item<float>());
        // A query that may see nothing attends to nothing (instead of uniformly to masked keys).
        var none = zeros([1, 1, 6, 6], dtype: @bool);
        var (_, empty) = AttentionCore.Attend(q, k, v, none);
        Assert.AreEqual(0f, empty.abs().max().item<float>());
    }

    [TestMethod]
    public void RepeatKeyValueHeadsMapsQueryHeadToKvHeadDividedByGroupSize()
    {
        var kv = arange(3, dtype: float32).reshape(1, 3, 1, 1).expand(1, 3, 2, 4).contiguous();  // kv head g holds the value g
        var repeated = AttentionCore.RepeatKeyValueHeads(kv, 4);                   // 12 query heads
        for (var h = 0; h < 12; h++) Assert.AreEqual((float)(h / 4), repeated[0, h, 0, 0].item<float>(), $"query head {h}");
    }

    /// <summary>
    /// The one-pass RoPE on a projection's heads equals libtorch's x·cos + rotate_half(x)·sin bit for bit: head sizes
    /// with and without a vector tail, a batch of two with its own tables or one shared table, and q split from a
    /// fused projection (rows not contiguous); partial rotation is left to libtorch's path.
    /// </summary>
    [TestMethod]
    [DataRow(2, 37, 3, 64, false, false)]
    [DataRow(2, 37, 3, 64, true, false)]
    [DataRow(1, 19, 5, 128, false, true)]
    [DataRow(2, 5, 2, 24, false, true)]
    [DataRow(1, 9, 4, 6, false, false)]
    public void RotaryOnHeadsEqualsLibtorchBitForBit(int batch, int tokens, int heads, int headDim, bool sharedTable, bool fused)
    {
        manual_seed(20261204);
        var projected = fused
            ? randn(batch, tokens, (heads + 2) * headDim).narrow(-1, 0, heads * headDim)
            : randn(batch, tokens, heads * headDim);
        var split = projected.view(batch, tokens, heads, headDim);
        var (cos, sin) = (randn(sharedTable ? 1 : batch, tokens, headDim), randn(sharedTable ? 1 : batch, tokens, headDim));
        using var expected = RotaryEmbedding.Apply(split.transpose(1, 2), cos, sin).contiguous();
        using var actual = RotaryEmbedding.ApplyToHeads(split, cos, sin);
        Assert.IsNotNull(actual);
        CollectionAssert.AreEqual(expected.shape, actual.shape);
        Assert.IsTrue(actual.is_contiguous());
        // Bit for bit: the bytes (a difference of 0 would not tell −0 from +0).
        Assert.IsTrue(expected.bytes.SequenceEqual(actual.bytes), $"{batch}×{tokens}×{heads}×{headDim}");
        // A position off by one is far from it: the comparison sees the tables.
        using var shifted = RotaryEmbedding.ApplyToHeads(split, cos.roll(1, 1), sin.roll(1, 1));
        Assert.IsTrue((expected - shifted!).abs().max().item<float>() > 1e-3f);
        Assert.IsNull(RotaryEmbedding.ApplyToHeads(split, cos.narrow(-1, 0, headDim / 2).contiguous(),
            sin.narrow(-1, 0, headDim / 2).contiguous()), "partial rotation");
    }
}
