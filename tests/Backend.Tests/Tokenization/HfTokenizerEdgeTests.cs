using System.Diagnostics;
using System.Text.Json;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization;
using AttentionViz.Backend.Tokenization.HuggingFace;
using HuggingFace = AttentionViz.Backend.Tokenization.HuggingFace;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>Errors, truncation, added-token flags, offsets of byte tokens, the folder loader and speed.</summary>
[TestClass]
public sealed class HfTokenizerEdgeTests
{
    public TestContext TestContext { get; set; } = null!;

    private static HfTokenizer FromJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return HfTokenizer.FromJson(doc.RootElement, null, "test tokenizer.json");
    }

    /// <summary>A tiny BPE over a, b, c, ab, abc, with whatever other sections are given.</summary>
    private static string TinyBpe(string sections = "", string merges = """["a b", "ab c"]""") => $$"""
        {
          {{sections}}
          "model": { "type": "BPE", "vocab": { "a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, " ": 5, "<unk>": 6 },
                     "merges": {{merges}}, "unk_token": "<unk>" }
        }
        """;

    [TestMethod]
    [DataRow("normalizer", "FancyNormalizer")]
    [DataRow("pre_tokenizer", "FancySplit")]
    [DataRow("post_processor", "FancyTemplate")]
    public void UnknownComponentTypeIsAClearError(string section, string type)
    {
        var e = Assert.ThrowsExactly<ModelFormatException>(() => FromJson(TinyBpe($"\"{section}\": {{ \"type\": \"{type}\" }},")));
        StringAssert.Contains(e.Message, type);
        StringAssert.Contains(e.Message, section);
    }

    /// <summary>Issue #12 point 5: catastrophic Split patterns once hung the model thread (28.8 s for (a|aa)+$).</summary>
    [TestMethod]
    [DataRow("(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!")]
    [DataRow("(a|aa)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!")]
    [DataRow("(x+x+)+y", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")]
    public void ACatastrophicSplitPatternStopsWithItsNameInstead(string regex, string text)
    {
        var tokenizer = FromJson(TinyBpe($$"""
            "pre_tokenizer": { "type": "Split", "pattern": { "Regex": {{JsonSerializer.Serialize(regex)}} }, "behavior": "Isolated" },
            """));
        var clock = Stopwatch.StartNew();
        var e = Assert.ThrowsExactly<ModelFormatException>(() => tokenizer.Tokenize(text));
        Assert.IsLessThan(3 * CodePointRegex.MatchTimeout.TotalMilliseconds, clock.ElapsedMilliseconds, "stopped by the timeout");
        StringAssert.Contains(e.Message, $"`{regex}`");
        StringAssert.Contains(e.Message, "backtracks catastrophically");
        // The same pattern on a text it matches at once is fine: the timeout is per match, not per text.
        Assert.IsNotEmpty(tokenizer.Tokenize("ab"));
    }

    [TestMethod]
    public void UnknownModelTypeIsAClearError()
    {
        var e = Assert.ThrowsExactly<ModelFormatException>(() => FromJson("""{ "model": { "type": "WordLevel", "vocab": {} } }"""));
        StringAssert.Contains(e.Message, "WordLevel");
    }

    [TestMethod]
    public void PrecompiledCharsmapIsRefusedByName()
    {
        var e = Assert.ThrowsExactly<ModelFormatException>(() => FromJson(TinyBpe("""
            "normalizer": { "type": "Precompiled", "precompiled_charsmap": "ALQCAACEAAAA" },
            """)));
        StringAssert.Contains(e.Message, "Precompiled");
    }

    [TestMethod]
    public void MergesAsStringsOrArraysAreTheSame()
    {
        var strings = FromJson(TinyBpe());
        var arrays = FromJson(TinyBpe(merges: """[["a", "b"], ["ab", "c"]]"""));
        foreach (string text in new[] { "abc", "abcab", "cba", "aabbcc", "abx" })
            CollectionAssert.AreEqual(strings.Tokenize(text).ToArray(), arrays.Tokenize(text).ToArray(), text);
        CollectionAssert.AreEqual(new[] { 4, 3, 0 }, strings.Tokenize("abcaba").Select(t => t.Id).ToArray());
        // An unknown character is <unk> with its own span.
        CollectionAssert.AreEqual(new[] { (3, 0, 2), (6, 2, 3) }, strings.Tokenize("abx").Select(t => (t.Id, t.Start, t.End)).ToArray());
    }

    [TestMethod]
    public void AddedTokenFlags()
    {
        var t = FromJson(TinyBpe("""
            "added_tokens": [
              { "id": 7, "content": "<m>", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true },
              { "id": 8, "content": "ab", "single_word": true, "lstrip": false, "rstrip": true, "normalized": false, "special": false },
              { "id": 9, "content": "<mm>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true }
            ],
            """));
        // lstrip takes the spaces before <m> into its span; a longer added token wins at the same position.
        CollectionAssert.AreEqual(new[] { (0, 0, 1), (7, 1, 6), (9, 6, 10) },
            t.Tokenize("a  <m><mm>").Select(x => (x.Id, x.Start, x.End)).ToArray());
        // single_word: "ab" inside "cab" is not the added token; standing alone it is, and rstrip takes the space after.
        CollectionAssert.AreEqual(new[] { (2, 0, 1), (3, 1, 3), (5, 3, 4), (8, 4, 7), (2, 7, 8) },
            t.Tokenize("cab ab c").Select(x => (x.Id, x.Start, x.End)).ToArray());
        Assert.IsTrue(t.IsSpecial(7));
        Assert.IsFalse(t.IsSpecial(8));
        // An added special token in the text keeps its span and is marked like any token from text (Special false).
        Assert.IsFalse(t.Tokenize("<m>")[0].Special);
    }

    [TestMethod]
    public void TemplatesForTruncation()
    {
        var llama2 = HfReference.Tokenizer("llama2");
        var llama3 = HfReference.Tokenizer("llama3");
        var qwen3 = HfReference.Tokenizer("qwen3");
        var bert = HfTokenizerBertJsonTests.Tokenizer;
        Assert.AreEqual(1, llama2.SpecialTokenCount);
        Assert.AreEqual(0, llama3.SpecialTokenCount);
        Assert.AreEqual(0, qwen3.SpecialTokenCount);
        Assert.AreEqual(2, bert.SpecialTokenCount);
        const string text = "The quick brown fox jumps over the lazy dog, again and again.";
        foreach (var t in new[] { llama2, llama3, qwen3, bert })
        {
            var content = t.Tokenize(text);
            var truncated = content.Take(5).ToList();
            var wrapped = t.AddSpecialTokens(truncated);
            Assert.HasCount(5 + t.SpecialTokenCount, wrapped);
            CollectionAssert.AreEqual(truncated, wrapped.Where(x => !x.Special).ToList());
            foreach (var s in wrapped.Where(x => x.Special))
            {
                Assert.AreEqual((0, 0), (s.Start, s.End));
                Assert.IsTrue(t.IsSpecial(s.Id));
            }
        }
        var l2 = llama2.AddSpecialTokens(llama2.Tokenize("Hi"));
        Assert.AreEqual("<s>", l2[0].Text);
        Assert.IsTrue(l2[0].Special);
        var b = bert.AddSpecialTokens(bert.Tokenize("hi"));
        Assert.AreEqual("[CLS] hi [SEP]", string.Join(' ', b.Select(x => x.Text)));
    }

    [TestMethod]
    public void RobertaAndBertProcessingTemplates()
    {
        var roberta = FromJson(TinyBpe("""
            "added_tokens": [
              { "id": 7, "content": "<s>", "special": true }, { "id": 8, "content": "</s>", "special": true }
            ],
            "post_processor": { "type": "RobertaProcessing", "sep": ["</s>", 8], "cls": ["<s>", 7], "trim_offsets": true, "add_prefix_space": true },
            """));
        Assert.AreEqual(2, roberta.SpecialTokenCount);
        Assert.AreEqual(4, roberta.PairSpecialTokenCount);
        var pair = roberta.AddSpecialTokens(roberta.Tokenize("ab"), roberta.Tokenize("c"));
        CollectionAssert.AreEqual(new[] { 7, 3, 8, 8, 2, 8 }, pair.Select(t => t.Id).ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 1, 1, 1 }, pair.Select(t => t.TypeId).ToArray());
        var bert = FromJson(TinyBpe("""
            "added_tokens": [ { "id": 7, "content": "[CLS]", "special": true }, { "id": 8, "content": "[SEP]", "special": true } ],
            "post_processor": { "type": "BertProcessing", "sep": ["[SEP]", 8], "cls": ["[CLS]", 7] },
            """));
        var bp = bert.AddSpecialTokens(bert.Tokenize("ab"), bert.Tokenize("c"));
        CollectionAssert.AreEqual(new[] { 7, 3, 8, 2, 8 }, bp.Select(t => t.Id).ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 1, 1 }, bp.Select(t => t.TypeId).ToArray());
    }

    [TestMethod]
    [DataRow("llama2")]
    [DataRow("llama3")]
    [DataRow("qwen3")]
    public void MaxTokensGivesThePrefix(string name)
    {
        var t = HfReference.Tokenizer(name);
        foreach (var c in HfReference.File.Tokenizers[name].Cases.Take(80))
        {
            var all = t.Tokenize(c.Text);
            foreach (int k in new[] { 0, 1, 3, 10, 1000 })
                CollectionAssert.AreEqual(all.Take(k).ToArray(), t.Tokenize(c.Text, k).ToArray(), $"{c.Name} k={k}");
        }
    }

    [TestMethod]
    [DataRow("llama2")]
    [DataRow("llama3")]
    [DataRow("qwen3")]
    public void MaxTokensOnLongTextGivesThePrefix(string name)
    {
        var t = HfReference.Tokenizer(name);
        // ~120 k characters: all cases one after another, so windows cut through every kind of text.
        string text = string.Join("", Enumerable.Repeat(string.Join("", HfReference.File.Tokenizers[name].Cases.Select(c => c.Text)), 3));
        var all = t.Tokenize(text);
        foreach (int k in new[] { 1, 100, 512, 3000, 20000, all.Count - 1, all.Count + 5 })
            CollectionAssert.AreEqual(all.Take(k).ToArray(), t.Tokenize(text, k).ToArray(), $"k={k}");
    }

    [TestMethod]
    public void ByteFallbackTokensOfOneCharacterShareItsSpan()
    {
        var t = HfReference.Tokenizer("llama2");
        const string text = "a 🫩 b";
        var tokens = t.Tokenize(text);
        var bytes = tokens.Where(x => x.Text.StartsWith("<0x", StringComparison.Ordinal)).ToList();
        Assert.HasCount(4, bytes, string.Join(" ", tokens));
        foreach (var x in bytes) Assert.AreEqual((2, 4), (x.Start, x.End));
    }

    [TestMethod]
    public void ByteLevelTokensOfOneCharacterShareItsSpan()
    {
        var t = HfReference.Tokenizer("qwen3");
        const string text = "x 🫈 y";
        var tokens = t.Tokenize(text);
        var emoji = tokens.Where(x => x.End > 2 && x.Start < 4).ToList();
        Assert.IsGreaterThan(1, emoji.Count, string.Join(" ", tokens));
        foreach (var x in emoji.Skip(1)) Assert.AreEqual((2, 4), (x.Start, x.End), string.Join(" ", tokens));
    }

    [TestMethod]
    public void ReadableText()
    {
        var t = HfReference.Tokenizer("llama3");
        var tokens = t.Tokenize("Hello world 😀");
        Assert.AreEqual(" world", t.ReadableText(tokens[1].Id));
        var l2 = HfReference.Tokenizer("llama2");
        Assert.AreEqual(" Hello", l2.ReadableText(l2.Tokenize("Hello")[0].Id));
    }

    /// <summary>A 512-token prompt and 1 MB of text, timed on a warm tokenizer (the second call). The bounds are loose
    /// because the test machine is shared; the measured times are printed.</summary>
    [TestMethod]
    [DataRow("llama2")]
    [DataRow("llama3")]
    [DataRow("qwen3")]
    public void SpeedOfAPromptAndOfOneMegabyte(string name)
    {
        var t = HfReference.Tokenizer(name);
        string prompt = string.Concat(Enumerable.Repeat("The model attends to every previous token; def f(x): return x * 2  # ok\n", 30));
        t.Tokenize(prompt);
        var sw = Stopwatch.StartNew();
        var tokens = t.Tokenize(prompt);
        double promptMs = sw.Elapsed.TotalMilliseconds;
        Assert.IsGreaterThanOrEqualTo(500, tokens.Count);

        var rng = new Random(7);
        string[] words = ["alpha", " beta", "\n", "  ", "γάμμα", " 中文", "😀", "x1234567", "\t", "{", "}", " the", " of", "Ñandú", "(",
            "1.5"];
        var sb = new System.Text.StringBuilder();
        while (sb.Length < 1_000_000) sb.Append(words[rng.Next(words.Length)]);
        string big = sb.ToString();
        t.Tokenize(big);
        sw.Restart();
        var all = t.Tokenize(big);
        double bigMs = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        var window = t.Tokenize(big, 512);
        double windowMs = sw.Elapsed.TotalMilliseconds;
        string report = $"{name}: {tokens.Count}-token prompt {promptMs:F2} ms; 1 MB: {all.Count} tokens in {bigMs:F0} ms; " +
            $"first 512 tokens of 1 MB: {windowMs:F1} ms";
        TestContext.WriteLine(report);
        Assert.HasCount(512, window);
        Assert.IsLessThan(100, promptMs, report);
        Assert.IsLessThan(8000, bigMs, report);
        Assert.IsLessThan(500, windowMs, report);
    }

    [TestMethod]
    public void LoaderPicksTheFolderFiles()
    {
        string dir = Path.Combine(Path.GetTempPath(), "hf-loader-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            Assert.IsNull(TokenizerLoader.TryLoad(dir));
            File.WriteAllLines(Path.Combine(dir, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello"]);
            Assert.IsInstanceOfType<BertTokenizer>(TokenizerLoader.TryLoad(dir));
            File.WriteAllText(Path.Combine(dir, "vocab.json"), """{ "h": 0, "i": 1, "hi": 2, "Ġ": 3 }""");
            File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\nh i\n");
            var gpt2 = TokenizerLoader.TryLoad(dir);
            Assert.IsInstanceOfType<HfTokenizer>(gpt2);
            CollectionAssert.AreEqual(new[] { 2, 3, 2 }, gpt2.Tokenize("hi hi").Select(x => x.Id).ToArray());
            Assert.AreEqual(0, gpt2.SpecialTokenCount);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), TinyBpe());
            var json = TokenizerLoader.TryLoad(dir);
            Assert.IsInstanceOfType<HfTokenizer>(json);
            Assert.AreEqual(4, json.Tokenize("abc")[0].Id);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), TinyBpe("\"normalizer\": { \"type\": \"Nope\" },"));
            StringAssert.Contains(Assert.ThrowsExactly<ModelFormatException>(() => TokenizerLoader.TryLoad(dir)).Message, "Nope");
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{ \"model\": ");
            StringAssert.Contains(Assert.ThrowsExactly<ModelFormatException>(() => TokenizerLoader.TryLoad(dir)).Message, "tokenizer.json");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>HF's documented examples of SplitDelimiterBehavior on "the-final--countdown" split on '-'.</summary>
    [TestMethod]
    [DataRow("Removed", "the|final|countdown")]
    [DataRow("Isolated", "the|-|final|-|-|countdown")]
    [DataRow("MergedWithPrevious", "the-|final-|-|countdown")]
    [DataRow("MergedWithNext", "the|-final|-|-countdown")]
    [DataRow("Contiguous", "the|-|final|--|countdown")]
    public void SplitBehaviors(string behaviorName, string expected)
    {
        var behavior = Enum.Parse<SplitBehavior>(behaviorName);
        const string text = "the-final--countdown";
        var pieces = new List<AlignedText>();
        var matches = new List<(int, int)>();
        for (int i = 0; i < text.Length; i++) if (text[i] == '-') matches.Add((i, i + 1));
        HuggingFace.SplitBehaviors.Split(AlignedText.FromOriginal(text, 0, text.Length), matches, behavior, false, pieces);
        Assert.AreEqual(expected, string.Join('|', pieces.Select(p => p.Text)));
        foreach (var p in pieces) Assert.AreEqual(p.Text, text[p.Start[0]..p.End[^1]]);
    }

    [TestMethod]
    public void SplitInvertedAndRegexOnSupplementaryLetters()
    {
        // Inverted: the matches are the pieces (HF's Whitespace pre-tokenizer is \w+|[^\w\s]+ inverted, Removed).
        var t = FromJson(TinyBpe("""
            "pre_tokenizer": { "type": "Split", "pattern": { "Regex": "\\p{L}+" }, "behavior": "Removed", "invert": true },
            """));
        // "𝐀" (U+1D400, a letter outside the BMP) is matched by \p{L} as one code point, so "a𝐀b" is one piece.
        var pieces = new List<AlignedText> { AlignedText.FromOriginal("a𝐀b c", 0, 6) };
        new SplitPreTokenizer(Pattern.FromRegex(@"\p{L}+"), SplitBehavior.Removed, invert: true).PreTokenize(pieces);
        CollectionAssert.AreEqual(new[] { "a𝐀b", "c" }, pieces.Select(p => p.Text).ToArray());
        Assert.IsNotNull(t);
    }

    [TestMethod]
    public void UnigramViterbi()
    {
        var t = FromJson("""
            {
              "pre_tokenizer": { "type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true },
              "model": { "type": "Unigram", "unk_id": 0, "byte_fallback": false,
                         "vocab": [["<unk>", 0.0], ["▁", -2.0], ["▁ab", -3.0], ["▁a", -1.5],
                                   ["b", -1.0], ["c", -2.5], ["bc", -2.0], ["abc", -10.0]] }
            }
            """);
        // "▁abc": ▁ab + c = -5.5; ▁a + bc = -3.5; ▁a + b + c = -5.0 → ▁a bc.
        CollectionAssert.AreEqual(new[] { "▁a", "bc" }, t.Tokenize("abc").Select(x => x.Text).ToArray());
        // Unknown characters fuse into one <unk> with the span of both.
        CollectionAssert.AreEqual(new[] { ("▁a", 0, 1), ("<unk>", 1, 3), ("b", 3, 4) },
            t.Tokenize("axyb").Select(x => (x.Text, x.Start, x.End)).ToArray());
    }
}

/// <summary>The hand-written matchers of the GPT-2, Llama-3 and Qwen split regexes against .NET's regex engine.</summary>
[TestClass]
public sealed class KnownSplitPatternTests
{
    [TestMethod]
    [DataRow(KnownSplitPatterns.Gpt2)]
    [DataRow(KnownSplitPatterns.Llama3)]
    [DataRow(KnownSplitPatterns.Qwen)]
    public void SameMatchesAsTheRegex(string pattern)
    {
        var p = Pattern.FromRegex(pattern);
        string[] pool = ["a", "Z", "é", "ſ", "中", "𠀀", "𝐀", "1", "٣", "𝟎", "½", " ", "  ", "\t", "\n", "\r", "\r\n", "\u00A0",
            "\u3000", "\u2028",
            "\u0085", "'", "'s", "'S", "'ll", "'Re", "'d", "!", "?!", "_", "-", "😀", "👍🏽", "\u200B", "\u0301", "\uFEFF", "x", "\uD800"];
        var rng = new Random(pattern.Length);
        for (int n = 0; n < 3000; n++)
        {
            var sb = new System.Text.StringBuilder();
            int parts = rng.Next(1, 16);
            for (int k = 0; k < parts; k++) sb.Append(pool[rng.Next(pool.Length)]);
            string text = sb.ToString();
            var expected = p.RegexMatches(text);
            var actual = p.Matches(text);
            CollectionAssert.AreEqual(expected, actual, System.Text.Json.JsonSerializer.Serialize(text));
        }
        foreach (var c in HfReference.File.Tokenizers["qwen3"].Cases)
            CollectionAssert.AreEqual(p.RegexMatches(c.Text), p.Matches(c.Text), c.Name);
    }
}

/// <summary>Unigram byte_fallback (@lenml/tokenizers ignores the flag, so it is checked by hand here).</summary>
[TestClass]
public sealed class UnigramByteFallbackTests
{
    [TestMethod]
    public void UnknownCharactersBecomeTheirBytesWithTheCharacterSpan()
    {
        using var doc = System.Text.Json.JsonDocument.Parse("""
            {
              "pre_tokenizer": { "type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": false },
              "model": { "type": "Unigram", "unk_id": 0, "byte_fallback": true,
                         "vocab": [["<unk>", 0.0], ["<0x0A>", -5.0], ["<0xC3>", -5.0], ["<0xA9>", -5.0], ["▁a", -1.0], ["b", -1.0]] }
            }
            """);
        var t = HfTokenizer.FromJson(doc.RootElement, null, "test");
        CollectionAssert.AreEqual(new[] { ("▁a", 0, 1), ("<0x0A>", 1, 2), ("<0xC3>", 2, 3), ("<0xA9>", 2, 3), ("b", 3, 4) },
            t.Tokenize("a\néb").Select(x => (x.Text, x.Start, x.End)).ToArray());
        // A character with a byte missing from the vocabulary stays <unk>.
        CollectionAssert.AreEqual(new[] { "▁a", "<unk>" }, t.Tokenize("a€").Select(x => x.Text).ToArray());
    }
}

/// <summary>The cut of long SentencePiece-style pieces before "▁" runs (a speed-up) changes no id.</summary>
[TestClass]
public sealed class BpeMetaspaceCutTests
{
    [TestMethod]
    public void CutAndUncutGiveTheSameTokens()
    {
        var t = HfReference.Tokenizer("llama2");
        var model = (BpeModel)typeof(HfTokenizer)
            .GetField("_model", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(t)!;
        Assert.IsTrue((bool)typeof(BpeModel)
            .GetField("_cutBeforeMetaspace", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(model)!,
            "Llama-2's vocabulary has no token with '▁' after another character");
        var whole = typeof(BpeModel).GetMethod("TokenizeWord", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        foreach (var c in HfReference.File.Tokenizers["llama2"].Cases)
        {
            string piece = "\u2581" + c.Text.Replace(' ', '\u2581');
            var cut = new List<PieceToken>();
            model.Tokenize(piece, cut);
            var uncut = new List<PieceToken>();
            whole.Invoke(model, [piece, uncut]);
            CollectionAssert.AreEqual(uncut, cut, c.Name);
        }
    }
}
