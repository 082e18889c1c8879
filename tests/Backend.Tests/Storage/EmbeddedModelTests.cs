using System.Diagnostics;
using System.Text.Json;
using AttentionViz.Backend.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Storage;

[TestClass]
public sealed class EmbeddedModelTests
{
    private const string Fixture = "/work/shared/fixtures/minilm-real";
    private static string _root = "";
    private static string _model = "";
    private static readonly List<string> Log = [];

    public TestContext TestContext { get; set; } = null!;

    private static EmbeddedModel.Options OptionsFor(string cacheRoot) => new()
    {
        CacheRoot = cacheRoot,
        Log = m => { lock (Log) Log.Add(m); },
    };

    [ClassInitialize]
    public static void Init(TestContext context)
    {
        _root = Path.Combine(Path.GetTempPath(), "av-embedded-tests-" + Guid.NewGuid().ToString("N"));
        var clock = Stopwatch.StartNew();
        var (path, converted) = EmbeddedModel.EnsureConverted(OptionsFor(Path.Combine(_root, "shared")));
        context.WriteLine($"conversion took {clock.ElapsedMilliseconds} ms");
        Assert.IsTrue(converted);
        _model = path;
    }

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(_root, recursive: true);

    private static BertGraphConfig MiniLm => new(30522, 384, 6, 12, 1536, 512, 2, 1e-12, 0, HasPooler: true);

    [TestMethod]
    public void Folder_IsNamedAfterTheOnnxHashInTheCache()
    {
        Assert.AreEqual(Path.Combine(_root, "shared", "models", "all-MiniLM-L6-v2-4a64cee3d413-v2"), _model);
        CollectionAssert.AreEquivalent(
            new[] { ".complete.json", "config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt" },
            Directory.GetFiles(_model).Select(Path.GetFileName).ToArray());
        // Nothing else left in models/ but the folder and the lock file.
        CollectionAssert.AreEquivalent(new[] { "all-MiniLM-L6-v2-4a64cee3d413-v2", ".all-MiniLM-L6-v2-4a64cee3d413-v2.lock" },
            Directory.GetFileSystemEntries(Path.GetDirectoryName(_model)!).Select(Path.GetFileName).ToArray());
    }

    [TestMethod]
    public void Safetensors_HasExactlyTheHfBertModelNamesAndShapes()
    {
        using var file = SafetensorsFile.Open(Path.Combine(_model, "model.safetensors"));
        var expected = OnnxBertConverter.ExpectedTensors(MiniLm);
        Assert.AreEqual(103, expected.Count);
        CollectionAssert.AreEqual(expected.Select(e => e.Name).ToArray(), file.Tensors.Select(t => t.Name).ToArray());
        foreach (var (name, shape) in expected)
        {
            CollectionAssert.AreEqual(shape, file.GetInfo(name).Shape, name);
            Assert.AreEqual("F32", file.GetInfo(name).Dtype, name);
        }
        CollectionAssert.AreEqual(new long[] { 1536, 384 }, file.GetInfo("encoder.layer.5.intermediate.dense.weight").Shape);
        CollectionAssert.AreEqual(new long[] { 384, 1536 }, file.GetInfo("encoder.layer.5.output.dense.weight").Shape);
        Assert.AreEqual("pt", file.Metadata["format"]);
        Assert.AreEqual(EmbeddedModel.OnnxSha256, file.Metadata["source_sha256"]);
    }

    [TestMethod]
    public void ConfigJson_EqualsTheFixtureConfig()
    {
        using var ours = JsonDocument.Parse(File.ReadAllText(Path.Combine(_model, "config.json")));
        using var theirs = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "config.json")));
        var a = ours.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        var b = theirs.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        CollectionAssert.AreEquivalent(b.Keys.ToArray(), a.Keys.ToArray());
        foreach (var (key, value) in b)
        {
            Assert.AreEqual(value.ValueKind, a[key].ValueKind, key);
            if (value.ValueKind == JsonValueKind.Number) Assert.AreEqual(value.GetDouble(), a[key].GetDouble(), key);
            else Assert.AreEqual(value.GetRawText(), a[key].GetRawText(), key);
        }
    }

    [TestMethod]
    public void VocabAndTokenizerConfig()
    {
        var text = File.ReadAllText(Path.Combine(_model, "vocab.txt"));
        Assert.IsFalse(text.Contains('\r'));
        Assert.IsTrue(text.EndsWith('\n'));
        var lines = text[..^1].Split('\n');
        Assert.AreEqual(30522, lines.Length);
        Assert.AreEqual("[PAD]", lines[0]);
        Assert.AreEqual("[UNK]", lines[100]);
        Assert.AreEqual("[CLS]", lines[101]);
        Assert.AreEqual("[SEP]", lines[102]);
        Assert.AreEqual("[MASK]", lines[103]);
        // The fixture's tokens sit at the fixture's ids.
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "expected.json")));
        foreach (var s in expected.RootElement.GetProperty("sentences").EnumerateArray())
        {
            var tokens = s.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToArray();
            var ids = s.GetProperty("input_ids").EnumerateArray().Select(t => t.GetInt32()).ToArray();
            CollectionAssert.AreEqual(tokens, ids.Select(i => lines[i]).ToArray());
        }
        using var tokenizer = JsonDocument.Parse(File.ReadAllText(Path.Combine(_model, "tokenizer_config.json")));
        Assert.IsTrue(tokenizer.RootElement.GetProperty("do_lower_case").GetBoolean());
        Assert.AreEqual(512, tokenizer.RootElement.GetProperty("model_max_length").GetInt32());
    }

    /// <summary>
    /// Layer 0's attention computed from the converted weights (embeddings → LayerNorm → Q, K → softmax(QKᵀ/√32))
    /// against ONNX Runtime's Softmax outputs on the original graph. Proves the Q/K mapping and transposition, the
    /// embeddings and the LayerNorm parameters.
    /// </summary>
    [TestMethod]
    [DataRow("s0")]
    [DataRow("s1")]
    public void Layer0Attention_MatchesOnnxRuntime(string sentence)
    {
        using var scope = NewDisposeScope();
        using var model = SafetensorsFile.Open(Path.Combine(_model, "model.safetensors"));
        using var expected = SafetensorsFile.Open(Path.Combine(Fixture, "expected.safetensors"));
        var ids = expected.Read($"{sentence}.input_ids");
        var reference = expected.ReadFloat32($"{sentence}.attentions")[0]; // [heads, S, S]
        var n = ids.shape[0];

        Tensor Attention(bool transposeWeights)
        {
            Tensor W(string name) => transposeWeights ? model.ReadFloat32(name).t() : model.ReadFloat32(name);
            var x = model.ReadFloat32("embeddings.word_embeddings.weight").index_select(0, ids)
                + model.ReadFloat32("embeddings.position_embeddings.weight")[..(int)n]
                + model.ReadFloat32("embeddings.token_type_embeddings.weight")[0];
            x = nn.functional.layer_norm(x, [384], model.ReadFloat32("embeddings.LayerNorm.weight"),
                model.ReadFloat32("embeddings.LayerNorm.bias"), 1e-12);
            Tensor Heads(string which) =>
                nn.functional.linear(x, W($"encoder.layer.0.attention.self.{which}.weight"),
                    model.ReadFloat32($"encoder.layer.0.attention.self.{which}.bias"))
                .view(n, 12, 32).transpose(0, 1);
            var scores = Heads("query").matmul(Heads("key").transpose(1, 2)) / Math.Sqrt(32);
            return scores.softmax(-1);
        }

        var ours = Attention(transposeWeights: false);
        CollectionAssert.AreEqual(reference.shape, ours.shape);
        var error = (ours - reference).abs().max().item<float>();
        TestContext.WriteLine($"{sentence}: max |ours − ONNX Runtime| = {error:E2}");
        Assert.IsTrue(error < 1e-4f, $"max error {error}");

        // Negative control: with the weights left in ONNX's [in, out] layout the numbers are far off.
        var wrong = (Attention(transposeWeights: true) - reference).abs().max().item<float>();
        Assert.IsTrue(wrong > 1e-2f, $"negative control only {wrong} off");
    }

    [TestMethod]
    public void SecondCall_ReusesTheCacheWithoutReadingTheOnnx()
    {
        var before = File.GetLastWriteTimeUtc(Path.Combine(_model, "model.safetensors"));
        var options = OptionsFor(Path.Combine(_root, "shared")) with
        {
            ReadOnnx = () => throw new AssertFailedException("the ONNX must not be read again"),
        };
        var (path, converted) = EmbeddedModel.EnsureConverted(options);
        Assert.AreEqual(_model, path);
        Assert.IsFalse(converted);
        Assert.AreEqual(before, File.GetLastWriteTimeUtc(Path.Combine(_model, "model.safetensors")));
    }

    [TestMethod]
    public void HalfWrittenFolderWithoutMarker_IsRebuilt()
    {
        var root = Path.Combine(_root, "half");
        var folder = Path.Combine(root, "models", EmbeddedModel.FolderName);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), "{");
        File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), new byte[100]);
        // A crashed conversion's temporary folder is cleaned up too.
        var leftover = Path.Combine(root, "models", $".{EmbeddedModel.FolderName}.tmp-1-dead");
        Directory.CreateDirectory(leftover);

        var (path, converted) = EmbeddedModel.EnsureConverted(OptionsFor(root));
        Assert.AreEqual(folder, path);
        Assert.IsTrue(converted);
        Assert.IsTrue(EmbeddedModel.IsComplete(folder, EmbeddedModel.OnnxSha256));
        Assert.IsFalse(Directory.Exists(leftover));
        Assert.AreEqual(new FileInfo(Path.Combine(_model, "model.safetensors")).Length,
            new FileInfo(Path.Combine(folder, "model.safetensors")).Length);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        Assert.AreEqual(384, config.RootElement.GetProperty("hidden_size").GetInt32());
    }

    /// <summary>A cache root named <paramref name="name"/> holding a copy of the converted model's folder.</summary>
    private (string Root, string Folder) CopyOfConvertedModel(string name)
    {
        var root = Path.Combine(_root, name);
        var folder = Path.Combine(root, "models", EmbeddedModel.FolderName);
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(_model)) File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        return (root, folder);
    }

    [TestMethod]
    public void FolderWithMarkerButChangedBytes_IsRebuilt()
    {
        // Same size, 2,000 bytes changed in the middle of the weights: a size check alone would use them.
        var (root, folder) = CopyOfConvertedModel("changed");
        var weights = Path.Combine(folder, "model.safetensors");
        var original = File.ReadAllBytes(weights);
        Assert.IsTrue(EmbeddedModel.IsComplete(folder, EmbeddedModel.OnnxSha256));
        using (var s = new FileStream(weights, FileMode.Open))
        {
            s.Position = s.Length / 2;
            s.Write(Enumerable.Repeat((byte)0x7f, 2000).ToArray());
        }
        Assert.AreEqual(original.Length, new FileInfo(weights).Length);
        Assert.IsFalse(EmbeddedModel.IsComplete(folder, EmbeddedModel.OnnxSha256));

        var (_, converted) = EmbeddedModel.EnsureConverted(OptionsFor(root));
        Assert.IsTrue(converted);
        Assert.IsTrue(EmbeddedModel.IsComplete(folder, EmbeddedModel.OnnxSha256));
        CollectionAssert.AreEqual(original, File.ReadAllBytes(weights));
        lock (Log) Assert.IsTrue(Log.Any(m => m.Contains("modified") && m.Contains(folder)), string.Join("\n", Log));
    }

    [TestMethod]
    public void Marker_RecordsEachFilesSha256()
    {
        using var marker = JsonDocument.Parse(File.ReadAllText(Path.Combine(_model, EmbeddedModel.MarkerFileName)));
        var hashes = marker.RootElement.GetProperty("sha256");
        foreach (var file in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" })
        {
            var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(_model, file))));
            Assert.AreEqual(expected, hashes.GetProperty(file).GetString(), file);
        }
    }

    [TestMethod]
    public void FolderWithMarkerButTruncatedFile_IsRebuilt()
    {
        var (root, folder) = CopyOfConvertedModel("truncated");
        Assert.IsTrue(EmbeddedModel.IsComplete(folder, EmbeddedModel.OnnxSha256));
        using (var s = new FileStream(Path.Combine(folder, "model.safetensors"), FileMode.Open)) s.SetLength(s.Length / 2);
        Assert.IsFalse(EmbeddedModel.IsComplete(folder, EmbeddedModel.OnnxSha256));

        var (_, converted) = EmbeddedModel.EnsureConverted(OptionsFor(root));
        Assert.IsTrue(converted);
        Assert.IsTrue(EmbeddedModel.IsComplete(folder, EmbeddedModel.OnnxSha256));
    }

    [TestMethod]
    public void ConcurrentCalls_ConvertOnce()
    {
        var root = Path.Combine(_root, "race");
        var results = new (string Path, bool Converted)[3];
        using var start = new Barrier(results.Length);
        var threads = Enumerable.Range(0, results.Length).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            results[i] = EmbeddedModel.EnsureConverted(OptionsFor(root));
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.AreEqual(1, results.Count(r => r.Converted));
        Assert.AreEqual(1, results.Select(r => r.Path).Distinct().Count());
        Assert.IsTrue(EmbeddedModel.IsComplete(results[0].Path, EmbeddedModel.OnnxSha256));
        Assert.AreEqual(2, Directory.GetFileSystemEntries(Path.Combine(root, "models")).Length, "the folder and the lock only");
    }

    [TestMethod]
    public void OnnxWithAnotherHash_IsRefusedAndLeavesNothing()
    {
        var root = Path.Combine(_root, "badhash");
        var options = OptionsFor(root) with { ReadOnnx = () => [1, 2, 3] };
        var e = Assert.ThrowsExactly<ModelFormatException>(() => EmbeddedModel.EnsureConverted(options));
        StringAssert.Contains(e.Message, EmbeddedModel.OnnxSha256);
        StringAssert.Contains(e.Message, "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81"); // SHA-256 of 01 02 03
        Assert.IsFalse(Directory.Exists(Path.Combine(root, "models", EmbeddedModel.FolderName)));
        Assert.AreEqual(1, Directory.GetFileSystemEntries(Path.Combine(root, "models")).Length, "only the lock file");
    }

    [TestMethod]
    public void ALockHeldTooLong_IsAModelLoadException()
    {
        // Before: a TimeoutException, which reached the user as "Internal error".
        var models = Directory.CreateDirectory(Path.Combine(_root, "locked", "models")).FullName;
        var lockPath = Path.Combine(models, $".{EmbeddedModel.FolderName}.lock");
        using var held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var options = OptionsFor(Path.Combine(_root, "locked")) with { LockTimeout = TimeSpan.FromMilliseconds(200) };
        var e = Assert.ThrowsExactly<ModelLoadException>(() => EmbeddedModel.EnsureConverted(options));
        StringAssert.Contains(e.Message, lockPath);
        Assert.AreEqual(AppErrorCode.ModelLoadFailed, ErrorMapping.Describe(e).Code);
    }

    [TestMethod]
    public void AResourceMissingFromThePackage_IsAModelFormatException()
    {
        var e = Assert.ThrowsExactly<ModelFormatException>(() => EmbeddedModelPackage.OpenResource("no.such.resource"));
        Assert.AreEqual(EmbeddedModelPackage.AssemblyPath, e.FilePath);
        StringAssert.Contains(e.Message, "no.such.resource");
    }

    [TestMethod]
    public void NotAnOnnxFile_IsAModelFormatException()
    {
        var e = Assert.ThrowsExactly<ModelFormatException>(() =>
            OnnxBertConverter.Convert([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f], "junk.onnx", ["[PAD]"], Path.Combine(_root, "junk")));
        StringAssert.Contains(e.Message, "junk.onnx");
        e = Assert.ThrowsExactly<ModelFormatException>(() =>
            OnnxBertConverter.Convert([], "empty.onnx", ["[PAD]"], Path.Combine(_root, "junk")));
        StringAssert.Contains(e.Message, "no graph");
    }

    private static readonly Lazy<byte[]> Onnx = new(() => EmbeddedModelPackage.ReadResourceBytes(EmbeddedModelPackage.OnnxResource));

    /// <summary>The real graph with every occurrence of one name replaced by another of the same length.</summary>
    private static byte[] Mutated(string from, string to)
    {
        Assert.AreEqual(from.Length, to.Length);
        var bytes = (byte[])Onnx.Value.Clone();
        var (f, t) = (System.Text.Encoding.UTF8.GetBytes(from), System.Text.Encoding.UTF8.GetBytes(to));
        var count = 0;
        for (var at = bytes.AsSpan().IndexOf(f); at >= 0; count++)
        {
            t.CopyTo(bytes, at);
            var next = bytes.AsSpan(at + f.Length).IndexOf(f);
            at = next < 0 ? -1 : at + f.Length + next;
        }
        Assert.IsTrue(count >= 2, $"'{from}' found {count} times"); // the initializer and the node using it
        return bytes;
    }

    private static ModelFormatException ConvertFails(byte[] onnx)
    {
        var output = Path.Combine(_root, "mutated-" + Guid.NewGuid().ToString("N"));
        var e = Assert.ThrowsExactly<ModelFormatException>(() =>
            OnnxBertConverter.Convert(onnx, "mutated.onnx", EmbeddedModelPackage.ReadVocabulary(), output));
        StringAssert.Contains(e.Message, "mutated.onnx");
        Assert.IsFalse(File.Exists(Path.Combine(output, "model.safetensors")), "nothing is written for a graph that does not map");
        return e;
    }

    [TestMethod]
    public void Graph_WithARenamedBias_NamesWhatIsMissingAndWhatIsLeftOver()
    {
        var e = ConvertFails(Mutated("encoder.layer.3.attention.self.key.bias", "encoder.layer.3.attention.self.kez.bias"));
        StringAssert.Contains(e.Message, "missing 'encoder.layer.3.attention.self.key.weight'");
        StringAssert.Contains(e.Message, "missing 'encoder.layer.3.attention.self.key.bias'");
        StringAssert.Contains(e.Message, "unexpected 'encoder.layer.3.attention.self.kez.weight'");
        StringAssert.Contains(e.Message, "unexpected 'encoder.layer.3.attention.self.kez.bias'");
    }

    [TestMethod]
    public void Graph_WhereTwoMatMulsLeadToTheSameName_IsRefused()
    {
        var e = ConvertFails(Mutated("encoder.layer.4.attention.self.value.bias", "encoder.layer.4.attention.self.query.bias"));
        StringAssert.Contains(e.Message, "encoder.layer.4.attention.self.query");
        StringAssert.Contains(e.Message, "twice");
    }

    [TestMethod]
    public void Graph_WhereAMatMulAddHasNoBiasName_IsRefused()
    {
        var e = ConvertFails(Mutated("encoder.layer.2.output.dense.bias", "encoder.layer.2.output.dense.bia_"));
        StringAssert.Contains(e.Message, "MatMul");
        StringAssert.Contains(e.Message, "'*.bias'");
    }

    [TestMethod]
    public void EnsureConverted_PublicEntryPoint_UsesAttentionVizCache()
    {
        var previous = Environment.GetEnvironmentVariable("ATTENTIONVIZ_CACHE");
        try
        {
            Environment.SetEnvironmentVariable("ATTENTIONVIZ_CACHE", Path.Combine(_root, "shared"));
            Assert.AreEqual(Path.Combine(_root, "shared"), EmbeddedModel.CacheRoot());
            Assert.AreEqual(_model, EmbeddedModel.EnsureConverted());
        }
        finally
        {
            Environment.SetEnvironmentVariable("ATTENTIONVIZ_CACHE", previous);
        }
    }

    [TestMethod]
    public void Conversion_LogsToStderrOnly()
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        using var capturedOut = new StringWriter();
        using var capturedErr = new StringWriter();
        try
        {
            Console.SetOut(capturedOut);
            Console.SetError(capturedErr);
            var (_, converted) = EmbeddedModel.EnsureConverted(new EmbeddedModel.Options { CacheRoot = Path.Combine(_root, "stderr") });
            Assert.IsTrue(converted);
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
        Assert.AreEqual("", capturedOut.ToString());
        StringAssert.Contains(capturedErr.ToString(), "converted all-MiniLM-L6-v2");
    }

    [TestMethod]
    public void CacheRoot_FollowsTheEnvironment()
    {
        Dictionary<string, string?> env = new() { ["ATTENTIONVIZ_CACHE"] = "/x/av", ["XDG_CACHE_HOME"] = "/x/xdg", ["HOME"] = "/x/home" };
        Assert.AreEqual("/x/av", EmbeddedModel.CacheRoot(k => env.GetValueOrDefault(k)));
        env["ATTENTIONVIZ_CACHE"] = "";
        Assert.AreEqual("/x/xdg/attentionviz", EmbeddedModel.CacheRoot(k => env.GetValueOrDefault(k)));
        env.Remove("XDG_CACHE_HOME");
        Assert.AreEqual("/x/home/.cache/attentionviz", EmbeddedModel.CacheRoot(k => env.GetValueOrDefault(k)));
    }
}
