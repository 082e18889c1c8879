using System.Diagnostics;
using System.Text.Json;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Cli;

/// <summary>The real executable's command line: outputs against the fixtures, and bad input as clear errors.</summary>
[TestClass]
public sealed class CliTests
{
    private static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) => BackendCli.Run(args);

    private static string Temp(string name) => Path.Combine(Directory.CreateTempSubdirectory("avz-cli").FullName, name);

    [TestMethod]
    public void AnalyzeTextToSafetensorsMatchesOnnxRuntime()
    {
        var fixture = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Folder("minilm-real"), "expected.json"))).RootElement;
        var sentence = fixture.GetProperty("sentences")[0];
        var expected = Fixtures.Expected("minilm-real");
        var output = Temp("fox.safetensors");
        var (code, _, stderr) = Run("analyze", "--text", sentence.GetProperty("text").GetString()!, "--out", output);
        Assert.AreEqual(0, code, stderr);

        using var file = SafetensorsFile.Open(output);
        CollectionAssert.AreEqual(Fixtures.Longs(expected["s0.input_ids"]), Fixtures.Longs(file.Read("input_ids")));
        Fixtures.AssertClose(expected["s0.attentions"], file.Read("attentions"), 1e-4, "attentions");
        Fixtures.AssertClose(expected["s0.last_hidden_state"], file.Read("last_hidden_state"), 1e-3, "last_hidden_state");
        var special = Fixtures.Longs(file.Read("special_tokens_mask"));
        CollectionAssert.AreEqual(new long[] { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, special);
        var offsets = Fixtures.Longs(file.Read("offsets"));
        CollectionAssert.AreEqual(new long[] { 4, 9 }, offsets[4..6], "offsets of 'quick'");
        var tokens = JsonSerializer.Deserialize<string[]>(file.Metadata["tokens"])!;
        CollectionAssert.AreEqual(sentence.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToArray(), tokens);
        Assert.AreEqual("default", file.Metadata["model"]);
        Assert.AreEqual("bert", file.Metadata["architecture"]);
    }

    [TestMethod]
    public void AnalyzeIdsToJsonHasZeroOffsetsAndSpecialMask()
    {
        var output = Temp("ids.json");
        var (code, _, stderr) = Run("analyze", "--ids", "101,7592,2088,102", "--out", output);
        Assert.AreEqual(0, code, stderr);
        var json = JsonDocument.Parse(File.ReadAllText(output)).RootElement;
        CollectionAssert.AreEqual(new[] { 101, 7592, 2088, 102 }, json.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.IsTrue(json.GetProperty("offsets").EnumerateArray().All(o => o[0].GetInt32() == 0 && o[1].GetInt32() == 0));
        CollectionAssert.AreEqual(new[] { 1, 0, 0, 1 }, json.GetProperty("special_tokens_mask").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        var attentions = json.GetProperty("attentions");
        Assert.AreEqual(6, attentions.GetArrayLength());
        Assert.AreEqual(12, attentions[0].GetArrayLength());
        var row = attentions[5][11][2].EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.AreEqual(1.0, row.Sum(), 1e-5, "a softmax row sums to 1");
        var meta = json.GetProperty("__metadata__");
        CollectionAssert.AreEqual(new[] { "[CLS]", "hello", "world", "[SEP]" },
            JsonSerializer.Deserialize<string[]>(meta.GetProperty("tokens").GetString()!));
        Assert.AreEqual(384, json.GetProperty("last_hidden_state")[0].GetArrayLength());
    }

    [TestMethod]
    public void AnalyzeIdsOnAFolderWithoutTokenizerMatchesTorchNn()
    {
        var expected = Fixtures.Expected("bert-tiny");
        var ids = string.Join(",", Fixtures.Longs(expected["s0.input_ids"]));
        var output = Temp("tiny.safetensors");
        var (code, _, stderr) = Run("analyze", "--model", Fixtures.Folder("bert-tiny"), "--ids", ids, "--out", output);
        Assert.AreEqual(0, code, stderr);
        using var file = SafetensorsFile.Open(output);
        Fixtures.AssertClose(expected["s0.attentions"], file.Read("attentions"), 1e-4, "bert-tiny attentions");
        var tokens = JsonSerializer.Deserialize<string[]>(file.Metadata["tokens"])!;
        Assert.AreEqual(ids, string.Join(",", tokens), "without a tokenizer, tokens are the ids as strings");
        Assert.IsTrue(Fixtures.Longs(file.Read("special_tokens_mask")).All(v => v == 0));
    }

    [TestMethod]
    public void SentencePairIdsWithTokenTypesMatchTorchNn()
    {
        var expected = Fixtures.Expected("bert-tiny");
        var ids = string.Join(",", Fixtures.Longs(expected["s1.input_ids"]));
        var types = string.Join(",", Fixtures.Longs(expected["s1.token_type_ids"]));
        Assert.Contains("1", types, "fixture s1 is a sentence pair");
        var output = Temp("pair.safetensors");
        var (code, _, stderr) = Run("analyze", "--model", Fixtures.Folder("bert-tiny"), "--ids", ids, "--token-type-ids", types, "--out", output);
        Assert.AreEqual(0, code, stderr);
        using var file = SafetensorsFile.Open(output);
        Fixtures.AssertClose(expected["s1.attentions"], file.Read("attentions"), 1e-4, "bert-tiny pair attentions");
        Fixtures.AssertClose(expected["s1.last_hidden_state"], file.Read("last_hidden_state"), 1e-3, "bert-tiny pair hidden states");
    }

    [TestMethod]
    public void PickleCheckpointsLoadOnlyWithAllowPickle()
    {
        var folder = Directory.CreateTempSubdirectory("avz-pickle").FullName;
        File.Copy(Path.Combine(Fixtures.Folder("gpt2-tiny"), "config.json"), Path.Combine(folder, "config.json"));
        File.Copy(Path.Combine(Fixtures.RepoRoot, "tests", "Backend.Tests", "Models", "TestData", "pytorch_model.bin"),
            Path.Combine(folder, "pytorch_model.bin"));
        var expected = Fixtures.Expected("gpt2-tiny");
        var ids = string.Join(",", Fixtures.Longs(expected["s0.input_ids"]));

        var (refused, _, refusedErr) = Run("analyze", "--model", folder, "--ids", ids);
        Assert.AreEqual(1, refused, refusedErr);
        StringAssert.Contains(refusedErr, "--allow-pickle");

        var output = Temp("pickle.safetensors");
        var (code, _, stderr) = Run("analyze", "--model", folder, "--ids", ids, "--out", output, "--allow-pickle");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stderr, "warning");
        using var file = SafetensorsFile.Open(output);
        Fixtures.AssertClose(expected["s0.attentions"], file.Read("attentions"), 1e-4, "gpt2-tiny from pickle");
    }

    [TestMethod]
    public void SummaryShowsTokensEntropyAndPairs()
    {
        var (code, stdout, stderr) = Run("analyze", "--text", "Attention is all you need.");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "6 layers × 12 heads");
        StringAssert.Contains(stdout, "attention");
        StringAssert.Contains(stdout, "mean entropy");
        StringAssert.Contains(stdout, "→");
    }

    [TestMethod]
    public void TokenizePrintsIdsTokensAndUtf16Offsets()
    {
        var (code, stdout, stderr) = Run("tokenize", "--text", "naïve 😀 x");
        Assert.AreEqual(0, code, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        var tokens = json.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToArray();
        CollectionAssert.AreEqual(new[] { "[CLS]", "naive", "[UNK]", "x", "[SEP]" }, tokens);
        var offsets = json.GetProperty("offsets").EnumerateArray().Select(o => (o[0].GetInt32(), o[1].GetInt32())).ToArray();
        Assert.AreEqual((6, 8), offsets[2], "the emoji is one surrogate pair: 2 UTF-16 units");
        Assert.AreEqual((9, 10), offsets[3]);
    }

    [TestMethod]
    public void TokenizeJsonlPrintsOneObjectPerLineInOrder()
    {
        var input = Temp("prompts.jsonl");
        File.WriteAllLines(input, [JsonSerializer.Serialize("Hello world"), JsonSerializer.Serialize("a\tb\nc"), JsonSerializer.Serialize("")]);
        var (code, stdout, stderr) = Run("tokenize", "--jsonl", input);
        Assert.AreEqual(0, code, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.HasCount(3, lines);
        var first = JsonDocument.Parse(lines[0]).RootElement;
        CollectionAssert.AreEqual(new[] { 101, 7592, 2088, 102 }, first.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        var second = JsonDocument.Parse(lines[1]).RootElement;
        CollectionAssert.AreEqual(new[] { "[CLS]", "a", "b", "c", "[SEP]" },
            second.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()).ToArray());
        Assert.AreEqual(2, JsonDocument.Parse(lines[2]).RootElement.GetProperty("ids").GetArrayLength(), "empty text: only the special tokens");

        var (plainCode, plain, _) = Run("tokenize", "--text", "Hello world", "--no-special-tokens");
        Assert.AreEqual(0, plainCode);
        CollectionAssert.AreEqual(new[] { 7592, 2088 },
            JsonDocument.Parse(plain).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());

        File.WriteAllLines(input, ["not json"]);
        var (badCode, _, badErr) = Run("tokenize", "--jsonl", input);
        Assert.AreEqual(2, badCode);
        StringAssert.Contains(badErr, "line 1");
    }

    [TestMethod]
    [DataRow(2, "--text", "", DisplayName = "empty text")]
    [DataRow(2, "--ids", "1,abc", DisplayName = "non-numeric id")]
    [DataRow(2, "--ids", "999999", DisplayName = "id outside the vocabulary")]
    [DataRow(2, "--text-file", "/nonexistent/prompt.txt", DisplayName = "missing text file")]
    [DataRow(1, "--model", "/nonexistent/model", "--text", "hi", DisplayName = "missing model folder")]
    [DataRow(2, "--text", "hi", "--out", "/tmp/x.txt", DisplayName = "unknown output format")]
    public void BadInputIsAOneLineErrorWithAnExitCode(int expectedCode, params string[] args)
    {
        var (code, stdout, stderr) = Run(["analyze", .. args]);
        Assert.AreEqual(expectedCode, code, $"stdout: {stdout}\nstderr: {stderr}");
        StringAssert.StartsWith(stderr.Trim().Split('\n')[^1], "error: ");
        Assert.DoesNotContain("   at ", stderr, "no stack trace for expected errors");
    }

    [TestMethod]
    public void CorruptedWeightsAreAClearErrorNotACrash()
    {
        var folder = Directory.CreateTempSubdirectory("avz-corrupt").FullName;
        File.Copy(Path.Combine(Fixtures.Folder("bert-tiny"), "config.json"), Path.Combine(folder, "config.json"));
        var weights = File.ReadAllBytes(Path.Combine(Fixtures.Folder("bert-tiny"), "model.safetensors"));
        File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), weights[..(weights.Length / 2)]);
        var (code, _, stderr) = Run("analyze", "--model", folder, "--ids", "1,2,3");
        Assert.AreEqual(1, code, stderr);
        StringAssert.Contains(stderr, "model.safetensors");
        Assert.DoesNotContain("   at ", stderr);
    }

    [TestMethod]
    [DataRow("""{"model":{"type":"Nonsense"}}""", "Nonsense", DisplayName = "unsupported tokenizer model (NotSupportedException)")]
    [DataRow("""{"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a c"]}}""", "a c",
        DisplayName = "merge outside the vocabulary (InvalidDataException)")]
    public void LibraryExceptionsFromModelFilesAreOneLineErrors(string tokenizerJson, string named)
    {
        // Before the shared mapping these escaped the CLI's guard: "Unhandled exception" and a stack trace.
        var folder = Directory.CreateTempSubdirectory("avz-bad-tokenizer").FullName;
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizerJson);
        var (code, _, stderr) = Run("tokenize", "--model", folder, "--text", "abc");
        Assert.AreEqual(1, code, stderr);
        StringAssert.StartsWith(stderr.Trim().Split('\n')[^1], "error: ");
        StringAssert.Contains(stderr, named);
        Assert.DoesNotContain("   at ", stderr, "no stack trace");
        Assert.DoesNotContain("Unhandled exception", stderr);
    }
}
