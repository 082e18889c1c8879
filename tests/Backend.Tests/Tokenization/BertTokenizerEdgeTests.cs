using System.Text;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Tests.Tokenization;

[TestClass]
public sealed class BertTokenizerEdgeTests
{
    private static readonly string[] TinySpecials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    private static BertTokenizer Tiny(bool lowerCase, params string[] tokens) =>
        BertTokenizer.FromVocabulary([.. TinySpecials, .. tokens], lowerCase);

    private static string Render(IEnumerable<Token> tokens) => string.Join(" ", tokens.Select(t => $"{t.Text}@{t.Start}-{t.End}"));

    [TestMethod]
    public void EmptyTextHasNoContentTokens()
    {
        var tokenizer = MiniLm.Tokenizer;
        Assert.IsEmpty(tokenizer.Tokenize(""));
        CollectionAssert.AreEqual(new[] { 101, 102 }, MiniLm.EncodeIds(""));
    }

    [TestMethod]
    [DataRow(" ")]
    [DataRow(" \t\r\n\r\n  ")]
    [DataRow("\u00A0\u2003\u3000\u2028\u2029\u000B\u000C")]
    [DataRow("\u0000\u200B\u200D\uFEFF\u00AD\uFFFD\uE000")]
    public void WhitespaceAndDroppedCharactersOnlyGiveNoTokens(string text) => Assert.IsEmpty(MiniLm.Tokenizer.Tokenize(text));

    // Attribute strings are stored as UTF-8, which cannot hold a lone surrogate: the rows are escaped and unescaped here.
    [TestMethod]
    [DataRow(@"\uD800", "[UNK]@0-1")]
    [DataRow(@"\uDC00", "[UNK]@0-1")]
    [DataRow(@"a\uD800b", "a@0-1 [UNK]@1-2 b@2-3")]
    [DataRow(@"end\uD83D", "end@0-3 [UNK]@3-4")]
    [DataRow(@"\uDE00\uD83D x", "[UNK]@0-1 [UNK]@1-2 x@3-4")]
    [DataRow(@"\u0391\u03A3\uD800", "α@0-1 ##ς@1-2 [UNK]@2-3")]
    [DataRow(@"\uD83D\uDE00\uDE00", "[UNK]@0-2 [UNK]@2-3")]
    public void LoneSurrogatesBecomeUnknownTokensWithTheirSpan(string escaped, string expected)
    {
        string text = System.Text.RegularExpressions.Regex.Unescape(escaped);
        var tokens = MiniLm.Tokenizer.Tokenize(text);
        Assert.AreEqual(expected, Render(tokens));
        Assert.IsTrue(tokens.All(t => !t.Special));
    }

    [TestMethod]
    public void NullTextAndNegativeCapThrow()
    {
        Assert.ThrowsExactly<ArgumentNullException>(() => MiniLm.Tokenizer.Tokenize(null!));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MiniLm.Tokenizer.Tokenize("a", -1));
    }

    [TestMethod]
    public void CapGivesAPrefixOfTheFullTokenization()
    {
        string text = "Tokenization of antidisestablishmentarianism, x😀y and 한국어 [SEP] are unbelievably tricky!";
        var full = MiniLm.Tokenizer.Tokenize(text);
        for (int cap = 0; cap <= full.Count + 2; cap++)
        {
            var capped = MiniLm.Tokenizer.Tokenize(text, cap);
            CollectionAssert.AreEqual(full.Take(cap).ToArray(), capped.ToArray(), $"cap {cap}");
        }
    }

    /// <summary>1 MB of mixed text in one call (no timing asserted; the run's duration shows it), then with a cap.</summary>
    [TestMethod]
    public void OneMegabyteOfText()
    {
        var sb = new StringBuilder(1 << 20);
        var corpus = BertReference.File.Cases.Select(c => c.Text).Where(t => t.Length > 0).ToArray();
        for (int i = 0; sb.Length < 1 << 20; i++) sb.Append(corpus[i % corpus.Length]).Append('\n');
        string text = sb.ToString();

        var tokens = MiniLm.Tokenizer.Tokenize(text);
        Assert.IsGreaterThan(200_000, tokens.Count);
        for (int k = 1; k < tokens.Count; k++) Assert.IsGreaterThanOrEqualTo(tokens[k - 1].Start, tokens[k].Start);
        Assert.IsLessThanOrEqualTo(text.Length, tokens[^1].End);

        var capped = MiniLm.Tokenizer.Tokenize(text, 512);
        CollectionAssert.AreEqual(tokens.Take(512).ToArray(), capped.ToArray());
    }

    [TestMethod]
    public void VocabularyAndSpecialIds()
    {
        var tokenizer = MiniLm.Tokenizer;
        Assert.AreEqual(30522, tokenizer.VocabularySize);
        Assert.AreEqual("[PAD]", tokenizer.IdToToken(0));
        Assert.AreEqual("the", tokenizer.IdToToken(1996));
        Assert.IsNull(tokenizer.IdToToken(-1));
        Assert.IsNull(tokenizer.IdToToken(30522));
        foreach (int id in new[] { 0, 100, 101, 102, 103 }) Assert.IsTrue(tokenizer.IsSpecial(id), $"id {id}");
        foreach (int id in new[] { 1, 99, 104, 1996, -1, 30522 }) Assert.IsFalse(tokenizer.IsSpecial(id), $"id {id}");
        Assert.AreEqual((100, 101, 102), (tokenizer.UnknownTokenId, tokenizer.ClsTokenId, tokenizer.SepTokenId));
        Assert.AreEqual(1996, tokenizer.TokenToId("the"));
        Assert.IsNull(tokenizer.TokenToId("The"));
        Assert.IsTrue(tokenizer.LowerCase);
    }

    [TestMethod]
    [DataRow("\r\n")]
    [DataRow("\n")]
    public void FromVocabFileReadsLineEndingsLikePython(string newline)
    {
        string path = Path.Combine(Path.GetTempPath(), $"vocab-{Guid.NewGuid():N}.txt");
        try
        {
            File.WriteAllText(path, string.Join(newline, TinySpecials.Concat(["hello", "world", "##s", "!"])) + newline);
            var tokenizer = BertTokenizer.FromVocabFile(path);
            Assert.AreEqual(9, tokenizer.VocabularySize);
            Assert.AreEqual("hello@0-5 world@6-11 ##s@11-12 !@12-13 [UNK]@14-17", Render(tokenizer.Tokenize("Hello worlds! foo")));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void VocabularyWithoutRequiredTokensIsRejected()
    {
        Assert.ThrowsExactly<ArgumentException>(() => BertTokenizer.FromVocabulary(["[UNK]", "[CLS]", "a"]));
        Assert.ThrowsExactly<ArgumentException>(() => BertTokenizer.FromVocabulary(["[CLS]", "[SEP]", "a"]));
        Assert.ThrowsExactly<ArgumentNullException>(() => BertTokenizer.FromVocabulary(null!));
    }

    [TestMethod]
    public void CasedModeKeepsCaseAndAccents()
    {
        var cased = Tiny(false, "Hello", "É", "##a", "hello", "e");
        Assert.AreEqual("Hello@0-5 É@6-7 ##a@7-8", Render(cased.Tokenize("Hello Éa")));
        Assert.IsFalse(cased.LowerCase);
        var uncased = Tiny(true, "Hello", "É", "##a", "hello", "e");
        Assert.AreEqual("hello@0-5 e@6-7 ##a@7-8", Render(uncased.Tokenize("Hello Éa")));
    }

    [TestMethod]
    public void GreedyLongestMatchFirst()
    {
        // Not the best segmentation: WordPiece takes the longest prefix and then fails on the rest.
        var tokenizer = Tiny(true, "a", "ab", "##bc", "##c", "##d");
        Assert.AreEqual("ab@0-2 ##c@2-3", Render(tokenizer.Tokenize("abc")));
        Assert.AreEqual("[UNK]@0-4", Render(tokenizer.Tokenize("abcx")));
        Assert.AreEqual("a@0-1 ##d@1-2", Render(tokenizer.Tokenize("ad")));
    }

    [TestMethod]
    public void DuplicateVocabularyLinesMapToTheLastId()
    {
        var tokenizer = Tiny(true, "x", "y", "x");
        Assert.AreEqual(7, tokenizer.Tokenize("x")[0].Id);
        Assert.AreEqual("x", tokenizer.IdToToken(5));
    }

    /// <summary>max_input_chars_per_word counts code points (Python characters), not UTF-16 units.</summary>
    [TestMethod]
    public void MaxInputCharsPerWordCountsCodePoints()
    {
        var tokenizer = Tiny(true, "😀", "##😀");
        string hundred = string.Concat(Enumerable.Repeat("😀", 100));
        var tokens = tokenizer.Tokenize(hundred);
        Assert.HasCount(100, tokens);
        for (int k = 0; k < 100; k++) Assert.AreEqual((2 * k, 2 * k + 2), (tokens[k].Start, tokens[k].End));
        Assert.AreEqual("[UNK]@0-202", Render(tokenizer.Tokenize(hundred + "😀")));
        Assert.AreEqual("[UNK]@0-101", Render(MiniLm.Tokenizer.Tokenize(new string('a', 101))));
        Assert.HasCount(50, MiniLm.Tokenizer.Tokenize(new string('a', 100)));
    }

    [TestMethod]
    public void FinalSigmaFollowsPythonLower()
    {
        // 'Σ' lower-cases to 'ς' after a cased letter (skipping case-ignorables such as ' and .) unless a cased letter follows.
        Assert.AreEqual("α ##ς|α ##σ ' β|σ|ς", string.Join("|", new[] { "ΑΣ", "ΑΣ'Β", "Σ", "ς" }
            .Select(w => string.Join(" ", MiniLm.Tokenizer.Tokenize(w).Select(t => t.Text)))));
        // Characters that clean_text drops are not context: "Α\u200BΣ" is "ΑΣ".
        Assert.AreEqual("α ##ς", string.Join(" ", MiniLm.Tokenizer.Tokenize("Α\u200BΣ").Select(t => t.Text)));
    }

    [TestMethod]
    public void CanonicalDecompositionOfSingleCodePoints()
    {
        Assert.AreEqual("65 301", Decompose('é'));
        Assert.AreEqual("41 30A", Decompose(0x212B)); // ANGSTROM SIGN → Å → A + ring
        Assert.AreEqual("73 323 307", Decompose(0x1E69));
        Assert.AreEqual("3B1 313 300 345", Decompose(0x1F82));
        Assert.AreEqual("1112 1161 11AB", Decompose('한'));
        Assert.AreEqual("1100 1161", Decompose('가'));
        Assert.AreEqual("8C48", Decompose(0xF900)); // CJK compatibility ideograph (singleton)
        Assert.AreEqual("61", Decompose('a'));
        Assert.AreEqual("FB01", Decompose(0xFB01)); // 'ﬁ' has a compatibility decomposition only

        static string Decompose(int cp)
        {
            Span<int> buffer = stackalloc int[CanonicalDecomposition.MaxLength];
            int n = CanonicalDecomposition.Decompose(cp, buffer);
            return string.Join(" ", buffer[..n].ToArray().Select(x => x.ToString("X")));
        }
    }

    /// <summary>Accent stripping needs real NFD: invariant globalization would silently turn it into a no-op.</summary>
    [TestMethod]
    public void RuntimeNormalizationIsActive()
    {
        Assert.AreEqual("e\u0301", "é".Normalize(NormalizationForm.FormD), "string.Normalize is a no-op: is InvariantGlobalization on?");
        Assert.AreEqual("cafe", MiniLm.Tokenizer.Tokenize("café")[0].Text);
    }
}
