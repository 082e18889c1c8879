using System.Buffers;
using System.Globalization;
using System.Text;

namespace AttentionViz.Backend.Tokenization;

/// <summary>A token as the client shows it: <see cref="TokenDisplay.ForClient"/>.</summary>
/// <param name="Display">the token's text without its markers, escaped (see <see cref="TokenDisplay.ForClient"/>)</param>
/// <param name="Continuation">WordPiece's <c>##</c>: the token continues the previous token's word</param>
/// <param name="LeadingSpace">byte-level <c>Ġ</c> or SentencePiece <c>▁</c>: the token starts with a space</param>
public readonly record struct TokenDisplayText(string Display, bool Continuation, bool LeadingSpace);

/// <summary>
/// The one definition of how a token's text reads: the tokenizers' markers (WordPiece <c>##</c>, byte-level
/// <c>Ġ</c>/<c>Ċ</c>/<c>ĉ</c>, SentencePiece <c>▁</c>) and the escaping of characters that would draw invisibly or
/// reorder text (control, format such as bidi overrides and zero-width joiners, separators, lone surrogates), shown
/// as code points such as <c>\u{202E}</c>: nothing is silently dropped or reordered. The renderer adds its
/// font-dependent fallback on top (Rendering/TokenLabels.cs); the word view uses <see cref="WithoutMarkers"/>.
/// </summary>
public static class TokenDisplay
{
    public const string SpaceMarker = "␣";
    private const string ContinuationPrefix = "##";

    /// <summary>WordPiece's continuation piece: <c>##</c> followed by at least one character.</summary>
    public static bool IsContinuation(string text) =>
        text.Length > ContinuationPrefix.Length && text.StartsWith(ContinuationPrefix, StringComparison.Ordinal);

    /// <summary>A leading byte-level (<c>Ġ</c>) or SentencePiece (<c>▁</c>) space marker.</summary>
    public static bool HasLeadingSpace(string text) => text.Length > 0 && IsSpaceMarker(text[0]);

    private static bool IsSpaceMarker(int c) => c is 'Ġ' or '▁';

    /// <summary>
    /// A token that starts a new word whatever its span: a leading space marker (<c>Ġ</c>, <c>▁</c>), byte-level
    /// <c>Ċ</c> (a newline) or whitespace. The word view's grouping rule (Analysis/AttentionViews.GroupWords).
    /// </summary>
    public static bool StartsWord(string text) =>
        text.Length > 0 && (IsSpaceMarker(text[0]) || text[0] == 'Ċ' || char.IsWhiteSpace(text[0]));

    /// <summary>The text with its <c>##</c> or leading <c>Ġ</c>/<c>▁</c> removed (a marker alone stays), unescaped:
    /// the pieces of a word concatenate to the word. Special tokens are returned as they are.</summary>
    public static string WithoutMarkers(Token token)
    {
        var text = token.Readable ?? token.Text;
        if (token.Special) return text;
        if (IsContinuation(text)) return text[ContinuationPrefix.Length..];
        if (text.Length > 1 && HasLeadingSpace(text)) return text[1..];
        return text;
    }

    /// <summary>
    /// What the client shows for a token. The markers become flags (the client draws a continuation or a leading
    /// space its own way, e.g. <c>·ing</c>, or <c>␣</c> for a token that is only a space), and the rest is escaped as
    /// the exported images label it (<c>Ġ</c>/<c>▁</c> inside a token → <c>␣</c>, newline → <c>\n</c>, tab → <c>\t</c>,
    /// control and format characters → <c>\u{…}</c>): so the panel, the PNG and the CSV read the same, and an escape
    /// is unambiguous where a symbol such as ↵ could be a real character of the text. The font fallback is left out:
    /// the client's fonts are not the renderer's.
    /// </summary>
    public static TokenDisplayText ForClient(Token token)
    {
        var text = token.Readable ?? token.Text;
        if (token.Special) return new TokenDisplayText(Escape(text), false, false);
        if (IsContinuation(text)) return new TokenDisplayText(Escape(text[ContinuationPrefix.Length..]), true, false);
        if (HasLeadingSpace(text)) return new TokenDisplayText(Escape(text[1..]), false, true);
        return new TokenDisplayText(Escape(text), false, false);
    }

    /// <summary>
    /// The text with markers made visible (<c>Ġ</c>/<c>▁</c> → <c>␣</c>, <c>Ċ</c> → <c>\n</c>, <c>ĉ</c> → <c>\t</c>)
    /// and invisible characters escaped; <paramref name="alsoEscape"/> names more characters to escape (the renderer's
    /// characters without a glyph). <c>##</c> is kept: it says "continues the previous word".
    /// </summary>
    public static string Escape(string text, Func<Rune, bool>? alsoEscape = null)
    {
        if (text.Length == 0) return "";
        var builder = new StringBuilder(text.Length + 8);
        for (var index = 0; index < text.Length;)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out var consumed) != OperationStatus.Done)
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
                _ when IsInvisible(rune) || alsoEscape?.Invoke(rune) == true => $"\\u{{{rune.Value:X4}}}",
                _ => rune.ToString(),
            });
        }
        return builder.ToString();
    }

    private static bool IsInvisible(Rune rune) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator
            or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator;
}
