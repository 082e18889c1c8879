using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Support;
using static AttentionViz.Backend.Tests.Models.ModelTestSupport;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>Sharded safetensors, F16/BF16 weights, and the opt-in, restricted PyTorch pickle loader.</summary>
[TestClass]
public sealed class CheckpointFormatTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Init() => TorchSetup.EnsureInitialized();

    private static string ShardedLlama(string tag, Func<string, string>? shardNameInIndex = null)
    {
        var folder = TempFolder(tag);
        File.Copy(Path.Combine(Fixtures.Folder("llama-tiny"), "config.json"), Path.Combine(folder, "config.json"));
        var weights = Weights("llama-tiny").OrderBy(w => w.Key, StringComparer.Ordinal).ToList();
        var half = weights.Count / 2;
        var shards = new[] { weights.Take(half).ToList(), weights.Skip(half).ToList() };
        var map = new JsonObject();
        for (var i = 0; i < 2; i++)
        {
            var file = $"model-0000{i + 1}-of-00002.safetensors";
            SafetensorsWriter.Write(Path.Combine(folder, file), shards[i].Select(w => (w.Key, w.Value)));
            foreach (var (name, _) in shards[i]) map[name] = shardNameInIndex?.Invoke(file) ?? file;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 0 }, ["weight_map"] = map };
        File.WriteAllText(Path.Combine(folder, ShardedWeightSource.SafetensorsIndexFileName), index.ToJsonString());
        return folder;
    }

    [TestMethod]
    public void ShardedCheckpointLoadsLikeTheSingleFile()
    {
        var folder = ShardedLlama("sharded");
        Assert.IsFalse(File.Exists(Path.Combine(folder, "model.safetensors")));
        var expected = Fixtures.Expected("llama-tiny");
        using var loaded = ModelFolder.Load(folder, null);
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected["s0.input_ids"])], WantLogits: true));
        Fixtures.AssertClose(expected["s0.attentions"], Attentions(result), 1e-4, "sharded llama s0");
        Fixtures.AssertClose(expected["s0.logits"], result.Logits![0], 1e-3, "sharded llama s0 logits");
        var description = ModelFolder.Describe(folder);
        Assert.AreEqual("sharded safetensors", description.WeightFormat);
        Assert.AreEqual(ModelFolder.Describe(Fixtures.Folder("llama-tiny")).ParameterCount, description.ParameterCount);
    }

    [TestMethod]
    [DataRow("../model.safetensors")]
    [DataRow("../../etc/passwd")]
    [DataRow("/etc/passwd")]
    [DataRow("sub/model-00001-of-00002.safetensors")]
    [DataRow("..")]
    [DataRow("")]
    public void HostileShardNamesAreRefusedBeforeAnythingIsOpened(string hostile)
    {
        var folder = ShardedLlama("hostile", file => file.EndsWith("00002.safetensors") ? hostile : file);
        var error = Assert.ThrowsExactly<ModelFormatException>(() => ModelFolder.Load(folder, null));
        StringAssert.Contains(error.Message, ShardedWeightSource.SafetensorsIndexFileName);
        Assert.Throws<Exception>(() => ModelFolder.Describe(folder));
    }

    [TestMethod]
    public void IndexThatMisplacesATensorIsAnError()
    {
        var folder = ShardedLlama("misplaced", file => "model-00001-of-00002.safetensors");
        var error = Assert.ThrowsExactly<ModelFormatException>(() => ModelFolder.Load(folder, null));
        StringAssert.Contains(error.Message, "does not hold it");
    }

    [TestMethod]
    [DataRow("F16")]
    [DataRow("BF16")]
    public void HalfPrecisionCheckpointsComputeInFloat32(string dtype)
    {
        // 1) Exactness: F16/BF16 values widen to float32 exactly, so a model loaded from the half-precision file equals,
        //    bit for bit, one loaded from a float32 file holding the same rounded values.
        // 2) Against the float32 fixture the only difference is the rounding of the weights, by at most the format's unit
        //    roundoff u (F16: 2⁻¹¹ ≈ 4.9e-4, BF16: 2⁻⁸ ≈ 3.9e-3). Two layers of this random model (embeddings std 0.5,
        //    matrices 0.2, sharp softmaxes) amplify it about 9× (measured: F16 4.5e-3, BF16 3.4e-2 — the same factor
        //    for both formats, as pure rounding predicts). The bound is 20·u: loose enough to be robust, and still
        //    ~50× below the ~0.99 difference of a wrongly loaded model. Part 1 is the exact check.
        var type = dtype == "F16" ? float16 : bfloat16;
        var rounded = Weights("llama-tiny").ToDictionary(w => w.Key, w => w.Value.to(type));
        var halfFolder = Folder($"llama-{dtype}", "llama-tiny", null, rounded.Select(w => (w.Key, w.Value)));
        var widenedFolder = Folder($"llama-{dtype}-f32", "llama-tiny", null, rounded.Select(w => (w.Key, w.Value.to(float32))));
        var expected = Fixtures.Expected("llama-tiny");
        var ids = Fixtures.Longs(expected["s1.input_ids"]);
        using var half = ModelFolder.Load(halfFolder, null);
        using var widened = ModelFolder.Load(widenedFolder, null);
        using var a = half.Model.Forward(new ForwardInput([ids]));
        using var b = widened.Model.Forward(new ForwardInput([ids]));
        Assert.AreEqual(0f, MaxDiff(Attentions(a), Attentions(b)), "half-precision weights must widen exactly");
        var tolerance = 20 * (dtype == "F16" ? Math.Pow(2, -11) : Math.Pow(2, -8));
        var diff = MaxDiff(Attentions(a), expected["s1.attentions"]);
        TestContext.WriteLine($"{dtype} llama-tiny s1: max |diff| attention vs float32 fixture {diff:E2}");
        Assert.IsLessThanOrEqualTo(tolerance, diff, $"{dtype} attention vs float32 fixture: {diff:E3}");
        Assert.IsGreaterThan(0f, diff, "the rounding must be visible (the file really held half-precision values)");
    }

    private static string PickleFolder(string tag, byte[]? pickleBytes = null)
    {
        var folder = TempFolder(tag);
        File.Copy(Path.Combine(Fixtures.Folder("gpt2-tiny"), "config.json"), Path.Combine(folder, "config.json"));
        var target = Path.Combine(folder, ModelFolder.PickleFileName);
        if (pickleBytes is null)
            File.Copy(Path.Combine(Fixtures.RepoRoot, "tests", "Backend.Tests", "Models", "TestData", "pytorch_model.bin"), target);
        else
        {
            using var zip = ZipFile.Open(target, ZipArchiveMode.Create);
            using (var s = zip.CreateEntry("archive/data.pkl").Open()) s.Write(pickleBytes);
            using (var s = zip.CreateEntry("archive/version").Open()) s.Write("3\n"u8);
        }
        return folder;
    }

    [TestMethod]
    public void PickleIsRefusedWithoutOptIn()
    {
        var folder = PickleFolder("pickle-refused");
        var error = Assert.ThrowsExactly<ModelLoadException>(() => ModelFolder.Load(folder, null));
        StringAssert.Contains(error.Message, "pytorch_model.bin");
        StringAssert.Contains(error.Message, "--allow-pickle");
        Assert.AreEqual("pytorch pickle", ModelFolder.Describe(folder).WeightFormat);
    }

    [TestMethod]
    public void PickleWrittenByTorchSaveLoadsEqualToSafetensors()
    {
        // TestData/pytorch_model.bin was written by torch 1.13's torch.save (make_pickle_checkpoint.py) from gpt2-tiny.
        var folder = PickleFolder("pickle-ok");
        var expected = Fixtures.Expected("gpt2-tiny");
        using (var loaded = ModelFolder.Load(folder, null, new ModelLoadOptions(AllowPickle: true)))
        using (var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected["s1.input_ids"])], WantLogits: true)))
        {
            Fixtures.AssertClose(expected["s1.attentions"], Attentions(result), 1e-4, "gpt2 from pickle, s1");
            Fixtures.AssertClose(expected["s1.logits"], result.Logits![0], 1e-3, "gpt2 from pickle, s1 logits");
        }
        using var pickle = TorchPickleWeightSource.Open(Path.Combine(folder, ModelFolder.PickleFileName));
        var safetensors = Weights("gpt2-tiny");
        foreach (var (name, value) in safetensors)
        {
            using var read = pickle.ReadFloat32(name);
            Assert.AreEqual(0f, MaxDiff(value, read), name);
        }
        var wte = safetensors["transformer.wte.weight"];
        Assert.AreEqual(0f, MaxDiff(wte, pickle.ReadFloat32("lm_head.weight")), "shared storage");
        Assert.AreEqual(0f, MaxDiff(wte.t(), pickle.ReadFloat32("extra.transposed")), "strided view");
        Assert.AreEqual(0f, MaxDiff(safetensors["transformer.ln_f.weight"].to(float16), pickle.ReadFloat32("extra.half")), "float16 storage");
    }

    [TestMethod]
    public void ShardedPickleLoadsOnlyWithOptIn()
    {
        // Two copies of the torch.save file as shards; the index assigns each tensor to one of them.
        var folder = PickleFolder("pickle-sharded");
        var single = Path.Combine(folder, ModelFolder.PickleFileName);
        var names = new[] { "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin" };
        foreach (var name in names) File.Copy(single, Path.Combine(folder, name));
        var map = new JsonObject();
        using (var source = TorchPickleWeightSource.Open(single))
        {
            var i = 0;
            foreach (var tensor in source.Names.Order(StringComparer.Ordinal)) map[tensor] = names[i++ % 2];
        }
        File.Delete(single);
        File.WriteAllText(Path.Combine(folder, ShardedWeightSource.PickleIndexFileName), new JsonObject { ["weight_map"] = map }.ToJsonString());
        Assert.AreEqual("sharded pytorch pickle", ModelFolder.Describe(folder).WeightFormat);
        StringAssert.Contains(Assert.ThrowsExactly<ModelLoadException>(() => ModelFolder.Load(folder, null)).Message, "--allow-pickle");
        var expected = Fixtures.Expected("gpt2-tiny");
        using var loaded = ModelFolder.Load(folder, null, new ModelLoadOptions(AllowPickle: true));
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected["s0.input_ids"])]));
        Fixtures.AssertClose(expected["s0.attentions"], Attentions(result), 1e-4, "gpt2 from sharded pickle");
    }

    // Pickle bytes, protocol 2, built by hand.
    private static byte[] Pickle(params object[] parts)
    {
        var bytes = new List<byte> { 0x80, 2 };
        foreach (var part in parts)
            bytes.AddRange(part switch
            {
                string s => Encoding.UTF8.GetBytes(s),
                byte b => [b],
                byte[] raw => raw,
                _ => throw new ArgumentException(part.GetType().Name),
            });
        return [.. bytes];
    }

    private static byte[] Unicode(string s)
    {
        var utf8 = Encoding.UTF8.GetBytes(s);
        return [(byte)'X', .. BitConverter.GetBytes(utf8.Length), .. utf8];
    }

    public static IEnumerable<object[]> MaliciousPickles()
    {
        var marker = Path.Combine(Path.GetTempPath(), "avz-pwned-marker");
        byte reduce = (byte)'R', stop = (byte)'.', tuple1 = 0x85;
        yield return ["GLOBAL os.system + REDUCE", Pickle("cos\nsystem\n", Unicode($"touch {marker}"), tuple1, reduce, stop), "os.system"];
        yield return ["GLOBAL posix.system + REDUCE", Pickle("cposix\nsystem\n", Unicode($"touch {marker}"), tuple1, reduce, stop), "posix.system"];
        yield return ["GLOBAL builtins.eval + REDUCE", Pickle("cbuiltins\neval\n", Unicode("__import__('os').system('id')"), tuple1, reduce, stop),
            "builtins.eval"];
        yield return ["STACK_GLOBAL builtins.exec", Pickle(Unicode("builtins"), Unicode("exec"), (byte)0x93, Unicode("1"), tuple1, reduce, stop),
            "builtins.exec"];
        yield return ["GLOBAL subprocess.Popen", Pickle("csubprocess\nPopen\n", stop), "subprocess.Popen"];
        yield return ["INST opcode", Pickle("(ios\nsystem\n", stop), "opcode"];
        yield return ["REDUCE of an allowed storage class", Pickle("ctorch\nFloatStorage\n", (byte)')', reduce, stop), "FloatStorage"];
        yield return ["REDUCE of a string", Pickle(Unicode("os.system"), (byte)')', reduce, stop), "REDUCE"];
        yield return ["not a dict", Pickle((byte)']', stop), "not a state dict"];
        yield return ["truncated", Pickle("ccollections\nOrderedDict\n"), "ends early"];
    }

    [TestMethod]
    [DynamicData(nameof(MaliciousPickles))]
    public void MaliciousPicklesAreClearErrorsAndExecuteNothing(string what, byte[] pickle, string mentioned)
    {
        var marker = Path.Combine(Path.GetTempPath(), "avz-pwned-marker");
        File.Delete(marker);
        var folder = PickleFolder("pickle-evil", pickle);
        var error = Assert.ThrowsExactly<ModelFormatException>(() => ModelFolder.Load(folder, null, new ModelLoadOptions(AllowPickle: true)), what);
        StringAssert.Contains(error.Message, mentioned, what);
        Assert.IsFalse(File.Exists(marker), "nothing may be executed");
    }
}

/// <summary>The Hugging Face cache layout: snapshot files are symlinks into ../../blobs.</summary>
[TestClass]
public sealed class HfCacheLayoutTests
{
    [TestMethod]
    public void SymlinkedSnapshotDescribesAndLoads()
    {
        TorchSetup.EnsureInitialized();
        var root = TempFolder("hfcache");
        var blobs = Directory.CreateDirectory(Path.Combine(root, "models--test--gpt2-tiny", "blobs")).FullName;
        var snapshot = Directory.CreateDirectory(Path.Combine(root, "models--test--gpt2-tiny", "snapshots", "abc123")).FullName;
        foreach (var (file, blob) in new[] { ("config.json", "c0ffee"), ("model.safetensors", "deadbeef") })
        {
            File.Copy(Path.Combine(Fixtures.Folder("gpt2-tiny"), file), Path.Combine(blobs, blob));
            File.CreateSymbolicLink(Path.Combine(snapshot, file), Path.Combine("..", "..", "blobs", blob));
        }
        var description = ModelFolder.Describe(snapshot);
        Assert.AreEqual(new FileInfo(Path.Combine(Fixtures.Folder("gpt2-tiny"), "model.safetensors")).Length, description.WeightBytes,
            "sizes of the link targets");
        Assert.AreEqual("gpt2", description.Architecture);
        var expected = Fixtures.Expected("gpt2-tiny");
        using var loaded = ModelFolder.Load(snapshot, null);
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected["s0.input_ids"])]));
        Fixtures.AssertClose(expected["s0.attentions"], Attentions(result), 1e-4, "symlinked gpt2-tiny");
    }
}

/// <summary>Mutated state-dict pickles: every case ends in a result or a clear refusal, never a crash.</summary>
[TestClass]
public sealed class PickleFuzzTests
{
    private static byte[] RealPickle()
    {
        using var zip = ZipFile.OpenRead(Path.Combine(Fixtures.RepoRoot, "tests", "Backend.Tests", "Models", "TestData", "pytorch_model.bin"));
        var entry = zip.Entries.Single(e => e.FullName.EndsWith("/data.pkl"));
        using var stream = entry.Open();
        var bytes = new byte[entry.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    [TestMethod]
    public void MutatedPicklesEndInAResultOrAPickleException()
    {
        var original = RealPickle();
        Assert.IsInstanceOfType<RestrictedUnpickler.PickleDict>(new RestrictedUnpickler(original).Load());
        var random = new Random(20251128);
        var (accepted, refused) = (0, 0);
        for (var i = 0; i < 5_000; i++)
        {
            var bytes = (byte[])original.Clone();
            switch (i % 4)
            {
                case 0: bytes[random.Next(bytes.Length)] = (byte)random.Next(256); break;        // one byte
                case 1:
                    for (var k = 0; k < 8; k++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    break;
                case 2: bytes = bytes[..random.Next(bytes.Length)]; break;                        // truncated
                default:                                                                          // a spliced range
                    var from = random.Next(bytes.Length);
                    var to = random.Next(bytes.Length);
                    var length = random.Next(1, 64);
                    Array.Copy(original, from, bytes, to, Math.Min(length, Math.Min(bytes.Length - to, original.Length - from)));
                    break;
            }
            try
            {
                new RestrictedUnpickler(bytes).Load();
                accepted++;
            }
            catch (RestrictedUnpickler.PickleException)
            {
                refused++;
            }
        }
        Assert.IsGreaterThan(0, refused);
        Assert.AreEqual(5_000, accepted + refused);
    }

    [TestMethod]
    public void RandomBytesAreRefused()
    {
        var random = new Random(7);
        for (var i = 0; i < 2_000; i++)
        {
            var bytes = new byte[random.Next(0, 200)];
            random.NextBytes(bytes);
            // Refused with the unpickler's own error (any other exception fails the test too), never loaded.
            var error = Assert.ThrowsExactly<RestrictedUnpickler.PickleException>(() => new RestrictedUnpickler(bytes).Load(),
                $"case {i}: {Convert.ToHexString(bytes)}");
            Assert.IsTrue(error.Message.Contains("(at byte ", StringComparison.Ordinal) || error.Message.Contains("Nothing was executed"),
                $"case {i}: the message says where or what: {error.Message}");
        }
    }
}
