using System.Diagnostics;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Tests.Support;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>
/// Seeded mutations of real tokenizer.json files (their normalizer, pre-tokenizer, model options, post-processor,
/// added tokens; a few vocabulary and merge entries): loading and tokenizing either work, with tokens inside the text,
/// or end in a <see cref="ModelFormatException"/> naming the file, within a time bound.
/// </summary>
[TestClass]
public sealed class TokenizerFuzzTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly string[] Texts =
        ["Hello, world!", "", "  spaces\tand\nlines  ", "naïve café 日本語 😀", "a<s>b</s>", "x" + new string('!', 300)];

    [TestMethod]
    [DataRow("llama2")]
    [DataRow("qwen3")]
    public void MutatedTokenizersLoadOrAreRefusedNamingTheFile(string name)
    {
        var source = HfReference.ModelFolder(name);
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer.json")))!;
        var mutator = new JsonMutator(seed: 20261203);
        var folder = Directory.CreateTempSubdirectory("av-tokfuzz-").FullName;
        var path = Path.Combine(folder, "tokenizer.json");
        var outcomes = new Dictionary<string, int>();
        try
        {
            for (var i = 0; i < 60; i++)
            {
                var mutated = mutator.Mutate(original, 1 + i % 3);
                File.WriteAllText(path, mutated.ToJsonString());
                var clock = Stopwatch.StartNew();
                var outcome = Attempt(folder, path);
                Assert.IsLessThan(15.0, clock.Elapsed.TotalSeconds, $"case {i} took {clock.Elapsed}");
                if (outcome.StartsWith("crash", StringComparison.Ordinal)) Assert.Fail($"{name} case {i}: {outcome}");
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        TestContext.WriteLine($"{name}: {string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}");
        Assert.IsGreaterThan(0, outcomes.GetValueOrDefault("tokenized"), "some mutations still tokenize");
        Assert.IsGreaterThan(0, outcomes.GetValueOrDefault("refused"), "some mutations are refused");
    }

    private static string Attempt(string folder, string path)
    {
        try
        {
            var tokenizer = TokenizerLoader.TryLoad(folder);
            if (tokenizer is null) return "refused";
            foreach (var text in Texts)
                foreach (var token in tokenizer.AddSpecialTokens(tokenizer.Tokenize(text)))
                    if (token.Start < 0 || token.End > text.Length || token.Start > token.End)
                        return $"crash: token {token} lies outside '{text}'";
            return "tokenized";
        }
        catch (ModelFormatException e)
        {
            return e.Message.StartsWith(path, StringComparison.Ordinal) ? "refused" : $"crash: the error does not name the file: {e.Message}";
        }
        catch (AppException)
        {
            return "refused";
        }
        catch (Exception e)
        {
            return $"crash: {e.GetType().Name}: {e.Message}";
        }
    }
}
