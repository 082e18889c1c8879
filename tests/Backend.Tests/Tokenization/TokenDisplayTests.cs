using AttentionViz.Backend.Rendering;
using AttentionViz.Backend.Tests.Support;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Tests.Tokenization;

[TestClass]
public sealed class TokenDisplayTests
{
    [TestMethod]
    [DataRow("##ing", "ing", true, false, DisplayName = "WordPiece continuation")]
    [DataRow("##", "##", false, false, DisplayName = "a bare ## is text")]
    [DataRow("Ġthe", "the", false, true, DisplayName = "byte-level leading space")]
    [DataRow("▁the", "the", false, true, DisplayName = "SentencePiece leading space")]
    [DataRow("Ġ", "", false, true, DisplayName = "a space alone")]
    [DataRow("ĠĠ", "␣", false, true, DisplayName = "two spaces")]
    [DataRow("ĊĊ", "\\n\\n", false, false, DisplayName = "byte-level newlines")]
    [DataRow("a\nb\tc", "a\\nb\\tc", false, false, DisplayName = "raw newline and tab")]
    [DataRow("\u202Eevil", "\\u{202E}evil", false, false, DisplayName = "bidi override")]
    [DataRow("中", "中", false, false, DisplayName = "no font fallback for the client")]
    public void TheClientSeesMarkersAsFlagsAndTheRestEscaped(string text, string display, bool continuation, bool space)
    {
        var shown = TokenDisplay.ForClient(new Token(1, text, 0, 1, false));
        Assert.AreEqual(new TokenDisplayText(display, continuation, space), shown);
    }

    [TestMethod]
    [DataRow("llama3")]
    [DataRow("qwen3")]
    public void ByteLevelTokensShowTheirCharactersNotTheirBytes(string name)
    {
        // "é" is the vocabulary string "Ã©" in a byte-level BPE: the panel, PNG and CSV must read "é".
        var tokenizer = HfReference.Tokenizer(name);
        const string text = "café naïve Ünïcödé 日本語 Привет";
        var tokens = tokenizer.Tokenize(text);
        Assert.IsTrue(tokens.Any(t => t.Text.Contains('Ã')), "the vocabulary strings are byte-level");
        var shown = tokens.Select(TokenDisplay.ForClient).ToList();
        Assert.IsFalse(shown.Any(d => d.Display.Contains('Ã') || d.Display.Contains('Ð')), string.Join("|", shown.Select(d => d.Display)));
        // Each token shows its whole characters, or the bytes of one split across tokens as <0xXX>; no other change:
        // joined (and those bytes put back together) they are the text.
        Assert.AreEqual(text, Reassembled(shown), string.Join("|", shown.Select(d => d.Display)));
        // The raw vocabulary string stays for exports' second header row.
        Assert.IsTrue(tokens.All(t => t.Text == tokenizer.IdToToken(t.Id)));
    }

    [TestMethod]
    public void AByteLevelCharacterSplitAcrossTokensShowsItsBytes()
    {
        // 😀 is 4 bytes; a byte-level vocabulary without it splits it: each piece shows the bytes it holds.
        var tokenizer = HfReference.Tokenizer("llama3");
        var tokens = tokenizer.Tokenize("x\U0001F9EC\U0001FAE8 y");
        var shown = tokens.Select(TokenDisplay.ForClient).ToList();
        Assert.IsFalse(shown.Any(d => d.Display.Contains('ð')), string.Join("|", shown.Select(d => d.Display)));
        Assert.AreEqual("x\U0001F9EC\U0001FAE8 y", Reassembled(shown));
    }

    /// <summary>The displays joined, leading spaces restored, runs of &lt;0xXX&gt; decoded back as UTF-8.</summary>
    private static string Reassembled(IEnumerable<TokenDisplayText> shown)
    {
        var joined = string.Concat(shown.Select(d => (d.LeadingSpace ? " " : "") + d.Display));
        return System.Text.RegularExpressions.Regex.Replace(joined, "(<0x[0-9A-F]{2}>)+", m => System.Text.Encoding.UTF8.GetString(
            m.Value.Split('>', StringSplitOptions.RemoveEmptyEntries).Select(b => Convert.ToByte(b[3..], 16)).ToArray()));
    }

    [TestMethod]
    public void SpecialTokensKeepTheirText()
    {
        Assert.AreEqual(new TokenDisplayText("[CLS]", false, false), TokenDisplay.ForClient(new Token(101, "[CLS]", 0, 0, true)));
        Assert.AreEqual("##x", TokenDisplay.WithoutMarkers(new Token(5, "##x", 0, 0, true)));
    }

    [TestMethod]
    [DataRow("##ing", "ing")]
    [DataRow("Ġthe", "the")]
    [DataRow("▁the", "the")]
    [DataRow("Ġ", "Ġ")]
    [DataRow("##", "##")]
    [DataRow("plain", "plain")]
    public void WithoutMarkersJoinsPiecesIntoWords(string text, string expected) =>
        Assert.AreEqual(expected, TokenDisplay.WithoutMarkers(new Token(1, text, 0, 1, false)));

    /// <summary>The client's form is the image label minus the markers, for every character the font can draw.</summary>
    [TestMethod]
    [DataRow("##ing")]
    [DataRow("Ġthe")]
    [DataRow("▁a▁b")]
    [DataRow("ĠĊĉ\r")]
    [DataRow("a\u200Db\u0007")]
    [DataRow("naïve")]
    public void TheClientFormAgreesWithTheImageLabels(string text)
    {
        using var font = LabelFont.Create(12);
        var (display, continuation, leadingSpace) = TokenDisplay.ForClient(new Token(1, text, 0, 1, false));
        var marker = continuation ? "##" : leadingSpace ? "␣" : "";
        Assert.AreEqual(TokenLabels.Display(text, font), marker + display);
    }

    [TestMethod]
    public async Task AnalyzeResultsCarryTheDisplay()
    {
        using var backend = new InMemoryBackend();
        var result = await backend.Call("attention/analyze", new { text = "Tokenization works" });
        var tokens = result.GetProperty("tokens").EnumerateArray().ToList();
        foreach (var token in tokens)
        {
            var text = token.GetProperty("text").GetString()!;
            var special = token.GetProperty("special").GetBoolean();
            var expected = TokenDisplay.ForClient(new Token(0, text, 0, 0, special));
            Assert.AreEqual(expected.Display, token.GetProperty("display").GetString(), text);
            Assert.AreEqual(expected.Continuation, token.GetProperty("continuation").GetBoolean(), text);
            Assert.AreEqual(expected.LeadingSpace, token.GetProperty("leadingSpace").GetBoolean(), text);
        }
        Assert.IsTrue(tokens.Any(t => t.GetProperty("continuation").GetBoolean()), "MiniLM splits 'Tokenization'");
    }
}
