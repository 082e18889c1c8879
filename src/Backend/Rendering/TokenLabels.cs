using System.Globalization;
using System.Text;
using SkiaSharp;

namespace AttentionViz.Backend.Rendering;

/// <summary>
/// Turns token text into a label that draws visibly and safely. Byte-level and SentencePiece space markers
/// (<c>Ġ</c>, <c>▁</c>) become <c>␣</c>, GPT-2's newline and tab markers (<c>Ċ</c>, <c>ĉ</c>) become <c>\n</c> and
/// <c>\t</c>; WordPiece's <c>##</c> stays (it says "continues the previous word"). Control, format (bidi overrides,
/// zero-width joiners), separator and unpaired-surrogate characters, and anything the label font has no glyph for
/// (CJK, emoji), are shown as escaped code points such as <c>\u{202E}</c>: nothing is silently dropped or reordered.
/// </summary>
public static class TokenLabels
{
    public const string SpaceMarker = "␣";

    public static string Display(string text, SKFont font)
    {
        if (text.Length == 0) return "";
        var builder = new StringBuilder(text.Length + 8);
        var index = 0;
        // A leading marker stands for the space before the word.
        if (text[0] is 'Ġ' or '▁')
        {
            builder.Append(SpaceMarker);
            index = 1;
        }
        while (index < text.Length)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                builder.Append(CultureInfo.InvariantCulture, $"\\u{{{(int)text[index]:X4}}}");
                index++;
                continue;
            }
            index += consumed;
            builder.Append(rune.Value switch
            {
                'Ġ' or '▁' => SpaceMarker,
                'Ċ' or '\n' => "\\n",
                'ĉ' or '\t' => "\\t",
                '\r' => "\\r",
                ' ' => " ",
                _ when Escaped(rune, font) => $"\\u{{{rune.Value:X4}}}",
                _ => rune.ToString(),
            });
        }
        return builder.ToString();
    }

    private static bool Escaped(Rune rune, SKFont font) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator
            or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator
        || !font.ContainsGlyph(rune.Value);

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
