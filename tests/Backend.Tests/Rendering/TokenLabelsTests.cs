using AttentionViz.Backend.Rendering;

namespace AttentionViz.Backend.Tests.Rendering;

[TestClass]
public sealed class TokenLabelsTests
{
    [TestMethod]
    [DataRow("Ġthe", "␣the", DisplayName = "byte-level space marker")]
    [DataRow("▁the", "␣the", DisplayName = "SentencePiece space marker")]
    [DataRow("##ing", "##ing", DisplayName = "WordPiece continuation stays")]
    [DataRow("Ċ", "\\n", DisplayName = "byte-level newline")]
    [DataRow("ĉ", "\\t", DisplayName = "byte-level tab")]
    [DataRow("a\nb\tc\r", "a\\nb\\tc\\r", DisplayName = "control characters")]
    [DataRow("\u0007", "\\u{0007}", DisplayName = "bell")]
    [DataRow("\u202Eevil", "\\u{202E}evil", DisplayName = "right-to-left override")]
    [DataRow("a\u200Db", "a\\u{200D}b", DisplayName = "zero-width joiner")]
    [DataRow("🦀", "\\u{1F980}", DisplayName = "emoji without a glyph")]
    [DataRow("😀", "😀", DisplayName = "emoji DejaVu Sans has")]
    [DataRow("中", "\\u{4E2D}", DisplayName = "CJK without a glyph")]
    [DataRow("naïve Straße", "naïve Straße", DisplayName = "Latin-1 and Latin Extended")]
    [DataRow("Ελληνικά Привет", "Ελληνικά Привет", DisplayName = "Greek and Cyrillic")]
    [DataRow("<img src=x>", "<img src=x>", DisplayName = "markup is just text")]
    public void DisplayIsReadableAndNeverDropsCharacters(string token, string expected)
    {
        using var font = LabelFont.Create(12);
        Assert.AreEqual(expected, TokenLabels.Display(token, font));
    }

    [TestMethod]
    public void LoneSurrogatesAreEscaped()
    {
        // Built in code: attribute arguments are stored as UTF-8, which cannot hold a lone surrogate.
        using var font = LabelFont.Create(12);
        Assert.AreEqual("\\u{D800}x\\u{DC00}", TokenLabels.Display("\uD800x\uDC00", font));
    }

    [TestMethod]
    public void TheEmbeddedFontIsDejaVuSansWithCommonScripts()
    {
        Assert.AreEqual("DejaVu Sans", LabelFont.Typeface.FamilyName);
        using var font = LabelFont.Create(12);
        Assert.IsTrue(font.ContainsGlyphs("AZaz09 ,.;:!?\"'()[]{}<>#@&%$€£ äöüßéèñçø ΑΩαω АЯая ␣…↓→"));
        Assert.IsGreaterThan(5f, font.MeasureText("hello"), "glyphs have width: text draws");
    }

    [TestMethod]
    public void AFontThatDoesNotLoadIsAnErrorNotSilentlyMissingText()
    {
        var garbage = new MemoryStream(Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray());
        var error = Assert.Throws<InvalidOperationException>(() => LabelFont.Load(garbage, "garbage.ttf"));
        StringAssert.Contains(error.Message, "garbage.ttf");
        // The shipped file itself loads the same way.
        using var dejavu = File.OpenRead(Path.Combine(Tests.Support.Fixtures.RepoRoot, "src/Backend/Rendering/Fonts/DejaVuSans.ttf"));
        using var typeface = LabelFont.Load(dejavu, "DejaVuSans.ttf");
        Assert.AreEqual("DejaVu Sans", typeface.FamilyName);
    }

    [TestMethod]
    public void FitCutsLongLabelsWithAnEllipsis()
    {
        using var font = LabelFont.Create(12);
        var cut = TokenLabels.Fit(new string('w', 200), font, 80);
        Assert.EndsWith("…", cut);
        Assert.IsLessThanOrEqualTo(80f, font.MeasureText(cut));
        Assert.AreEqual("short", TokenLabels.Fit("short", font, 80));
    }
}
