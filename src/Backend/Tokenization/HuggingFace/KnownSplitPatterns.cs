using System.Globalization;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>
/// Hand-written matchers for the three split regexes nearly every byte-level tokenizer uses (GPT-2's, Llama-3's and
/// Qwen's), with the same leftmost-first alternation and backtracking results as the regex, on code points. .NET's
/// regex engine takes ~1 s per MB on them; these take a few tens of ms. A test cross-checks them against the regex.
/// </summary>
internal static class KnownSplitPatterns
{
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    public const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|" +
        @" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Qwen = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static Func<string, List<(int, int)>>? For(string pattern) => pattern switch
    {
        Gpt2 => MatchGpt2,
        Llama3 => s => MatchLlama(s, 3),
        Qwen => s => MatchLlama(s, 1),
        _ => null,
    };

    private const byte Letter = 1, Number = 2, Space = 3, Other = 4;

    private static byte Class(string s, int i)
    {
        char c = s[i];
        if (c < 128)
        {
            if (char.IsAsciiLetter(c)) return Letter;
            if (char.IsAsciiDigit(c)) return Number;
            return c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f' ? Space : Other;
        }
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            return Category(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, s[i + 1])));
        if (char.IsWhiteSpace(c)) return Space;
        return Category(CharUnicodeInfo.GetUnicodeCategory(c));
    }

    private static byte Category(UnicodeCategory cat) => cat switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Letter,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Number,
        UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => Space,
        _ => Other,
    };

    private static int Next(string s, int i) =>
        char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? i + 2 : i + 1;

    private static int Run(string s, int i, byte cls, int max = int.MaxValue)
    {
        for (int n = 0; i < s.Length && n < max && Class(s, i) == cls; n++) i = Next(s, i);
        return i;
    }

    /// <summary>'s 't 're 've 'm 'll 'd at i (ASCII case-insensitive when <paramref name="ignoreCase"/>): the end, or -1.</summary>
    private static int Contraction(string s, int i, bool ignoreCase)
    {
        if (s[i] != '\'' || i + 1 >= s.Length) return -1;
        char Lower(char c) => ignoreCase ? char.ToLowerInvariant(c) : c;
        char a = Lower(s[i + 1]);
        if (a is 's' or 't' or 'm' or 'd') return i + 2;
        if (i + 2 >= s.Length) return -1;
        char b = Lower(s[i + 2]);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        return -1;
    }

    private static int WhitespaceTail(string s, int i)
    {
        int k = Run(s, i, Space);
        if (k == s.Length) return k;                 // \s+(?!\S) at the end of the text
        int last = i;                                 // \s+(?!\S): leave the last space for the next word
        for (int j = i; j < k; j = Next(s, j)) if (Next(s, j) < k) last = Next(s, j);
        return last > i ? last : k;                   // else \s+
    }

    private static List<(int, int)> MatchGpt2(string s)
    {
        var result = new List<(int, int)>(s.Length / 4 + 1);
        for (int i = 0; i < s.Length;)
        {
            int end = Contraction(s, i, ignoreCase: false);
            if (end < 0)
            {
                int j = s[i] == ' ' && i + 1 < s.Length ? i + 1 : i;
                byte cls = Class(s, j);
                if (j > i && cls == Space) j = i;
                cls = Class(s, j);
                end = cls == Space ? WhitespaceTail(s, i) : Run(s, j, cls);
            }
            result.Add((i, end));
            i = end;
        }
        return result;
    }

    private static List<(int, int)> MatchLlama(string s, int maxDigits)
    {
        var result = new List<(int, int)>(s.Length / 4 + 1);
        for (int i = 0; i < s.Length;)
        {
            int end = Contraction(s, i, ignoreCase: true);
            if (end < 0)
            {
                byte cls = Class(s, i);
                int next = Next(s, i);
                if (cls == Letter) end = Run(s, i, Letter);
                else if (s[i] is not ('\r' or '\n') && cls != Number && next < s.Length && Class(s, next) == Letter) end = Run(s, next, Letter);
                else if (cls == Number) end = Run(s, i, Number, maxDigits);
                else if (cls == Other || (s[i] == ' ' && next < s.Length && Class(s, next) == Other))
                {
                    end = Run(s, cls == Other ? i : next, Other);
                    while (end < s.Length && s[end] is '\r' or '\n') end++;
                }
                else
                {
                    // \s*[\r\n]+ up to the last \r or \n of the whitespace run; else \s+(?!\S) | \s+.
                    int k = Run(s, i, Space), lastNewline = -1;
                    for (int j = i; j < k; j++) if (s[j] is '\r' or '\n') lastNewline = j;
                    end = lastNewline >= 0 ? lastNewline + 1 : WhitespaceTail(s, i);
                }
            }
            result.Add((i, end));
            i = end;
        }
        return result;
    }
}
