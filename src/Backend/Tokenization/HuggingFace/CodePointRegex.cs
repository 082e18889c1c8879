using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using AttentionViz.Backend.Errors;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>
/// A tokenizer.json regex run with .NET's engine, but on code points as HF's Oniguruma does: .NET matches UTF-16 units,
/// so a supplementary character (𠀀, 𝐀, emoji) would be a surrogate pair of category Cs and miss \p{L}. When the text has
/// surrogate pairs, each is replaced by one BMP stand-in of the same general category before matching, and match
/// positions are mapped back.
/// </summary>
internal sealed class CodePointRegex(string pattern)
{
    /// <summary>
    /// Per match: the patterns in use match a token in microseconds; a catastrophic one ((a+)+$ on 40 a's and a !)
    /// would take hours. .NET's timeout stops it, rather than NonBacktracking, which has no lookarounds (GPT-2's `(?!\S)`).
    /// </summary>
    internal static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    // An invalid pattern throws ArgumentException here, which the loader reports as the file's error (TokenizerFileErrorTests).
    private readonly Regex _regex = new(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, MatchTimeout);

    public string Pattern => pattern;

    private static string Shown(string pattern) => pattern.Length <= 80 ? $"`{pattern}`" : $"`{pattern[..77]}...`";

    public List<(int Start, int End)> Matches(string text)
    {
        try
        {
            return MatchAll(text);
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new ModelFormatException(
                $"tokenizer.json: the regular expression {Shown(pattern)} took more than {MatchTimeout.TotalSeconds:0} s on a " +
                $"{text.Length:N0}-character text: it backtracks catastrophically (nested quantifiers such as (a+)+); " +
                "the tokenizer cannot be used as it is.", e);
        }
    }

    private List<(int Start, int End)> MatchAll(string text)
    {
        var result = new List<(int, int)>();
        if (text.Length == 0) return result;
        if (!HasSurrogates(text))
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch())
                if (m.Length > 0) result.Add((m.Index, m.Index + m.Length));
            return result;
        }
        var proxy = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            map.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                proxy.Append(StandIn(char.ConvertToUtf32(text[i], text[i + 1])));
                i++;
            }
            else proxy.Append(text[i]);
        }
        map.Add(text.Length);
        for (var m = _regex.Match(proxy.ToString()); m.Success; m = m.NextMatch())
            if (m.Length > 0) result.Add((map[m.Index], map[m.Index + m.Length]));
        return result;
    }

    private static bool HasSurrogates(string text) =>
        text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    private static char StandIn(int codePoint) => CharUnicodeInfo.GetUnicodeCategory(codePoint) switch
    {
        UnicodeCategory.UppercaseLetter => '\u00C0',
        UnicodeCategory.LowercaseLetter => '\u00E0',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u05D0',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u00A1',
        UnicodeCategory.MathSymbol => '\u00AC',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u00B4',
        UnicodeCategory.OtherSymbol => '\u00A6',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\u0378', // unassigned
    };
}
