using System.Diagnostics;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tests.Support;
using static AttentionViz.Backend.Tests.Models.ModelTestSupport;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>
/// Seeded mutations of each fixture's config.json beside its real weights: describing, loading and running three
/// tokens either works or ends in the product's own error (an <see cref="AppException"/>), within a time bound.
/// </summary>
[TestClass]
public sealed class ConfigFuzzTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow("llama-tiny")]
    [DataRow("gpt2-tiny")]
    [DataRow("bert-tiny")]
    [DataRow("qwen3-tiny")]
    [DataRow("gemma2-tiny")]
    [DataRow("gemma3-tiny")]
    [DataRow("phi3-tiny")]
    public void MutatedConfigsLoadOrAreRefusedInTheProductsWords(string fixture)
    {
        TorchSetup.EnsureInitialized();
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Folder(fixture), "config.json")))!;
        var mutator = new JsonMutator(seed: 20261203);
        var folder = TempFolder("configfuzz-" + fixture);
        File.Copy(Path.Combine(Fixtures.Folder(fixture), "model.safetensors"), Path.Combine(folder, "model.safetensors"));
        var outcomes = new Dictionary<string, int>();
        var slowest = TimeSpan.Zero;
        for (var i = 0; i < 400; i++)
        {
            var config = mutator.Mutate(original, 1 + i % 3);
            File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
            var clock = Stopwatch.StartNew();
            var outcome = Attempt(folder);
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            Assert.IsLessThan(10.0, clock.Elapsed.TotalSeconds, $"case {i} took {clock.Elapsed}: {config.ToJsonString()}");
            if (outcome.StartsWith("crash", StringComparison.Ordinal))
                Assert.Fail($"case {i} ({fixture}): {outcome}\nconfig: {config.ToJsonString()}");
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        var counts = string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"));
        TestContext.WriteLine($"{fixture}: {counts}; slowest {slowest.TotalMilliseconds:F0} ms");
        Assert.IsGreaterThan(0, outcomes.GetValueOrDefault("ran"), "some mutations (an unknown key, a harmless value) still run");
        Assert.IsGreaterThan(0, outcomes.GetValueOrDefault("refused"), "some mutations are refused");
    }

    private static string Attempt(string folder)
    {
        try
        {
            ModelFolder.Describe(folder);
        }
        catch (AppException)
        {
            // Describe may refuse what Load refuses too; Load must still not crash.
        }
        catch (Exception e)
        {
            return $"crash in Describe: {e.GetType().Name}: {e.Message}";
        }
        try
        {
            using var loaded = ModelFolder.Load(folder, null);
            // As the service does: ids inside the vocabulary, no more than the window holds (it refuses the rest itself).
            var ids = new long[] { 1, 2, 3 }.Where(id => id < loaded.Model.VocabularySize).Take(loaded.Model.MaxPositions).ToArray();
            if (ids.Length == 0) return "refused";
            using var result = loaded.Model.Forward(new ForwardInput([ids]));
            return "ran";
        }
        catch (AppException)
        {
            return "refused";
        }
        catch (Exception e)
        {
            return $"crash in Load/Forward: {e.GetType().Name}: {e.Message}";
        }
    }
}
