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
            var (expectedContext, expectedP) = With(LinearKernel.Path.Torch, () => AttentionCore.Attend(Heads(0), Heads(1), Heads(2), allowed));
            var (context, p) = With(path, () => AttentionCore.Attend(Heads(0), Heads(1), Heads(2), allowed));
            // The kernel ran (its context is the transpose of a (B, T, H, D) tensor), not libtorch's path.
            Assert.AreEqual((long)d, context.stride(1), $"{path} {mask}: the kernel's context");
            Assert.AreEqual((long)t * d, expectedContext.stride(1), "libtorch's context");
            Assert.IsLessThanOrEqualTo(1e-6f, MaxDiff(expectedP, p), $"{path} probabilities {b}×{h}×{t}×{d} {mask}");
            Assert.IsLessThanOrEqualTo(1e-5f, MaxDiff(expectedContext, context), $"{path} context {b}×{h}×{t}×{d} {mask}");
            if (allowed is not null)
            {
                // The negative control: the same inputs with the mask left out are far off.
                var (_, unmasked) = With(path, () => AttentionCore.Attend(Heads(0), Heads(1), Heads(2), null));
                Assert.IsGreaterThan(1e-3f, MaxDiff(expectedP, unmasked), $"{path} {mask}: leaving the mask out must show");
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
        (Tensor Context, Tensor P) Run(LinearKernel.Path p) => With(p, () =>
        {
            var probabilities = zeros(batch, heads, tokens, tokens);
            return (BlockedAttention.Attend(q, k, v, rule, null, 0, null, probabilities, CancellationToken.None), probabilities);
        });
        var expected = Run(LinearKernel.Path.Torch);
        var actual = Run(path);
        Assert.AreEqual((long)d, actual.Context.stride(1), $"{path}: the kernel's context");
        Assert.IsLessThanOrEqualTo(1e-6f, MaxDiff(expected.P, actual.P), $"{path}: probabilities");
        Assert.IsLessThanOrEqualTo(1e-5f, MaxDiff(expected.Context, actual.Context), $"{path}: context");
    }

    [TestMethod]
    public void EachLayerTakesItsSlotWhicheverPathRuns()
    {
        var kernel = LinearKernel.Supported(LinearKernel.Path.Vector512) ? LinearKernel.Path.Vector512 : LinearKernel.Path.Scalar;
        TorchSetup.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var generator = new TorchSharp.torch.Generator(35);
        const int h = 2, t = 7, d = 8;
        var inputs = Enumerable.Range(0, 2).Select(_ => randn([1, h, t, d], generator: generator)).ToArray();
        var buffer = new float[2 * h * t * t];
        Tensor[] written;
        // Layer 0 on libtorch's path, layer 1 on the kernel: each in its own slot.
        using (AttentionCore.WriteProbabilitiesInto(buffer, layers: 2, layerFloats: h * t * t))
            written = [With(LinearKernel.Path.Torch, () => AttentionCore.Attend(inputs[0], inputs[0], inputs[0], null).Probabilities),
                With(kernel, () => AttentionCore.Attend(inputs[1], inputs[1], inputs[1], null).Probabilities)];
        for (var layer = 0; layer < 2; layer++)
        {
            Assert.IsTrue(AttentionCore.WritesInto(written[layer], buffer.AsSpan(layer * h * t * t, h * t * t)), $"layer {layer}'s slot");
            var expected = With(LinearKernel.Path.Torch, () => AttentionCore.Attend(inputs[layer], inputs[layer], inputs[layer], null).Probabilities);
            var stored = tensor(buffer.AsSpan(layer * h * t * t, h * t * t).ToArray()).view(1, h, t, t);
            Assert.IsLessThanOrEqualTo(1e-6f, MaxDiff(expected, stored), $"layer {layer} in the buffer");
        }
    }

    [TestMethod]
    public void ProbabilitiesGoStraightIntoTheArenaLayerByLayer()
    {
        var kernel = LinearKernel.Supported(LinearKernel.Path.Vector512) ? LinearKernel.Path.Vector512 : LinearKernel.Path.Scalar;
        TorchSetup.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var generator = new TorchSharp.torch.Generator(33);
        const int h = 2, t = 11, d = 16;
        var inputs = Enumerable.Range(0, 3).Select(_ => randn([1, h, t, d], generator: generator)).ToArray();
        var buffer = new float[2 * h * t * t + 5];
        Tensor[] written;
        using (AttentionCore.WriteProbabilitiesInto(buffer, layers: 2, layerFloats: h * t * t))
            written = With(kernel, () => inputs.Select(x => AttentionCore.Attend(x, x, x, null).Probabilities).ToArray());
        // Layers 0 and 1 are the buffer's slots; a third call (more than the layers) gets its own tensor.
        Assert.IsTrue(AttentionCore.WritesInto(written[0], buffer.AsSpan(0, h * t * t)));
        Assert.IsTrue(AttentionCore.WritesInto(written[1], buffer.AsSpan(h * t * t, h * t * t)));
        Assert.IsFalse(AttentionCore.WritesInto(written[2], buffer.AsSpan(0, h * t * t)));
        for (var layer = 0; layer < 2; layer++)
        {
            var expected = With(LinearKernel.Path.Torch, () => AttentionCore.Attend(inputs[layer], inputs[layer], inputs[layer], null).Probabilities);
            var stored = tensor(buffer.AsSpan(layer * h * t * t, h * t * t).ToArray()).view(1, h, t, t);
            Assert.IsLessThanOrEqualTo(1e-6f, MaxDiff(expected, stored), $"layer {layer} in the buffer");
        }
        // Outside the scope nothing is written into the buffer.
        var after = With(kernel, () => AttentionCore.Attend(inputs[0], inputs[0], inputs[0], null).Probabilities);
        Assert.IsFalse(AttentionCore.WritesInto(after, buffer.AsSpan(0, h * t * t)));
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
            (Tensor Context, Tensor P) Run(LinearKernel.Path p) => With(p, () =>
            {
                var probabilities = zeros(1, heads, tokens - queryStart, tokens);
                var context = BlockedAttention.Attend(q, k, v, rule, null, 0, null, probabilities, CancellationToken.None, queryStart);
                return (context, probabilities);
            });
            var expected = Run(LinearKernel.Path.Torch);
            var actual = Run(path);
            var what = $"{path} kv {kvHeads}, window {rule.Window}, cap {rule.SoftCap}, from {queryStart}";
            Assert.AreEqual((long)d, actual.Context.stride(1), $"{what}: the kernel's context");
            Assert.AreEqual((long)(tokens - queryStart) * d, expected.Context.stride(1), "libtorch's context");
            Assert.IsLessThanOrEqualTo(1e-6f, MaxDiff(expected.P, actual.P), $"{what}: probabilities");
            Assert.IsLessThanOrEqualTo(1e-5f, MaxDiff(expected.Context, actual.Context), $"{what}: context");
            if (rule.Window is not null)
            {
                // The negative control: without the window the probabilities are far off.
                var unwindowed = With(path, () =>
                {
                    var probabilities = zeros(1, heads, tokens - queryStart, tokens);
                    BlockedAttention.Attend(q, k, v, rule with { Window = null }, null, 0, null, probabilities, CancellationToken.None, queryStart);
                    return probabilities;
                });
                Assert.IsGreaterThan(1e-3f, MaxDiff(expected.P, unwindowed), $"{what}: leaving the window out must show");
            }
        }
    }
}
