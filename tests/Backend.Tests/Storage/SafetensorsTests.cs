using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using AttentionViz.Backend.Storage;
using TorchSharp;

namespace AttentionViz.Backend.Tests.Storage;

[TestClass]
public sealed class SafetensorsTests
{
    private const string Fixtures = "/work/shared/fixtures";
    private static string _dir = "";

    [ClassInitialize]
    public static void Init(TestContext _)
    {
        _dir = Path.Combine(Path.GetTempPath(), "av-safetensors-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(_dir, recursive: true);

    private static string TempFile(string name) => Path.Combine(_dir, Guid.NewGuid().ToString("N") + "-" + name);

    private static bool Same(torch.Tensor a, torch.Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static byte[] Bytes<T>(params T[] values) where T : struct => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    // ---------- round trips ----------

    [TestMethod]
    public void RoundTrip_RawTensors_KeepsNamesDtypesShapesBytesAndMetadata()
    {
        var path = TempFile("raw.safetensors");
        var tensors = new (string Name, string Dtype, long[] Shape, ReadOnlyMemory<byte> Data)[]
        {
            ("a.f32", "F32", [2, 3], Bytes(1f, 2f, 3f, -4f, 5.5f, float.MaxValue)),
            ("b.i64", "I64", [3], Bytes(1L, -2L, long.MaxValue)),
            ("c.f16", "F16", [2], Bytes((Half)1.5, (Half)(-0.25))),
            ("d.bf16", "BF16", [1], Bytes((ushort)0x3FC0)),
            ("e.f64", "F64", [1, 1], Bytes(Math.PI)),
            ("f.bool", "BOOL", [3], new byte[] { 1, 0, 1 }),
            ("g.u8", "U8", [1], new byte[] { 255 }),
            ("h.empty", "F32", [0, 5], Array.Empty<byte>()),
            ("i.scalar", "I32", [], Bytes(42)),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcödé \"quoted\"" };
        SafetensorsWriter.Write(path, tensors, metadata);

        using var file = SafetensorsFile.Open(path);
        CollectionAssert.AreEqual(tensors.Select(t => t.Name).ToArray(), file.Tensors.Select(t => t.Name).ToArray());
        foreach (var t in tensors)
        {
            var info = file.GetInfo(t.Name);
            Assert.AreEqual(t.Dtype, info.Dtype);
            CollectionAssert.AreEqual(t.Shape, info.Shape);
            CollectionAssert.AreEqual(t.Data.ToArray(), file.GetSpan(t.Name).ToArray(), t.Name);
            CollectionAssert.AreEqual(t.Data.ToArray(), file.GetMemory(t.Name).ToArray(), t.Name);
        }
        CollectionAssert.AreEquivalent(metadata.ToArray(), file.Metadata.ToArray());

        // Layout: header padded with spaces to 8 bytes, tensors back to back in the order given.
        var bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.AreEqual(0, headerLength % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        var json = header.TrimEnd(' ');
        Assert.IsTrue(json.EndsWith('}'));
        Assert.IsTrue(header.Length - json.Length < 8, "padding is fewer than 8 spaces");
        Assert.AreEqual(8 + headerLength + tensors.Sum(t => (long)t.Data.Length), bytes.LongLength);
        long offset = 0;
        foreach (var t in tensors)
        {
            Assert.AreEqual(offset, file.GetInfo(t.Name).Begin);
            offset += t.Data.Length;
        }
        using var doc = JsonDocument.Parse(header);
        Assert.AreEqual("pt", doc.RootElement.GetProperty("__metadata__").GetProperty("format").GetString());
    }

    [TestMethod]
    public void RoundTrip_TorchTensors_IncludingNonContiguous()
    {
        var path = TempFile("torch.safetensors");
        using var a = torch.arange(12, dtype: torch.float32).reshape(3, 4);
        using var at = a.t(); // non-contiguous view
        using var b = torch.tensor(new long[] { 7, 8, 9 });
        using var c = torch.tensor(new[] { 0.1f, 0.2f }).to(torch.float16);
        SafetensorsWriter.Write(path, [("a", a), ("at", at), ("b", b), ("c", c)]);

        using var file = SafetensorsFile.Open(path);
        Assert.AreEqual(4, file.Tensors.Count);
        Assert.AreEqual(0, file.Metadata.Count);
        using var ra = file.ReadFloat32("a");
        using var rat = file.ReadFloat32("at");
        using var rb = file.Read("b");
        using var rc = file.ReadFloat32("c");
        Assert.IsTrue(Same(ra, a));
        Assert.IsTrue(Same(rat, at.contiguous()));
        CollectionAssert.AreEqual(new long[] { 4, 3 }, rat.shape);
        Assert.AreEqual(torch.ScalarType.Int64, rb.dtype);
        Assert.IsTrue(Same(rb, b));
        Assert.IsTrue(Same(rc, c.to(torch.float32)));
        Assert.AreEqual("F16", file.GetInfo("c").Dtype);
    }

    [TestMethod]
    public void RoundTrip_TensOfMegabytes()
    {
        var path = TempFile("big.safetensors");
        using var big = torch.randn(5_000, 2_048); // 40 MB
        using var small = torch.ones(3);
        SafetensorsWriter.Write(path, [("big", big), ("small", small)], new Dictionary<string, string> { ["kind"] = "analysis" });
        Assert.IsTrue(new FileInfo(path).Length > 40_000_000);
        using var file = SafetensorsFile.Open(path);
        using var back = file.ReadFloat32("big");
        Assert.IsTrue(Same(back, big));
        Assert.AreEqual("analysis", file.Metadata["kind"]);
        Assert.AreEqual(0, Directory.GetFiles(_dir, "*.tmp").Length, "no temporary file left behind");
    }

    [TestMethod]
    public void ReadFloat32_ConvertsHalfBFloat16AndDoubleExactly()
    {
        var halves = new[] { (Half)0, (Half)1, (Half)(-2.5), Half.Epsilon, Half.MaxValue, Half.NegativeInfinity, (Half)0.1, (Half)65504 };
        var bf16Floats = new[] { 0f, 1f, -3.140625f, 1e-38f, float.PositiveInfinity, 3.3895314e38f };
        var bf16Bits = bf16Floats.Select(f => (ushort)(BitConverter.SingleToInt32Bits(f) >>> 16)).ToArray();
        var doubles = new[] { 0.0, 1.0 / 3, -1e-40, 1e300, 123456789.123 };
        var path = TempFile("convert.safetensors");
        SafetensorsWriter.Write(path, new (string, string, long[], ReadOnlyMemory<byte>)[]
        {
            ("h", "F16", [halves.Length], Bytes(halves)),
            ("b", "BF16", [bf16Bits.Length], Bytes(bf16Bits)),
            ("d", "F64", [doubles.Length], Bytes(doubles)),
        }, null);

        using var file = SafetensorsFile.Open(path);
        using var h = file.ReadFloat32("h");
        using var b = file.ReadFloat32("b");
        using var d = file.ReadFloat32("d");
        Assert.AreEqual(torch.ScalarType.Float32, h.dtype);
        CollectionAssert.AreEqual(halves.Select(x => (float)x).ToArray(), h.data<float>().ToArray());
        CollectionAssert.AreEqual(bf16Bits.Select(x => BitConverter.Int32BitsToSingle(x << 16)).ToArray(), b.data<float>().ToArray());
        CollectionAssert.AreEqual(doubles.Select(x => (float)x).ToArray(), d.data<float>().ToArray());

        // Independent check: libtorch's own widening of the same bytes.
        using var hTorch = file.Read("h");
        using var bTorch = file.Read("b");
        Assert.AreEqual(torch.ScalarType.BFloat16, bTorch.dtype);
        Assert.IsTrue(Same(h, hTorch.to(torch.float32)));
        Assert.IsTrue(Same(b, bTorch.to(torch.float32)));
    }

    [TestMethod]
    public void ReadFloat32_OfAnIntegerTensor_IsAClearError()
    {
        var path = TempFile("ints.safetensors");
        SafetensorsWriter.Write(path, [("input_ids", "I64", [2], Bytes(101L, 102L))], null);
        using var file = SafetensorsFile.Open(path);
        var e = Assert.ThrowsExactly<ModelFormatException>(() => file.ReadFloat32("input_ids"));
        StringAssert.Contains(e.Message, "input_ids");
        StringAssert.Contains(e.Message, "I64");
        StringAssert.Contains(e.Message, path);
        Assert.AreEqual("input_ids", e.TensorName);
    }

    [TestMethod]
    public void MissingTensor_IsAClearError()
    {
        var path = TempFile("one.safetensors");
        SafetensorsWriter.Write(path, [("x", "F32", [1], Bytes(1f))], null);
        using var file = SafetensorsFile.Open(path);
        Assert.IsFalse(file.Contains("y"));
        var e = Assert.ThrowsExactly<ModelFormatException>(() => file.ReadFloat32("y"));
        StringAssert.Contains(e.Message, "'y'");
    }

    [TestMethod]
    public void Writer_RejectsInconsistentInput()
    {
        var path = TempFile("bad.safetensors");
        Assert.ThrowsExactly<ArgumentException>(() => SafetensorsWriter.Write(path, [("x", "F32", [2], Bytes(1f))], null));
        Assert.ThrowsExactly<ArgumentException>(() => SafetensorsWriter.Write(path, [("x", "F32", [1], Bytes(1f)), ("x", "F32", [1], Bytes(1f))],
            null));
        Assert.ThrowsExactly<ArgumentException>(() => SafetensorsWriter.Write(path, [("x", "Q4", [1], Bytes(1f))], null));
        Assert.ThrowsExactly<ArgumentException>(() => SafetensorsWriter.Write(path, [("x", "F32", [-1], Bytes(1f))], null));
        Assert.ThrowsExactly<ArgumentException>(() => SafetensorsWriter.Write(path, [("__metadata__", "F32", [1], Bytes(1f))], null));
        Assert.IsFalse(File.Exists(path));
    }

    // ---------- the shared fixtures ----------

    [TestMethod]
    [DataRow("bert-tiny/model.safetensors", 39, "embeddings.word_embeddings.weight", new long[] { 1000, 64 })]
    [DataRow("bert-tiny/expected.safetensors", 18, "s1.token_type_ids", null)]
    [DataRow("gpt2-tiny/model.safetensors", 28, "transformer.wte.weight", new long[] { 1000, 64 })]
    [DataRow("gpt2-tiny/expected.safetensors", 8, "s0.attentions", new long[] { 2, 4, 16, 16 })]
    [DataRow("llama-tiny/model.safetensors", 21, "model.layers.0.self_attn.q_proj.weight", new long[] { 64, 64 })]
    [DataRow("llama-tiny/expected.safetensors", 8, "s1.attentions", new long[] { 2, 4, 100, 100 })]
    [DataRow("minilm-real/expected.safetensors", 8, "s0.attentions", new long[] { 6, 12, 12, 12 })]
    public void Fixtures_OpenWithExpectedTensors(string relative, int count, string name, long[]? shape)
    {
        using var file = SafetensorsFile.Open(Path.Combine(Fixtures, relative));
        Assert.AreEqual(count, file.Tensors.Count);
        Assert.IsTrue(file.Contains(name));
        if (shape is not null) CollectionAssert.AreEqual(shape, file.GetInfo(name).Shape);
        foreach (var info in file.Tensors.Where(t => SafetensorsDtype.IsFloatingPoint(t.Dtype)))
        {
            using var t = file.ReadFloat32(info.Name);
            Assert.IsFalse(t.isnan().any().item<bool>(), info.Name);
        }
    }

    [TestMethod]
    public void MiniLmFixture_ValuesMatchExpectedJson()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "minilm-real/expected.json")));
        using var file = SafetensorsFile.Open(Path.Combine(Fixtures, "minilm-real/expected.safetensors"));
        foreach (var sentence in json.RootElement.GetProperty("sentences").EnumerateArray())
        {
            var key = sentence.GetProperty("key").GetString()!;
            var ids = sentence.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            using var readIds = file.Read($"{key}.input_ids");
            CollectionAssert.AreEqual(ids, readIds.data<long>().ToArray());
            using var attentions = file.ReadFloat32($"{key}.attentions");
            var row0 = sentence.GetProperty("attentions_l0_h0_row0").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            CollectionAssert.AreEqual(row0, attentions[0, 0, 0].data<float>().ToArray());
            using var rowSums = attentions.sum(-1);
            Assert.IsTrue((rowSums - 1).abs().max().item<float>() < 1e-5f);
        }
    }

    // ---------- hostile files ----------

    private static string WriteRaw(byte[] content)
    {
        var path = TempFile("hostile.safetensors");
        File.WriteAllBytes(path, content);
        return path;
    }

    private static byte[] FileWithHeader(string header, int dataBytes, ulong? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        return bytes;
    }

    private static ModelFormatException AssertRejected(byte[] content, params string[] fragments)
    {
        var path = WriteRaw(content);
        var e = Assert.ThrowsExactly<ModelFormatException>(() => SafetensorsFile.Open(path).Dispose());
        StringAssert.Contains(e.Message, path);
        foreach (var f in fragments) StringAssert.Contains(e.Message, f);
        File.Delete(path); // the mapping was released: the file can go
        return e;
    }

    [TestMethod]
    public void Hostile_EmptyAndTruncatedFiles()
    {
        AssertRejected([], "0 bytes");
        AssertRejected([1, 0, 0, 0, 0], "5 bytes");
        // A valid file cut short inside its data: the offsets now point past the end.
        var path = TempFile("whole.safetensors");
        SafetensorsWriter.Write(path, [("w", "F32", [4], Bytes(1f, 2f, 3f, 4f))], null);
        var whole = File.ReadAllBytes(path);
        var e = AssertRejected(whole[..^3], "out of range");
        Assert.AreEqual("w", e.TensorName);
        // ... or cut inside its header.
        AssertRejected(whole[..20], "truncated");
    }

    [TestMethod]
    public void Hostile_HeaderLengthBeyondFile() =>
        AssertRejected(FileWithHeader("{}", 0, declaredLength: 1000), "header length is 1000", "truncated");

    [TestMethod]
    public void Hostile_HeaderLengthHuge() =>
        AssertRejected(FileWithHeader("{}", 0, declaredLength: 1UL << 62), "header length is 4611686018427387904", "more than");

    [TestMethod]
    [DataRow("not json at all", "not valid JSON")]
    [DataRow("{\"a\": {\"dtype\": \"F32\", ", "not valid JSON")]
    [DataRow("[1, 2, 3]", "not an object")]
    [DataRow("{\"a\": 5}", "'a'", "not an object")]
    [DataRow("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", "'a'", "data_offsets is missing")]
    [DataRow("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", "'a'", "not a 64-bit integer")]
    [DataRow("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"extra\": 1}}", "'a'", "unexpected field 'extra'")]
    [DataRow("{\"__metadata__\": {\"k\": 1}}", "__metadata__", "not a string")]
    public void Hostile_MalformedHeader(string header, string fragment, string? fragment2 = null) =>
        AssertRejected(FileWithHeader(header, 16), fragment2 is null ? [fragment] : [fragment, fragment2]);

    [TestMethod]
    public void Hostile_OverlappingOffsets() => AssertRejected(FileWithHeader(
        """{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}""", 12),
        "'b'", "overlap tensor 'a'");

    [TestMethod]
    public void Hostile_OffsetsOutOfRange() => AssertRejected(FileWithHeader(
        """{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}""", 8), "'a'", "out of range", "8 bytes");

    [TestMethod]
    public void Hostile_ReversedOffsets() => AssertRejected(FileWithHeader(
        """{"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}""", 8), "'a'", "not an ordered pair");

    [TestMethod]
    public void Hostile_SizeNotShapeTimesDtype() => AssertRejected(FileWithHeader(
        """{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}""", 8), "'a'", "span 8 bytes", "needs 12");

    [TestMethod]
    public void Hostile_UnknownDtype() => AssertRejected(FileWithHeader(
        """{"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}""", 16), "'a'", "unknown dtype 'F128'");

    [TestMethod]
    public void Hostile_NegativeDim() => AssertRejected(FileWithHeader(
        """{"a": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 8]}}""", 8), "'a'", "negative dimension");

    [TestMethod]
    public void Hostile_ShapeOverflow() => AssertRejected(FileWithHeader(
        """{"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 8]}}""", 8), "'a'", "overflows");

    [TestMethod]
    public void Hostile_DuplicateNames() => AssertRejected(FileWithHeader(
        """{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}""", 2),
        "'a'", "more than once");

    [TestMethod]
    public void Hostile_DeepNesting_DoesNotCrash() =>
        AssertRejected(FileWithHeader(new string('[', 10_000) + new string(']', 10_000), 0), "not valid JSON");

    [TestMethod]
    public void Hostile_BoolBytesOtherThanZeroOrOne()
    {
        var path = WriteRaw(FileWithHeader("""{"m": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}""", 2) is var b
            ? [.. b[..^1], 7] : []);
        using var file = SafetensorsFile.Open(path);
        var e = Assert.ThrowsExactly<ModelFormatException>(() => file.Read("m"));
        StringAssert.Contains(e.Message, "not 0 or 1");
    }

    // ---------- issue #12: offsets must tile the data section; the header must be Unicode ----------

    private const string TwoTensors =
        """{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}""";

    [TestMethod]
    public void Hostile_HeaderLengthOneByteShort_IsRefusedNotShifted()
    {
        // A space-padded header one byte short still parses, and the data section then starts a byte early.
        var header = Encoding.UTF8.GetBytes(TwoTensors + " ");
        var bytes = new byte[8 + header.Length + 12];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length - 1);
        header.CopyTo(bytes, 8);
        var e = AssertRejected(bytes, "'b'", "13 bytes", "end at 12", "header length or the offsets are wrong");
        Assert.AreEqual("b", e.TensorName);
    }

    [TestMethod]
    public void Hostile_OffsetsShiftedByOneWithTrailingByte_IsRefused()
    {
        var e = AssertRejected(FileWithHeader(TwoTensors.Replace("[0, 8]", "[1, 9]").Replace("[8, 12]", "[9, 13]"), 13),
            "'a'", "gap of 1 bytes at the start of the data section");
        Assert.AreEqual("a", e.TensorName);
    }

    [TestMethod]
    public void Hostile_GapBetweenTensors_IsRefused() =>
        AssertRejected(FileWithHeader(TwoTensors.Replace("[8, 12]", "[9, 13]"), 13), "'b'", "gap of 1 bytes after tensor 'a'");

    [TestMethod]
    public void Hostile_TrailingBytesAfterTheLastTensor_AreRefused() =>
        AssertRejected(FileWithHeader(TwoTensors, 16), "'b'", "holds 16 bytes", "4 bytes are not any tensor's");

    [TestMethod]
    public void Hostile_DataWithoutTensors_IsRefused() => AssertRejected(FileWithHeader("{}", 4), "holds 4 bytes", "end at 0");

    [TestMethod]
    public void ZeroSizedTensorsAnywhere_StillTileTheData()
    {
        var path = WriteRaw(FileWithHeader(
            """{"e": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}""", 8));
        using var file = SafetensorsFile.Open(path);
        Assert.AreEqual(2, file.Tensors.Count);
    }

    [TestMethod]
    public void Hostile_InvalidUtf8InHeader_NamesTheFile()
    {
        var bytes = FileWithHeader("""{"aX": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}""", 1);
        bytes[8 + 3] = 0xFF; // the X
        AssertRejected(bytes, "not valid UTF-8", "offset 11");
    }

    [TestMethod]
    [DataRow("""{"a\ud800": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}""", "the first name")]
    [DataRow("""{"a": {"dtype": "U8\udc00", "shape": [1], "data_offsets": [0, 1]}}""", "'a'")]
    [DataRow("""{"__metadata__": {"k": "\ud800"}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}""", "__metadata__")]
    public void Hostile_LoneSurrogateInHeader_NamesTheFile(string header, string where) =>
        AssertRejected(FileWithHeader(header, 1), "not valid Unicode", where);
}
