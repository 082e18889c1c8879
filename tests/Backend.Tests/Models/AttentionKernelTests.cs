using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>
/// The attention products on LinearKernel (AttentionKernel, and BlockedAttention's kernel path) equal libtorch's path
/// on every vector width this CPU runs: masks, strided heads, narrow head sizes, several blocks, windows, soft-capping,
/// grouped heads and a suffix after a reused prefix.
/// </summary>
[TestClass]
[DoNotParallelize]                                                                   // LinearKernel.Selected is process-wide
public sealed class AttentionKernelTests
{
    public static IEnumerable<object[]> Paths => LinearKernelTests.Paths;

    private static T With<T>(LinearKernel.Path path, Func<T> run)
    {
        var previous = LinearKernel.Selected;
        LinearKernel.Selected = path;
        try
        {
            return run();
        }
        finally
        {
            LinearKernel.Selected = previous;
        }
    }

    private static float MaxDiff(Tensor a, Tensor b) => a.sub(b).abs().max().item<float>();

    /// <summary>BlockedAttention on <paramref name="path"/>, with every probability: (context, (B, H, T − queryStart, T)).</summary>
    private static (Tensor Context, Tensor P) Blocked(LinearKernel.Path path, Tensor q, Tensor k, Tensor v, AttentionRule rule,
        int queryStart = 0) => With(path, () =>
    {
        var probabilities = zeros(q.shape[0], q.shape[1], q.shape[2], k.shape[2]);
        return (BlockedAttention.Attend(q, k, v, rule, null, 0, null, probabilities, CancellationToken.None, queryStart), probabilities);
    });

    /// <summary>The kernel ran (its context is the transpose of a (B, T, H, D) tensor) and equals libtorch's path.</summary>
    private static void AssertKernelEquals((Tensor Context, Tensor P) expected, (Tensor Context, Tensor P) actual, string what)
    {
        Assert.AreEqual(actual.Context.shape[3], actual.Context.stride(1), $"{what}: the kernel's context");
        Assert.AreEqual(expected.Context.shape[2] * expected.Context.shape[3], expected.Context.stride(1), $"{what}: libtorch's context");
        Assert.IsLessThanOrEqualTo(1e-6f, MaxDiff(expected.P, actual.P), $"{what}: probabilities");
        Assert.IsLessThanOrEqualTo(1e-5f, MaxDiff(expected.Context, actual.Context), $"{what}: context");
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void ShortAttentionEqualsLibtorch(LinearKernel.Path path)
    {
        if (!LinearKernel.Supported(path)) return;                                  // LinearKernelTests checks the refusal
        TorchSetup.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var generator = new TorchSharp.torch.Generator(31);
        // (B, H, T, D) and the mask: a padded second sequence, a causal mask, none; head sizes 32, 64 and 40.
        foreach (var (b, h, t, d, mask) in new[] { (2, 3, 13, 32, "padding"), (1, 2, 70, 64, "causal"), (1, 1, 9, 40, "none"),
                     (2, 12, 128, 32, "padding") })
        {
            // q, k and v as GPT-2 makes them: heads of one fused (B, T, 3·H·D) projection, strided views.
            var fused = randn([b, t, 3 * h * d], generator: generator);
            Tensor Heads(int i) => fused.narrow(2, i * h * d, h * d).view(b, t, h, d).transpose(1, 2);
            Tensor? allowed = mask switch
            {
                "padding" => tensor(Enumerable.Range(0, b * t).Select(i => i / t == 0 || i % t < t - 4).ToArray()).view(b, 1, 1, t),
                "causal" => AttentionMasks.Build(t, causal: true, null, null),
                _ => null,
            };
            var expected = With(LinearKernel.Path.Torch, () => AttentionCore.Attend(Heads(0), Heads(1), Heads(2), allowed));
            AssertKernelEquals(expected, With(path, () => AttentionCore.Attend(Heads(0), Heads(1), Heads(2), allowed)),
                $"{path} {b}×{h}×{t}×{d} {mask}");
            if (allowed is not null)
            {
                // The negative control: the same inputs with the mask left out are far off.
                var (_, unmasked) = With(path, () => AttentionCore.Attend(Heads(0), Heads(1), Heads(2), null));
                Assert.IsGreaterThan(1e-3f, MaxDiff(expected.Probabilities, unmasked), $"{path} {mask}: leaving the mask out must show");
            }
        }
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void BlockedAttentionOfBatchesAndWideHeadsEqualsLibtorch(LinearKernel.Path path)
    {
        if (!LinearKernel.Supported(path)) return;
        TorchSetup.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var generator = new TorchSharp.torch.Generator(34);
        // Two unpadded sequences, head size 128 (a 32-column P·V panel), 3 kv heads for 6 query heads, 200 tokens.
        const int batch = 2, heads = 6, kvHeads = 3, tokens = 200, d = 128;
        var q = randn([batch, heads, tokens, d], generator: generator);
        var k = randn([batch, kvHeads, tokens, d], generator: generator);
        var v = randn([batch, kvHeads, tokens, d], generator: generator);
        var rule = new AttentionRule(1 / Math.Sqrt(d), true, null);
        AssertKernelEquals(Blocked(LinearKernel.Path.Torch, q, k, v, rule), Blocked(path, q, k, v, rule), $"{path}");
    }

    [TestMethod]
    public void ProbabilitiesGoStraightIntoTheArenaLayerByLayer()
    {
        var kernel = LinearKernel.Supported(LinearKernel.Path.Vector512) ? LinearKernel.Path.Vector512 : LinearKernel.Path.Scalar;
        TorchSetup.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var generator = new TorchSharp.torch.Generator(33);
        const int h = 2, t = 11, d = 16, slot = h * t * t;
        var inputs = Enumerable.Range(0, 3).Select(_ => randn([1, h, t, d], generator: generator)).ToArray();
        var buffer = new float[2 * slot + 5];
        Tensor Attend(LinearKernel.Path path, Tensor x) => With(path, () => AttentionCore.Attend(x, x, x, null).Probabilities);
        Tensor[] written;
        // Layer 0 on libtorch's path, layer 1 on the kernel: each in its own slot; a third call (more calls than
        // layers) gets its own tensor.
        using (AttentionCore.WriteProbabilitiesInto(buffer, layers: 2, layerFloats: slot))
            written = [Attend(LinearKernel.Path.Torch, inputs[0]), Attend(kernel, inputs[1]), Attend(kernel, inputs[2])];
        for (var layer = 0; layer < 2; layer++)
        {
            Assert.IsTrue(AttentionCore.WritesInto(written[layer], buffer.AsSpan(layer * slot, slot)), $"layer {layer}'s slot");
            var stored = tensor(buffer.AsSpan(layer * slot, slot).ToArray()).view(1, h, t, t);
            Assert.IsLessThanOrEqualTo(1e-6f, MaxDiff(Attend(LinearKernel.Path.Torch, inputs[layer]), stored), $"layer {layer} in the buffer");
        }
        Assert.IsFalse(AttentionCore.WritesInto(written[2], buffer.AsSpan(0, slot)), "a call past the layers");
        // Outside the scope nothing is written into the buffer.
        Assert.IsFalse(AttentionCore.WritesInto(Attend(kernel, inputs[0]), buffer.AsSpan(0, slot)), "outside the scope");
    }

    [TestMethod]
    [DynamicData(nameof(Paths))]
    public void BlockedAttentionEqualsLibtorch(LinearKernel.Path path)
    {
        if (!LinearKernel.Supported(path)) return;
        TorchSetup.EnsureInitialized();
        using var generator = new TorchSharp.torch.Generator(32);
        // 8 heads × 1,100 tokens are three blocks of 512 rows; a window of 300 starts blocks' keys off the 48-key panels.
        const int heads = 8, tokens = 1100, d = 64;
        foreach (var (kvHeads, rule, queryStart) in new[]
        {
            (8, new AttentionRule(0.125, true, null), 0),
            (2, new AttentionRule(0.125, true, 300), 0),
            (4, new AttentionRule(0.125, true, null, SoftCap: 5.0), 0),
            (2, new AttentionRule(0.125, true, 300), 700),
        })
        {
            using var scope = NewDisposeScope();
            var q = randn([1, heads, tokens - queryStart, d], generator: generator);
            var k = randn([1, kvHeads, tokens, d], generator: generator);
            var v = randn([1, kvHeads, tokens, d], generator: generator);
            var expected = Blocked(LinearKernel.Path.Torch, q, k, v, rule, queryStart);
            var what = $"{path} kv {kvHeads}, window {rule.Window}, cap {rule.SoftCap}, from {queryStart}";
            AssertKernelEquals(expected, Blocked(path, q, k, v, rule, queryStart), what);
            if (rule.Window is not null)
            {
                // The negative control: without the window the probabilities are far off.
                var unwindowed = Blocked(path, q, k, v, rule with { Window = null }, queryStart);
                Assert.IsGreaterThan(1e-3f, MaxDiff(expected.P, unwindowed.P), $"{what}: leaving the window out must show");
            }
        }
    }
}
