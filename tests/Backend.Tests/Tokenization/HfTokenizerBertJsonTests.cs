using System.Text.Json;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization;
using AttentionViz.Backend.Tokenization.HuggingFace;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>
/// The WordPiece path (BertNormalizer, BertPreTokenizer, WordPiece, TemplateProcessing) of <see cref="HfTokenizer"/>:
/// the same minimal tokenizer.json around the MiniLM vocabulary that tests/reference/tokenizer/bert-tokenizer.mjs gives
/// @lenml/tokenizers, compared with bert-reference.json's ids and with the faithful <see cref="BertTokenizer"/>.
/// </summary>
[TestClass]
public sealed class HfTokenizerBertJsonTests
{
    private static readonly Lazy<HfTokenizer> Shared = new(Build);

    internal static HfTokenizer Tokenizer => Shared.Value;

    private static HfTokenizer Build()
    {
        var vocab = EmbeddedModelPackage.ReadVocabulary();
        var map = new Dictionary<string, int>();
        for (int i = 0; i < vocab.Count; i++) map[vocab[i]] = i;
        string[] special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
        var json = new
        {
            version = "1.0",
            added_tokens = special.Select(c => new
            {
                id = map[c], content = c, single_word = false, lstrip = false, rstrip = false,
                normalized = false, special = true
            }),
            normalizer = new { type = "BertNormalizer", clean_text = true, handle_chinese_chars = true, strip_accents = true, lowercase = true },
            pre_tokenizer = new { type = "BertPreTokenizer" },
            post_processor = new
            {
                type = "TemplateProcessing",
                single = new object[] { new { SpecialToken = new { id = "[CLS]", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } },
                    new { SpecialToken = new { id = "[SEP]", type_id = 0 } } },
                pair = new object[]
                {
                    new { SpecialToken = new { id = "[CLS]", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } },
                        new { SpecialToken = new { id = "[SEP]", type_id = 0 } },
                    new { Sequence = new { id = "B", type_id = 1 } }, new { SpecialToken = new { id = "[SEP]", type_id = 1 } },
                },
                special_tokens = new Dictionary<string, object>
                {
                    ["[CLS]"] = new { id = "[CLS]", ids = new[] { map["[CLS]"] }, tokens = new[] { "[CLS]" } },
                    ["[SEP]"] = new { id = "[SEP]", ids = new[] { map["[SEP]"] }, tokens = new[] { "[SEP]" } },
                },
            },
            model = new { type = "WordPiece", unk_token = "[UNK]", continuing_subword_prefix = "##", max_input_chars_per_word = 100, vocab = map },
        };
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(json));
        return HfTokenizer.FromJson(doc.RootElement, null, "bert tokenizer.json");
    }

    /// <summary>Where @lenml/tokenizers departs from HF (see BertTokenizerReferenceTests): this tokenizer follows HF, as
    /// BertTokenizer does, and both are asserted.</summary>
    private static readonly HashSet<string> Deviations = ["cjk-ext-b", "emoji-unicode17"];

    /// <summary>HF tokenizers' (Rust) Lowercase/BertNormalizer lower-cases char by char, so a final 'Σ' becomes 'σ';
    /// Python's str.lower (the slow BertTokenizer, and our <see cref="BertTokenizer"/>) and JavaScript's toLowerCase
    /// (@lenml/tokenizers) give 'ς'. A tokenizer.json is the fast tokenizer's: 'σ' here.</summary>
    private static readonly HashSet<string> FinalSigma = ["greek", "greek-final-sigma"];

    [TestMethod]
    [DynamicData(nameof(CaseNames))]
    public void MatchesReferenceAndBertTokenizer(string name)
    {
        var reference = BertReference.Case(name);
        var encoded = Tokenizer.AddSpecialTokens(Tokenizer.Tokenize(reference.Text));
        var bert = MiniLm.Tokenizer.AddSpecialTokens(MiniLm.Tokenizer.Tokenize(reference.Text));
        if (FinalSigma.Contains(name))
        {
            // Σ → σ first: then Python's final-sigma rule has nothing to do, and BertTokenizer gives the per-char result.
            var perChar = MiniLm.Tokenizer.AddSpecialTokens(MiniLm.Tokenizer.Tokenize(reference.Text.Replace('Σ', 'σ')));
            CollectionAssert.AreEqual(perChar.Select(t => t.Id).ToArray(), encoded.Select(t => t.Id).ToArray(),
                name + ": per-char lowercase (σ, not ς)");
            CollectionAssert.AreNotEqual(reference.Ids, encoded.Select(t => t.Id).ToArray(), name + ": lenml now agrees; drop the deviation");
            CollectionAssert.AreEqual(bert.Select(t => t.Id).ToArray(), reference.Ids, name + ": lenml gives ς like Python");
            return;
        }
        CollectionAssert.AreEqual(bert.Select(t => t.Id).ToArray(), encoded.Select(t => t.Id).ToArray(), name + " vs BertTokenizer");
        if (Deviations.Contains(name))
            CollectionAssert.AreNotEqual(reference.Ids, encoded.Select(t => t.Id).ToArray(),
                $"{name}: the reference now agrees; drop the deviation.");
        else
            CollectionAssert.AreEqual(reference.Ids, encoded.Select(t => t.Id).ToArray(), name);
    }

    /// <summary>Same spans as <see cref="BertTokenizer"/>, except that characters the normalizer deletes (a stripped
    /// accent, a variation selector) after a token's last kept character are not in its span, as in HF tokenizers
    /// (BertTokenizer joins them to the character before).</summary>
    [TestMethod]
    [DynamicData(nameof(CaseNames))]
    public void OffsetsMatchBertTokenizer(string name)
    {
        var text = BertReference.Case(name).Text;
        var mine = Tokenizer.Tokenize(text);
        var bert = MiniLm.Tokenizer.Tokenize(FinalSigma.Contains(name) ? text.Replace('Σ', 'σ') : text);
        Assert.HasCount(bert.Count, mine);
        for (int i = 0; i < mine.Count; i++)
        {
            Assert.AreEqual(bert[i].Id, mine[i].Id);
            Assert.AreEqual(bert[i].Start, mine[i].Start, $"{name} token {i}");
            Assert.IsTrue(mine[i].End <= bert[i].End && mine[i].End > mine[i].Start, $"{name} token {i}: {mine[i]} vs {bert[i]}");
            Assert.AreEqual("", TestNormalizer.Normalize(text[mine[i].End..bert[i].End]),
                $"{name} token {i}: dropped text must normalize to nothing");
        }
    }

    [TestMethod]
    public void PairHasBertTypeIds()
    {
        var pair = Tokenizer.AddSpecialTokens(Tokenizer.Tokenize("hello world"), Tokenizer.Tokenize("good bye"));
        var bert = MiniLm.Tokenizer.AddSpecialTokens(MiniLm.Tokenizer.Tokenize("hello world"), MiniLm.Tokenizer.Tokenize("good bye"));
        CollectionAssert.AreEqual(bert.ToArray(), pair.ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 1, 1, 1 }, pair.Select(t => t.TypeId).ToArray());
        Assert.AreEqual(3, Tokenizer.PairSpecialTokenCount);
        Assert.AreEqual(2, Tokenizer.SpecialTokenCount);
    }

    public static IEnumerable<object[]> CaseNames => BertReference.CaseNames;
}
