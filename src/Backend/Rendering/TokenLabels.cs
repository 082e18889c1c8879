using AttentionViz.Backend.Tokenization;
using SkiaSharp;

namespace AttentionViz.Backend.Rendering;

/// <summary>
/// Token text as a label that draws visibly and safely: <see cref="TokenDisplay.Escape"/> (markers made visible,
/// invisible characters escaped), plus anything the label font has no glyph for (CJK, emoji) shown as its escaped code
/// point such as <c>\u{4E2D}</c>, so that nothing draws as an empty box.
/// </summary>
public static class TokenLabels
{
    public static string Display(string text, SKFont font) =>
        TokenDisplay.Escape(text, rune => !font.ContainsGlyph(rune.Value));

    /// <summary><paramref name="label"/>, cut with "…" so that it is at most <paramref name="maxWidth"/> pixels wide.</summary>
    public static string Fit(string label, SKFont font, float maxWidth)
    {
        if (font.MeasureText(label) <= maxWidth) return label;
        var runes = label.EnumerateRunes().ToList();
        for (var keep = runes.Count - 1; keep > 0; keep--)
        {
            var cut = string.Concat(runes.Take(keep)) + "…";
            if (font.MeasureText(cut) <= maxWidth) return cut;
        }
        return "…";
    }
}
