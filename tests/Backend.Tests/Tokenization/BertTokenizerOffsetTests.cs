using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>Spans are [Start, End) in UTF-16 code units of the ORIGINAL text.</summary>
[TestClass]
public sealed class BertTokenizerOffsetTests
{
    /// <summary>Texts beyond the reference corpus whose normalization changes lengths.</summary>
    private static readonly string[] ExtraTexts =
    [
        "İİİ İstanbul ﬁﬂ ǅ",
        "e\u0301\u0302\u0303x Z\u0336\u0337 a\u0308\u0308\u0308",
        "한국어와 조선말",
        "😀😀 x😀y 👨‍👩‍👧 ❤️❤️",
        "ΣΣΣ ΑΣ ΌΣΟΣ's",
        "tab\there\r\nCRLF\u2028line",
        "[SEP]\u0301 字\u0301a",
        "a\uD800b \uDC00 \uD83D",
        "\u0301leading mark",
    ];

    public static IEnumerable<object[]> Texts =>
        BertReference.File.Cases.Select(c => new object[] { c.Name })
            .Concat(ExtraTexts.Select((_, i) => new object[] { $"extra-{i}" }));

    private static string TextOf(string name) =>
        name.StartsWith("extra-", StringComparison.Ordinal) ? ExtraTexts[int.Parse(name["extra-".Length..])] : BertReference.Case(name).Text;

    [TestMethod]
    [DynamicData(nameof(Texts))]
    public void SpansAreValidConsecutiveAndRoundTrip(string name)
    {
        string text = TextOf(name);
        var tokenizer = MiniLm.Tokenizer;
        var tokens = tokenizer.Tokenize(text);
        for (int k = 0; k < tokens.Count; k++)
        {
            var t = tokens[k];
            string where = $"{name} token {k} '{t.Text}' [{t.Start},{t.End})";
            Assert.IsFalse(t.Special, where);
            Assert.IsTrue(0 <= t.Start && t.Start < t.End && t.End <= text.Length, where);
            Assert.IsFalse(SplitsPair(text, t.Start) || SplitsPair(text, t.End), $"{where} splits a surrogate pair");
            Assert.AreEqual(tokenizer.IdToToken(t.Id), t.Text, where);

            bool piece = t.Text.StartsWith("##", StringComparison.Ordinal) && t.Id != tokenizer.UnknownTokenId;
            if (k > 0)
            {
                var previous = tokens[k - 1];
                Assert.IsGreaterThanOrEqualTo(previous.Start, t.Start, where);
                // Consecutive: touching, overlapping on a shared character, or apart only by characters clean_text drops.
                if (!piece) Assert.IsGreaterThanOrEqualTo(previous.End, t.Start, $"{where}: words do not overlap");
                else if (t.Start > previous.End)
                    Assert.AreEqual("", TestNormalizer.Normalize(text[previous.End..t.Start]), $"{where}: a word's pieces are consecutive");
            }

            string source = text[t.Start..t.End];
            if (t.Id == tokenizer.UnknownTokenId && t.Text == "[UNK]" && source != "[UNK]") continue;
            if (tokenizer.IsSpecial(t.Id))
            {
                // A special token's exact string in the text; a stripped mark may follow it.
                Assert.AreEqual(t.Text, TestNormalizer.Normalize(source).ToUpperInvariant(), where);
                continue;
            }
            string expected = TestNormalizer.FoldSigma(piece ? t.Text[2..] : t.Text);
            string normalized = TestNormalizer.Normalize(source);
            bool sharesChar = (k > 0 && tokens[k - 1].End > t.Start) || (k + 1 < tokens.Count && tokens[k + 1].Start < t.End);
            if (sharesChar) Assert.Contains(expected, normalized, where);
            else Assert.AreEqual(expected, normalized, where);
        }
    }

    [TestMethod]
    [DynamicData(nameof(Texts))]
    public void EveryContentCharacterIsCovered(string name)
    {
        string text = TextOf(name);
        var tokens = MiniLm.Tokenizer.Tokenize(text);
        var covered = new bool[text.Length];
        foreach (var t in tokens)
            for (int i = t.Start; i < t.End; i++) covered[i] = true;
        for (int i = 0; i < text.Length; i++)
        {
            string one = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? text.Substring(i, 2)
                : text[i].ToString();
            if (one.Length == 2 && covered[i] != covered[i + 1]) Assert.Fail($"{name}: half of the surrogate pair at {i} is covered");
            int at = i;
            i += one.Length - 1;
            if (covered[at]) continue;
            if (char.IsSurrogate(text[i]) && one.Length == 1) Assert.Fail($"{name}: lone surrogate at {i} not covered");
            string normalized = TestNormalizer.Normalize(one);
            Assert.IsTrue(normalized.Trim().Length == 0 || char.IsWhiteSpace(one[0]),
                $"{name}: U+{char.ConvertToUtf32(one, 0):X4} at {at} produces '{normalized}' but no token covers it");
        }
    }

    private static bool SplitsPair(string text, int index) =>
        index > 0 && index < text.Length && char.IsHighSurrogate(text[index - 1]) && char.IsLowSurrogate(text[index]);

    private static string Spans(string text) =>
        string.Join(" ", MiniLm.Tokenizer.Tokenize(text).Select(t => $"{t.Text}@{t.Start}-{t.End}"));

    [TestMethod]
    public void ExactSpans()
    {
        Assert.AreEqual("hello@0-5 ,@5-6 world@7-12", Spans("Hello, World"));
        Assert.AreEqual("istanbul@0-8", Spans("İstanbul"));
        // A stripped combining mark and a variation selector join the character before them.
        Assert.AreEqual("cafe@0-5 x@6-7", Spans("cafe\u0301 x"));
        Assert.AreEqual("[UNK]@0-2 [UNK]@3-4", Spans("\u2764\uFE0F \u2764"));
        // An emoji is one [UNK] over its surrogate pair; a word with one becomes [UNK] as a whole.
        Assert.AreEqual("a@0-1 [UNK]@2-4 b@5-6 [UNK]@7-13", Spans("a 😀 b x😀y😀"));
        // Tabs, CRLF and operators keep their places.
        Assert.AreEqual("a@0-1 =@2-3 b@4-5 +@7-8 c@9-10 |@10-11 d@13-14 $@14-15", Spans("a =\tb\r\n+ c|\r\nd$"));
        // A Hangul syllable decomposes into jamo: pieces that share it overlap on that one character.
        Assert.AreEqual("ᄒ@0-1 ##ᅡ@0-1 ##ᆫ@0-1", Spans("한"));
        // Special-token strings in the text are matched exactly (case-sensitive), with their real span.
        Assert.AreEqual("x@0-1 [SEP]@1-6 [@7-8 cl@8-10 ##s@10-11 ]@11-12", Spans("x[SEP] [cls]"));
        // CJK ideographs are isolated, even outside the BMP.
        Assert.AreEqual("a@0-1 [UNK]@1-3 b@3-4 中@4-5", Spans("a𠀁b中"));
    }

    [TestMethod]
    public void SpecialFlagsAndInsertedSpecialTokens()
    {
        var tokenizer = MiniLm.Tokenizer;
        var content = tokenizer.Tokenize("a [SEP] ☃");
        Assert.IsTrue(content.All(t => !t.Special), "tokens made from text are never Special: they have real spans");
        Assert.AreEqual(tokenizer.SepTokenId, content[1].Id);
        Assert.AreEqual(tokenizer.UnknownTokenId, content[2].Id);
        var wrapped = tokenizer.AddSpecialTokens(content);
        Assert.HasCount(content.Count + 2, wrapped);
        Assert.AreEqual(new Token(101, "[CLS]", 0, 0, true), wrapped[0]);
        Assert.AreEqual(new Token(102, "[SEP]", 0, 0, true), wrapped[^1]);
        Assert.AreEqual(2, tokenizer.SpecialTokenCount);
    }
}
