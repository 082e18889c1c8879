using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>
/// Every linear-layer path this CPU runs equals libtorch's linear to 1e-5 on shapes that are not multiples of the
/// kernel's blocks, and runs the fixtures within their tolerance (the paths are forced here as ATTENTIONVIZ_LINEAR
/// forces them in the product).
/// </summary>
[TestClass]
[DoNotParallelize]                                                                   // LinearKernel.Selected is process-wide
public sealed class LinearKernelTests
{
    public TestContext TestContext { get; set; } = null!;

    public static IEnumerable<object[]> Paths =>
        new[] { LinearKernel.Path.Vector512, LinearKernel.Path.Vector256, LinearKernel.Path.Scalar }.Select(p => new object[] { p });

    /// <summary>False on a CPU without the path's instructions, after checking that forcing it is refused clearly
    /// (the dispatch never picks it there, so there is nothing else to run).</summary>
    private static bool Runs(LinearKernel.Path path)
    {
        if (LinearKernel.Supported(path)) return true;
        var e = Assert.ThrowsExactly<ModelLoadException>(() => LinearKernel.Choose(path.ToString()));
        StringAssert.Contains(e.Message, "this CPU does not run");
        return false;
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void EqualsTorchLinearOnOddShapes(LinearKernel.Path path)
    {
        if (!Runs(path)) return;
        TorchSetup.EnsureInitialized();
        using var generator = new TorchSharp.torch.Generator(20261203);
        foreach (var (m, n, k, withBias) in new[]
        {
            (1, 1, 1, false), (3, 5, 7, true), (4, 4, 16, false), (17, 33, 65, true), (5, 9, 15, true),
            (129, 67, 385, true), (69, 1539, 393, false), (200, 300, 1000, true), (8, 48, 256, false), (16, 96, 513, true),
            // Narrow last panels of 16 and 32 columns (head sizes 64 and 32, Qwen2.5's 896) on their own tiles.
            (19, 64, 70, true), (21, 32, 40, true), (9, 80, 33, false), (40, 896, 50, true), (8, 16, 5, true), (17, 80, 600, true),
        })
        {
            using var a = randn([m, k], generator: generator);
            using var w = randn([n, k], generator: generator).mul_(0.05);
            using var b = randn([n], generator: generator);
            using var expected = nn.functional.linear(a, w, withBias ? b : null);
            var actual = new float[m * n];
            var packed = w.data<float>().ToArray();
            LinearKernel.Pack(packed, n, k);
            LinearKernel.Multiply(path, a.data<float>().ToArray(), packed, withBias ? b.data<float>().ToArray() : [], actual, m, n, k);
            var reference = expected.data<float>().ToArray();
            var diff = reference.Zip(actual, (x, y) => Math.Abs(x - y)).Max();
            Assert.IsLessThanOrEqualTo(1e-5f, diff, $"{path} {m}×{k} · ({n}×{k})ᵀ: max |diff| {diff:E2}");
        }
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void EpiloguesEqualTorchOnOddShapes(LinearKernel.Path path)
    {
        // act(x·Wᵀ + b) + r, and (x·Wᵀ + b) · r, against libtorch's linear, activation and add/mul, for each activation.
        if (!Runs(path)) return;
        TorchSetup.EnsureInitialized();
        using var generator = new TorchSharp.torch.Generator(20261204);
        foreach (var name in new[] { "gelu", "gelu_new", "relu", "silu" })
            foreach (var (m, n, k) in new[] { (3, 5, 7), (17, 33, 65), (69, 1539, 393), (21, 32, 40), (130, 80, 300) })
            {
                var activation = ActivationFunctions.Resolve(name);
                using var a = randn([m, k], generator: generator);
                using var w = randn([n, k], generator: generator).mul_(0.05);
                using var b = randn([n], generator: generator);
                using var r = randn([m, n], generator: generator);
                var packed = w.data<float>().ToArray();
                LinearKernel.Pack(packed, n, k);
                foreach (var multiply in new[] { false, true })
                {
                    using var linear = nn.functional.linear(a, w, b);
                    using var expected = multiply ? linear.mul(r) : activation.Torch(linear).add_(r);
                    var actual = new float[m * n];
                    LinearKernel.Multiply(path, a.data<float>().ToArray(), packed, b.data<float>().ToArray(), actual, m, n, k,
                        multiply ? Activation.None : activation.Kernel, r.data<float>().ToArray(), multiply);
                    var diff = expected.data<float>().ToArray().Zip(actual, (x, y) => Math.Abs(x - y) / Math.Max(1, Math.Abs(x))).Max();
                    Assert.IsLessThanOrEqualTo(1e-5f, diff, $"{path} {name} {(multiply ? "×" : "+")} {m}×{k}·({n}×{k})ᵀ: {diff:E2}");
                }
            }
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void ActivationsEqualTorchAcrossTheirRange(LinearKernel.Path path)
    {
        // Every lane and the scalar tail, from −100 to 100 (erf's and exp's clamps), against libtorch's functions.
        if (!Runs(path)) return;
        TorchSetup.EnsureInitialized();
        // NaN stays NaN, as in libtorch; the residual (added or multiplied) is applied in the same pass.
        // The special values lead (vector lanes see them) and close (the scalar tail does).
        float[] special = [0f, -0f, 1e-30f, -1e-30f, 88.5f, -88.5f, float.NaN];
        var x = special.Concat(Enumerable.Range(0, 4003).Select(i => -100f + i * (200f / 4002))).Concat(special).ToArray();
        var other = x.Select((_, i) => (float)Math.Sin(i)).ToArray();
        foreach (var name in new[] { "gelu", "gelu_new", "relu", "silu" })
            foreach (var residual in new[] { "none", "add", "multiply" })
            {
                var activation = ActivationFunctions.Resolve(name);
                using var input = tensor(x);
                using var residualTensor = tensor(other);
                using var activated = activation.Torch(input);
                using var expected = residual switch
                {
                    "add" => activated + residualTensor,
                    "multiply" => activated * residualTensor,
                    _ => activated.clone(),
                };
                var actual = x.ToArray();
                for (var start = 0; start < actual.Length; start += 37)
                {
                    var length = Math.Min(37, actual.Length - start);
                    ActivationFunctions.Apply(activation.Kernel, path, actual.AsSpan(start, length),
                        residual == "none" ? default : other.AsSpan(start, length), residual == "multiply");
                }
                var reference = expected.data<float>().ToArray();
                for (var i = 0; i < x.Length; i++)
                    if (float.IsNaN(reference[i])) Assert.IsTrue(float.IsNaN(actual[i]), $"{path} {name}({x[i]}) {residual}: {actual[i]}");
                    else Assert.AreEqual(reference[i], actual[i], 2e-6 * Math.Max(1, Math.Abs(reference[i])), $"{path} {name}({x[i]}) {residual}");
            }
    }

    [TestMethod]
    public void AWrongKernelFailsTheComparison()
    {
        // The negative control: a weight row off by one (w[n + 1] for w[n]) is far outside 1e-5.
        TorchSetup.EnsureInitialized();
        using var generator = new TorchSharp.torch.Generator(7);
        using var a = randn([17, 33], generator: generator);
        using var w = randn([9, 33], generator: generator);
        var shifted = w.roll(1, 0).data<float>().ToArray();
        LinearKernel.Pack(shifted, 9, 33);
        var actual = new float[17 * 9];
        LinearKernel.Multiply(LinearKernel.Path.Scalar, a.data<float>().ToArray(), shifted, [], actual, 17, 9, 33);
        using var expected = nn.functional.linear(a, w);
        Assert.IsGreaterThan(0.1f, expected.data<float>().ToArray().Zip(actual, (x, y) => Math.Abs(x - y)).Max());
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void FixturesHoldOnEveryPath(LinearKernel.Path path)
    {
        if (!Runs(path)) return;
        TorchSetup.EnsureInitialized();
        var previous = LinearKernel.Selected;
        LinearKernel.Selected = path;
        try
        {
            // s1 of llama and gpt2 (100 ids); bert-tiny's s1 is a sentence pair, so its s0.
            foreach (var (fixture, key) in new[] { ("llama-tiny", "s1"), ("gpt2-tiny", "s1"), ("bert-tiny", "s0"), ("phi3-tiny", "s1"),
                         ("gemma2-tiny", "s1") })
            {
                var expected = Fixtures.Expected(fixture);
                using var loaded = ModelFolder.Load(Fixtures.Folder(fixture), null);
                var ids = Fixtures.Longs(expected[$"{key}.input_ids"]);
                using var result = loaded.Model.Forward(new ForwardInput([ids]));
                using var attentions = stack(result.Attentions.Select(t => t[0]).ToArray());
                Fixtures.AssertClose(expected[$"{key}.attentions"], attentions, 1e-4, $"{fixture} on {path}");
                using var hidden = result.LastHiddenState[0];
                Fixtures.AssertClose(expected[$"{key}.last_hidden_state"], hidden, 1e-3, $"{fixture} hidden states on {path}");
            }
        }
        finally
        {
            LinearKernel.Selected = previous;
        }
    }

    [TestMethod]
    public void RowsInStepsUnderTheSpanLimitGiveTheSameAttention()
    {
        // Outputs over 2 GB (an LM head's logits over a long input) go in row steps; a tiny limit runs them here.
        TorchSetup.EnsureInitialized();
        var expected = Fixtures.Expected("llama-tiny");
        using var loaded = ModelFolder.Load(Fixtures.Folder("llama-tiny"), null);
        var ids = Fixtures.Longs(expected["s1.input_ids"]);
        var previous = Dense.SpanLimitFloats;
        Dense.SpanLimitFloats = 3_000;                                              // a few rows per step
        try
        {
            using var result = loaded.Model.Forward(new ForwardInput([ids], WantLogits: true));
            using var attentions = stack(result.Attentions.Select(t => t[0]).ToArray());
            Fixtures.AssertClose(expected["s1.attentions"], attentions, 1e-4, "llama-tiny in row steps");
            Fixtures.AssertClose(expected["s1.logits"], result.Logits![0], 1e-3, "llama-tiny logits in row steps");
        }
        finally
        {
            Dense.SpanLimitFloats = previous;
        }
    }

    [TestMethod]
    public void PackingIsAPermutationThatUnpacks()
    {
        foreach (var (n, k) in new[] { (1, 1), (48, 3), (49, 5), (100, 7), (1536, 384) })
        {
            var w = Enumerable.Range(0, n * k).Select(i => (float)i).ToArray();
            var packed = (float[])w.Clone();
            LinearKernel.Pack(packed, n, k);
            CollectionAssert.AreEquivalent(w, packed, $"{n}×{k}: the same values");
            // Panel 0 is k-major: its row i holds w[0..48, i].
            if (n > 1) Assert.AreEqual(w[1 * k + 0], packed[1], $"{n}×{k}: w[1, 0] sits beside w[0, 0]");
            LinearKernel.Unpack(packed, n, k);
            CollectionAssert.AreEqual(w, packed, $"{n}×{k}: unpacked");
        }
    }

    [TestMethod]
    public void TheEnvironmentVariableChoosesAPathOrSaysWhatIsWrong()
    {
        Assert.AreEqual(LinearKernel.Path.Torch, LinearKernel.Choose("torch"));
        Assert.AreEqual(LinearKernel.Path.Scalar, LinearKernel.Choose(" Scalar "));
        var defaultPath = LinearKernel.Choose(null);
        Assert.IsTrue(LinearKernel.Supported(defaultPath));
        var e = Assert.ThrowsExactly<ModelLoadException>(() => LinearKernel.Choose("avx9000"));
        StringAssert.Contains(e.Message, "ATTENTIONVIZ_LINEAR=avx9000");
        StringAssert.Contains(e.Message, "vector256");
    }
}
