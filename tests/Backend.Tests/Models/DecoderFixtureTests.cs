using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>
/// GPT-2 and Llama against attention, hidden states and logits computed by nanoGPT and llama2.c; Qwen3, Gemma 2,
/// Gemma 3 and Phi-3 against a float64 implementation of HF's modeling code (../shared/fixtures/README.md).
/// </summary>
[TestClass]
public sealed class DecoderFixtureTests
{
    private const double AttentionTolerance = 1e-4, HiddenTolerance = 1e-3, LogitsTolerance = 1e-3;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow("gpt2-tiny", "s0", DisplayName = "gpt2-tiny s0 (16 ids) vs nanoGPT")]
    [DataRow("gpt2-tiny", "s1", DisplayName = "gpt2-tiny s1 (100 ids) vs nanoGPT")]
    [DataRow("llama-tiny", "s0", DisplayName = "llama-tiny s0 (16 ids) vs llama2.c")]
    [DataRow("llama-tiny", "s1", DisplayName = "llama-tiny s1 (100 ids) vs llama2.c")]
    [DataRow("qwen3-tiny", "s0", DisplayName = "qwen3-tiny s0 (16 ids) vs float64 HF reference")]
    [DataRow("qwen3-tiny", "s1", DisplayName = "qwen3-tiny s1 (60 ids) vs float64 HF reference")]
    [DataRow("gemma2-tiny", "s0", DisplayName = "gemma2-tiny s0 (20 ids) vs float64 HF reference")]
    [DataRow("gemma2-tiny", "s1", DisplayName = "gemma2-tiny s1 (64 ids) vs float64 HF reference")]
    [DataRow("gemma3-tiny", "s0", DisplayName = "gemma3-tiny s0 (18 ids) vs float64 HF reference")]
    [DataRow("gemma3-tiny", "s1", DisplayName = "gemma3-tiny s1 (70 ids) vs float64 HF reference")]
    [DataRow("phi3-tiny", "s0", DisplayName = "phi3-tiny s0 (16 ids) vs float64 HF reference")]
    [DataRow("phi3-tiny", "s1", DisplayName = "phi3-tiny s1 (50 ids) vs float64 HF reference")]
    public void MatchesIndependentImplementation(string fixture, string key)
    {
        TorchSetup.EnsureInitialized();
        var expected = Fixtures.Expected(fixture);
        using var loaded = ModelFolder.Load(Fixtures.Folder(fixture), null);
        Assert.IsTrue(loaded.Model.Causal);
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected[$"{key}.input_ids"])], WantLogits: true));

        var attentions = stack(result.Attentions.Select(a => a[0]).ToArray());  // (L, H, T, T)
        Fixtures.AssertClose(expected[$"{key}.attentions"], attentions, AttentionTolerance, $"{fixture} {key} attentions");
        Fixtures.AssertClose(expected[$"{key}.last_hidden_state"], result.LastHiddenState[0], HiddenTolerance, $"{fixture} {key} last_hidden_state");
        Assert.IsNotNull(result.Logits);
        Fixtures.AssertClose(expected[$"{key}.logits"], result.Logits[0], LogitsTolerance, $"{fixture} {key} logits");
        AssertExactlyZeroAboveDiagonal(attentions);
        TestContext.WriteLine($"{fixture} {key}: max |diff| attention {ModelTestSupport.MaxDiff(expected[$"{key}.attentions"], attentions):E2}, "
            + $"hidden {ModelTestSupport.MaxDiff(expected[$"{key}.last_hidden_state"], result.LastHiddenState[0]):E2}, "
            + $"logits {ModelTestSupport.MaxDiff(expected[$"{key}.logits"], result.Logits[0]):E2}");
    }

    /// <summary>Causal models: every entry above the diagonal is exactly 0, not merely small.</summary>
    internal static void AssertExactlyZeroAboveDiagonal(Tensor attentions)
    {
        var t = attentions.shape[^1];
        var future = ones(t, t, dtype: @bool).triu(1);
        var above = attentions.masked_select(future.expand_as(attentions));
        Assert.AreEqual(0L, above.count_nonzero().item<long>(), "attention above the diagonal must be exactly 0");
    }

    [TestMethod]
    [DataRow("gpt2-tiny")]
    [DataRow("llama-tiny")]
    [DataRow("qwen3-tiny")]
    [DataRow("gemma2-tiny")]  // the padded path's soft-capping and window
    [DataRow("gemma3-tiny")]
    [DataRow("phi3-tiny")]
    public void RightPaddingIsMaskedAndChangesNothingElse(string fixture)
    {
        // s0 plus four padding tokens with attention_mask 0: padded keys get exactly 0, and the real tokens' attention
        // and hidden states are the fixture's (with arange positions, right padding only adds later positions).
        TorchSetup.EnsureInitialized();
        var expected = Fixtures.Expected(fixture);
        var ids = Fixtures.Longs(expected["s0.input_ids"]);
        long[] padded = [.. ids, 0, 0, 0, 0];
        long[] mask = [.. ids.Select(_ => 1L), 0, 0, 0, 0];
        using var loaded = ModelFolder.Load(Fixtures.Folder(fixture), null);
        using var result = loaded.Model.Forward(new ForwardInput([padded], null, [mask]));
        var attentions = stack(result.Attentions.Select(a => a[0]).ToArray());  // (L, H, 20, 20)
        var n = ids.Length;
        Assert.AreEqual(0f, attentions[.., .., .., TensorIndex.Slice(n)].abs().max().item<float>(), "padded keys");
        Fixtures.AssertClose(expected["s0.attentions"], attentions[.., .., TensorIndex.Slice(0, n), TensorIndex.Slice(0, n)], AttentionTolerance,
            $"{fixture} padded s0");
        Fixtures.AssertClose(expected["s0.last_hidden_state"], result.LastHiddenState[0, TensorIndex.Slice(0, n)], HiddenTolerance,
            $"{fixture} padded s0 hidden");
        AssertExactlyZeroAboveDiagonal(attentions);
    }

    [TestMethod]
    [DataRow("gpt2-tiny")]
    [DataRow("llama-tiny")]
    [DataRow("bert-tiny")]
    public void InputsAreCheckedAtTheModelBoundary(string fixture)
    {
        TorchSetup.EnsureInitialized();
        using var loaded = ModelFolder.Load(Fixtures.Folder(fixture), null);
        var model = loaded.Model;
        Assert.ThrowsExactly<ArgumentException>(() => model.Forward(new ForwardInput([[1, 2, 3]], null, [[1, 1]])), "mask shape");
        Assert.ThrowsExactly<ArgumentException>(() => model.Forward(new ForwardInput([[1, 2, 3]], null, [[1, 2, 1]])), "mask values");
        Assert.ThrowsExactly<ArgumentException>(() => model.Forward(new ForwardInput([[1, model.VocabularySize]])), "id out of range");
        Assert.ThrowsExactly<ArgumentException>(() => model.Forward(new ForwardInput([new long[model.MaxPositions + 1]])), "longer than the window");
        Assert.ThrowsExactly<ArgumentException>(() => model.Forward(new ForwardInput([[1, 2], [3]])), "ragged batch");
    }

    [TestMethod]
    public void LogitsAreOnlyComputedWhenAsked()
    {
        TorchSetup.EnsureInitialized();
        using var loaded = ModelFolder.Load(Fixtures.Folder("gpt2-tiny"), null);
        using var result = loaded.Model.Forward(new ForwardInput([[1, 2, 3]]));
        Assert.IsNull(result.Logits);
    }
}
