using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization;
using Google.Protobuf;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>
/// tokenizer.model through Microsoft.ML.Tokenizers' SentencePieceTokenizer. No package available here ships a real
/// SentencePiece model, so a tiny BPE ModelProto is written by hand (sentencepiece_model.proto field numbers) and the
/// expected ids follow from its scores.
/// </summary>
[TestClass]
public sealed class SentencePieceModelTests
{
    private static byte[] TinyModel()
    {
        (string Piece, float Score, int Type)[] pieces =
        [
            ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3),
            ("▁", -1, 1), ("h", -2, 1), ("e", -3, 1), ("l", -4, 1), ("o", -5, 1),
            ("▁h", -6, 1), ("ll", -7, 1), ("▁he", -8, 1), ("llo", -9, 1), ("▁hello", -10, 1),
        ];
        using var ms = new MemoryStream();
        var output = new CodedOutputStream(ms);
        foreach (var (piece, score, type) in pieces)
        {
            var item = new MemoryStream();
            var w = new CodedOutputStream(item);
            w.WriteTag(1, WireFormat.WireType.LengthDelimited); w.WriteString(piece);
            w.WriteTag(2, WireFormat.WireType.Fixed32); w.WriteFloat(score);
            w.WriteTag(3, WireFormat.WireType.Varint); w.WriteEnum(type);
            w.Flush();
            output.WriteTag(1, WireFormat.WireType.LengthDelimited); output.WriteBytes(ByteString.CopyFrom(item.ToArray()));
        }
        var trainer = new MemoryStream();
        var t = new CodedOutputStream(trainer);
        t.WriteTag(3, WireFormat.WireType.Varint); t.WriteEnum(2); // model_type BPE
        t.WriteTag(4, WireFormat.WireType.Varint); t.WriteInt32(pieces.Length);
        t.WriteTag(40, WireFormat.WireType.Varint); t.WriteInt32(0); // unk_id
        t.WriteTag(41, WireFormat.WireType.Varint); t.WriteInt32(1); // bos_id
        t.WriteTag(42, WireFormat.WireType.Varint); t.WriteInt32(2); // eos_id
        t.WriteTag(43, WireFormat.WireType.Varint); t.WriteInt32(-1); // pad_id
        t.Flush();
        output.WriteTag(2, WireFormat.WireType.LengthDelimited); output.WriteBytes(ByteString.CopyFrom(trainer.ToArray()));
        var normalizer = new MemoryStream();
        var n = new CodedOutputStream(normalizer);
        n.WriteTag(1, WireFormat.WireType.LengthDelimited); n.WriteString("identity");
        n.WriteTag(3, WireFormat.WireType.Varint); n.WriteBool(true); // add_dummy_prefix
        n.WriteTag(4, WireFormat.WireType.Varint); n.WriteBool(false); // remove_extra_whitespaces
        n.WriteTag(5, WireFormat.WireType.Varint); n.WriteBool(true); // escape_whitespaces
        n.Flush();
        output.WriteTag(3, WireFormat.WireType.LengthDelimited); output.WriteBytes(ByteString.CopyFrom(normalizer.ToArray()));
        output.Flush();
        return ms.ToArray();
    }

    [TestMethod]
    public void LoadsATokenizerModelFolder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "spm-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), TinyModel());
            var t = TokenizerLoader.TryLoad(dir);
            Assert.IsInstanceOfType<SentencePieceModelTokenizer>(t);
            var tokens = t.Tokenize("hello hello");
            CollectionAssert.AreEqual(new[] { (12, 0, 5), (12, 5, 11) }, tokens.Select(x => (x.Id, x.Start, x.End)).ToArray(),
                string.Join(" ", tokens));
            var wrapped = t.AddSpecialTokens(tokens);
            CollectionAssert.AreEqual(new[] { 1, 12, 12 }, wrapped.Select(x => x.Id).ToArray());
            Assert.AreEqual(1, t.SpecialTokenCount);
            Assert.IsTrue(t.IsSpecial(1));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{ "add_bos_token": false, "add_eos_token": true }""");
            var noBos = TokenizerLoader.TryLoad(dir)!;
            CollectionAssert.AreEqual(new[] { 12, 2 }, noBos.AddSpecialTokens(noBos.Tokenize("hello")).Select(x => x.Id).ToArray());
            File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), [1, 2, 3, 4, 5]);
            StringAssert.Contains(Assert.ThrowsExactly<ModelFormatException>(() => TokenizerLoader.TryLoad(dir)).Message, "tokenizer.model");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
