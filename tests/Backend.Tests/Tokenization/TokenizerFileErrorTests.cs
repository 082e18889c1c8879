using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Support;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>
/// A bad tokenizer file is a <see cref="ModelFormatException"/> (-32002 over RPC, a one-line error in the CLI) whose
/// message names the file and what is wrong in it; never a library exception reaching the user as "Internal error".
/// </summary>
[TestClass]
public sealed class TokenizerFileErrorTests
{
    private const string TinyBpeModel = """
        "model": { "type": "BPE", "vocab": { "a": 0, "b": 1, "ab": 2, "<unk>": 3 }, "merges": ["a b"],
                   "unk_token": "<unk>" }
        """;

    private const string PrecompiledNormalizer =
        """{ "type": "Precompiled", "precompiled_charsmap": "ALQCAACEAAAA" }""";

    private static readonly string[] BertVocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello"];

    public static IEnumerable<object[]> BadFolders =>
    [
        // the bad file (the message must start with its path), its content, a word saying what is wrong
        ["tokenizer.json", """{ "model": { "type": "WordLevel", "vocab": {} } }""", "WordLevel"],
        ["tokenizer.json", $$"""{ "normalizer": {{PrecompiledNormalizer}}, {{TinyBpeModel}} }""", "Precompiled"],
        ["tokenizer.json", """{ "model": { "type": "BPE", "vocab": { "a": 0 }, "merges": ["a b"] } }""", "a b"],
        ["tokenizer.json", """{ "model": """, "malformed"],
        ["tokenizer.json", """{ "normalizer": null }""", "model"],
        ["tokenizer.json", """{ "model": { "type": "BPE", "vocab": { "a": "zero" }, "merges": [] } }""", "malformed"],
        ["tokenizer_config.json", "{ not json", "malformed"],
        ["vocab.txt", "[CLS]\n[SEP]\nhello\n", "[UNK]"],
        ["merges.txt", "#version: 0.2\nnospace\n", "nospace"],
        ["vocab.json", "[1, 2", "malformed"],
        // unsupported features are files this backend cannot use: -32002 as well (docs/protocol.md, "Errors")
        ["tokenizer.json", """{ "model": { "type": "BPE", "vocab": { "a": 0 }, "merges": [], "dropout": 0.1 } }""", "dropout"],
        ["tokenizer.json", """{ "model": { "type": "Unigram", "vocab": [["a", 0.0]] } }""", "unk_id"],
        // the JSON reader's complaints and a bad regex
        ["tokenizer.json", """{ "model": { "type": "BPE", "vocab": { "a": 0 }, "merges": [["a"]] } }""", "malformed"],
        ["tokenizer.json", $$"""{ "pre_tokenizer": { "type": "Split", "pattern": { "Regex": "(" }, "behavior": "Isolated" }, {{TinyBpeModel}} }""",
            "malformed"],
    ];

    [TestMethod]
    [DynamicData(nameof(BadFolders))]
    public void BadTokenizerFileNamesTheFile(string file, string content, string what)
    {
        var dir = Directory.CreateTempSubdirectory("av-badtok-").FullName;
        try
        {
            WriteCompanions(dir, file);
            File.WriteAllText(Path.Combine(dir, file), content);
            var e = Assert.ThrowsExactly<ModelFormatException>(() => TokenizerLoader.TryLoad(dir));
            StringAssert.StartsWith(e.Message, Path.Combine(dir, file), e.Message);
            StringAssert.Contains(e.Message, what);
            Assert.AreEqual(Path.Combine(dir, file), e.FilePath);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>The files a loader reads before the bad one (a good tokenizer.json, the GPT-2 pair's twin).</summary>
    private static void WriteCompanions(string dir, string file)
    {
        switch (file)
        {
            case "tokenizer_config.json":
                File.WriteAllText(Path.Combine(dir, "tokenizer.json"), $$"""{ {{TinyBpeModel}} }""");
                break;
            case "merges.txt":
                File.WriteAllText(Path.Combine(dir, "vocab.json"), """{ "h": 0, "i": 1, "hi": 2 }""");
                break;
            case "vocab.json":
                File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\nh i\n");
                break;
        }
    }

    [TestMethod]
    public void OurOwnBugsAreNotCalledABadFile()
    {
        // Before, any InvalidOperation, IndexOutOfRange or Argument exception became "malformed tokenizer file".
        static int Read(Exception bug) => TokenizerFile.Read<int>("/t/tokenizer.json", () => throw bug);
        Assert.ThrowsExactly<InvalidOperationException>(() => Read(new InvalidOperationException("bug")));
        Assert.ThrowsExactly<IndexOutOfRangeException>(() => Read(new IndexOutOfRangeException()));
        Assert.ThrowsExactly<ArgumentException>(() => Read(new ArgumentException("bug")));
    }

    [TestMethod]
    public void AGoodVocabTxtStillLoads() =>
        Assert.IsInstanceOfType<BertTokenizer>(LoadFrom("vocab.txt", string.Join("\n", BertVocab)));

    private static IModelTokenizer? LoadFrom(string file, string content)
    {
        var dir = Directory.CreateTempSubdirectory("av-goodtok-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, file), content);
            return TokenizerLoader.TryLoad(dir);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [TestMethod]
    public async Task OverRpcABadTokenizerIsModelFileInvalidNamingTheFile()
    {
        var dir = CopyWithTokenizer("""{ "model": { "type": "WordLevel", "vocab": {} } }""");
        try
        {
            using var backend = new InMemoryBackend();
            var error = await Assert.ThrowsAsync<StreamJsonRpc.RemoteInvocationException>(
                () => backend.Call("attention/analyze", new { text = "hello", modelId = dir }));
            Assert.AreEqual(-32002, error.ErrorCode, "ModelFileInvalid (docs/protocol.md)");
            StringAssert.Contains(error.Message, Path.Combine(dir, "tokenizer.json"));
            StringAssert.Contains(error.Message, "WordLevel");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [TestMethod]
    public void TheCliPrintsOneLineNamingTheFile()
    {
        var dir = CopyWithTokenizer("""{ "model": """);
        try
        {
            var (code, stdout, stderr) = BackendCli.Run("tokenize", "--model", dir, "--text", "hello");
            Assert.AreEqual(1, code, stderr);
            Assert.AreEqual("", stdout);
            var line = stderr.Trim();
            var expected = $"error: {Path.Combine(dir, "tokenizer.json")}: malformed tokenizer file";
            StringAssert.StartsWith(line, expected, stderr);
            Assert.DoesNotContain("\n", line, stderr);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>The tiny GPT-2 fixture's config and weights beside the given tokenizer.json.</summary>
    private static string CopyWithTokenizer(string tokenizerJson)
    {
        var dir = Directory.CreateTempSubdirectory("av-badtok-model-").FullName;
        foreach (var file in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(Fixtures.Folder("gpt2-tiny"), file), Path.Combine(dir, file));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizerJson);
        return dir;
    }
}
