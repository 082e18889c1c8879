using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>The BERT implementation against attention and hidden states computed independently (torch.nn, ONNX Runtime).</summary>
[TestClass]
public sealed class BertFixtureTests
{
    private const double AttentionTolerance = 1e-4, HiddenTolerance = 1e-3;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow("s0", DisplayName = "bert-tiny single segment")]
    [DataRow("s1", DisplayName = "bert-tiny sentence pair with token types")]
    [DataRow("s2", DisplayName = "bert-tiny padded with an attention mask")]
    public void BertTinyMatchesTorchNn(string key)
    {
        TorchSetup.EnsureInitialized();
        var expected = Fixtures.Expected("bert-tiny");
        using var loaded = ModelFolder.Load(Fixtures.Folder("bert-tiny"), null);
        var input = new ForwardInput(
            [Fixtures.Longs(expected[$"{key}.input_ids"])],
            [Fixtures.Longs(expected[$"{key}.token_type_ids"])],
            [Fixtures.Longs(expected[$"{key}.attention_mask"])]);
        using var result = loaded.Model.Forward(input);

        var attentions = stack(result.Attentions.Select(a => a[0]).ToArray());  // (L, H, T, T)
        Fixtures.AssertClose(expected[$"{key}.attentions"], attentions, AttentionTolerance, $"bert-tiny {key} attentions");
        Fixtures.AssertClose(expected[$"{key}.last_hidden_state"], result.LastHiddenState[0], HiddenTolerance, $"bert-tiny {key} last_hidden_state");
        TestContext.WriteLine($"bert-tiny {key}: max |diff| attention {ModelTestSupport.MaxDiff(expected[$"{key}.attentions"], attentions):E2}, "
            + $"hidden {ModelTestSupport.MaxDiff(expected[$"{key}.last_hidden_state"], result.LastHiddenState[0]):E2}");
    }

    [TestMethod]
    public void PaddedKeysGetZeroAttention()
    {
        TorchSetup.EnsureInitialized();
        var expected = Fixtures.Expected("bert-tiny");
        var mask = Fixtures.Longs(expected["s2.attention_mask"]);
        Assert.Contains(0L, mask, "fixture s2 should contain padding");
        using var loaded = ModelFolder.Load(Fixtures.Folder("bert-tiny"), null);
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected["s2.input_ids"])], null, [mask]));
        for (var k = 0; k < mask.Length; k++)
            if (mask[k] == 0)
                Assert.AreEqual(0f, result.Attentions[0][.., .., .., k].abs().max().item<float>(), $"key {k} is padding");
    }

    [TestMethod]
    public void EmbeddedMiniLmMatchesOnnxRuntime()
    {
        TorchSetup.EnsureInitialized();
        var expectations = Fixtures.Expected("minilm-real");
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var loaded = registry.AcquireAsync(ModelRegistry.DefaultId, CancellationToken.None).GetAwaiter().GetResult().Loaded;
        foreach (var key in new[] { "s0", "s1" })
        {
            var ids = Fixtures.Longs(expectations[$"{key}.input_ids"]);
            using var result = thread.RunAsync(_ => loaded.Model.Forward(new ForwardInput([ids])), CancellationToken.None).GetAwaiter().GetResult();
            var attentions = stack(result.Attentions.Select(a => a[0]).ToArray());
            Fixtures.AssertClose(expectations[$"{key}.attentions"], attentions, AttentionTolerance, $"MiniLM {key} attentions");
            Fixtures.AssertClose(expectations[$"{key}.last_hidden_state"], result.LastHiddenState[0], HiddenTolerance,
                $"MiniLM {key} last_hidden_state");
        }
    }

    [TestMethod]
    public void UnknownArchitectureNamesTheSupportedOnes()
    {
        var folder = Directory.CreateTempSubdirectory("avz-arch").FullName;
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "mamba", "hidden_size": 8}""");
        var error = Assert.ThrowsExactly<ModelLoadException>(() => ModelFolder.Load(folder, null));
        StringAssert.Contains(error.Message, "mamba");
        StringAssert.Contains(error.Message, "bert");
    }
}
