using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>A tokenizer.json "normalizer": rewrites text while keeping every unit's original span.</summary>
internal abstract class Normalizer
{
    public abstract AlignedText Normalize(AlignedText text);

    public static Normalizer? Parse(JsonElement json)
    {
        if (json.ValueKind == JsonValueKind.Null) return null;
        string type = Json.Type(json, "normalizer");
        return type switch
        {
            "Sequence" => new SequenceNormalizer([.. json.GetProperty("normalizers").EnumerateArray().Select(n => Parse(n)!)]),
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            "StripAccents" => new StripAccentsNormalizer(),
            "Strip" => new StripNormalizer(Json.Bool(json, "strip_left", true), Json.Bool(json, "strip_right", true)),
            "Prepend" => new PrependNormalizer(json.GetProperty("prepend").GetString()!),
            "Replace" => new ReplaceNormalizer(Pattern.Parse(json.GetProperty("pattern")), json.GetProperty("content").GetString()!),
            "BertNormalizer" => new BertNormalizer(
                Json.Bool(json, "clean_text", true), Json.Bool(json, "handle_chinese_chars", true),
                Json.OptionalBool(json, "strip_accents"), Json.Bool(json, "lowercase", true)),
            "Precompiled" when IsEmptyCharsmap(json) => new SequenceNormalizer([]),
            _ => throw new ModelFormatException($"Unsupported tokenizer.json normalizer type \"{type}\"."),
        };
    }

    private static bool IsEmptyCharsmap(JsonElement json) =>
        !json.TryGetProperty("precompiled_charsmap", out var map) || map.ValueKind == JsonValueKind.Null ||
        (map.ValueKind == JsonValueKind.String && map.GetString()!.Length == 0);

    /// <summary>Maps every code point (surrogate pairs together) through <paramref name="map"/>; the output units take
    /// the span of the code point they came from. <paramref name="map"/> returns null to keep the code point.</summary>
    protected static AlignedText MapCodePoints(AlignedText text, Func<Rune, string?> map)
    {
        var b = new AlignedText.Builder(text.Length, text.OriginalStart, text.MaxLength);
        bool changed = false;
        for (int i = 0; i < text.Length;)
        {
            int n = CodePointLength(text.Text, i);
            Rune r = Rune.TryGetRuneAt(text.Text, i, out var rune) ? rune : Rune.ReplacementChar;
            string? mapped = n == 1 && char.IsSurrogate(text.Text[i]) ? null : map(r);
            if (mapped is null) b.AppendFrom(text, i, i + n);
            else
            {
                changed = true;
                var (s, e) = text.OriginalSpan(i, i + n);
                b.Append(mapped, s, e);
            }
            i += n;
        }
        return changed ? b.Build() : text;
    }

    public static int CodePointLength(string s, int i) =>
        char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
}

internal sealed class SequenceNormalizer(Normalizer[] items) : Normalizer
{
    public override AlignedText Normalize(AlignedText text)
    {
        foreach (var n in items) text = n.Normalize(text);
        return text;
    }
}

/// <summary>NFC/NFD/NFKC/NFKD through .NET (ICU). Text is normalized cluster by cluster (a starter and the marks after it),
/// so each output unit keeps the span of its cluster.</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
{
    public override AlignedText Normalize(AlignedText text)
    {
        if (text.Text.IsNormalized(form)) return text;
        var b = new AlignedText.Builder(text.Length + 8, text.OriginalStart, text.MaxLength);
        for (int i = 0; i < text.Length;)
        {
            int j = i + CodePointLength(text.Text, i);
            while (j < text.Length && Continues(text.Text, j)) j += CodePointLength(text.Text, j);
            string cluster = text.Text[i..j];
            string normalized;
            try { normalized = cluster.Normalize(form); }
            catch (ArgumentException) { normalized = cluster; } // a lone surrogate: left as it is
            if (normalized == cluster) b.AppendFrom(text, i, j);
            else if (normalized.Length == j - i && SameCodePointCount(cluster, normalized))
            {
                // Same shape (e.g. a compatibility character to one other): unit-by-unit alignment.
                for (int k = 0; k < normalized.Length; k++) b.Append(normalized[k], text.Start[i + k], text.End[i + k]);
            }
            else
            {
                var (s, e) = text.OriginalSpan(i, j);
                b.Append(normalized, s, e);
            }
            i = j;
        }
        return b.Build();
    }

    private static bool SameCodePointCount(string a, string b) => a.EnumerateRunes().Count() == b.EnumerateRunes().Count();

    /// <summary>True when the code point at <paramref name="i"/> may combine with what precedes it.</summary>
    private static bool Continues(string s, int i)
    {
        if (!Rune.TryGetRuneAt(s, i, out var r)) return false;
        if (r.Value is >= 0x1160 and <= 0x11FF) return true; // Hangul medial vowels and final consonants
        if (r.Value is >= 0x3099 and <= 0x309A) return true; // kana voicing marks
        var cat = Rune.GetUnicodeCategory(r);
        return cat is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;
    }
}

/// <summary>Rust's char::to_lowercase per code point (full mapping: 'İ' → "i̇"; no final-sigma rule, as HF).</summary>
internal sealed class LowercaseNormalizer : Normalizer
{
    public override AlignedText Normalize(AlignedText text) => MapCodePoints(text, Lower);

    public static string? Lower(Rune r)
    {
        if (r.Value == 0x130) return "i\u0307";
        var l = Rune.ToLowerInvariant(r);
        return l == r ? null : l.ToString();
    }
}

internal sealed class StripAccentsNormalizer : Normalizer
{
    public override AlignedText Normalize(AlignedText text) =>
        MapCodePoints(text, r => Rune.GetUnicodeCategory(r) == UnicodeCategory.NonSpacingMark ? "" : null);
}

internal sealed class StripNormalizer(bool left, bool right) : Normalizer
{
    public override AlignedText Normalize(AlignedText text)
    {
        int from = 0, to = text.Length;
        if (left) while (from < to && char.IsWhiteSpace(text.Text[from])) from++;
        if (right) while (to > from && char.IsWhiteSpace(text.Text[to - 1])) to--;
        return text.Slice(from, to);
    }
}

/// <summary>Prepends a string to non-empty text; the new units take the first unit's span (as HF).</summary>
internal sealed class PrependNormalizer(string prepend) : Normalizer
{
    public override AlignedText Normalize(AlignedText text)
    {
        if (text.Length == 0) return text;
        var b = new AlignedText.Builder(text.Length + prepend.Length, text.OriginalStart, text.MaxLength);
        b.Append(prepend, text.Start[0], text.End[0]);
        b.AppendFrom(text, 0, text.Length);
        return b.Build();
    }
}

/// <summary>Replaces every match of a pattern; the replacement's units take the span of the match.</summary>
internal sealed class ReplaceNormalizer(Pattern pattern, string content) : Normalizer
{
    public override AlignedText Normalize(AlignedText text)
    {
        var matches = pattern.Matches(text.Text);
        if (matches.Count == 0) return text;
        var b = new AlignedText.Builder(text.Length, text.OriginalStart, text.MaxLength);
        int at = 0;
        foreach (var (s, e) in matches)
        {
            b.AppendFrom(text, at, s);
            var (os, oe) = text.OriginalSpan(s, e);
            b.Append(content, os, oe);
            at = e;
        }
        b.AppendFrom(text, at, text.Length);
        return b.Build();
    }
}

/// <summary>HF's BertNormalizer: clean text, pad CJK ideographs with spaces, strip accents, lower-case.</summary>
internal sealed class BertNormalizer(bool cleanText, bool chineseChars, bool? stripAccents, bool lowercase) : Normalizer
{
    public override AlignedText Normalize(AlignedText text)
    {
        if (cleanText)
        {
            text = MapCodePoints(text, r =>
            {
                // As tokenizers' bert.rs: control characters (Cc Cf Cn Co, not \t \n \r) go first, then whitespace → ' '.
                if (r.Value is 0 or 0xFFFD) return "";
                var cat = Rune.GetUnicodeCategory(r);
                if (r.Value is not ('\t' or '\n' or '\r') && cat is UnicodeCategory.Control or UnicodeCategory.Format
                        or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.Surrogate)
                    return "";
                if (r.Value is '\t' or '\n' or '\r' || Rune.IsWhiteSpace(r)) return r.Value == ' ' ? null : " ";
                return null;
            });
        }
        if (chineseChars) text = MapCodePoints(text, r => BertCharacterClasses.IsChineseChar(r.Value) ? " " + r + " " : null);
        if (stripAccents ?? lowercase)
        {
            text = new UnicodeNormalizer(NormalizationForm.FormD).Normalize(text);
            text = new StripAccentsNormalizer().Normalize(text);
        }
        if (lowercase) text = new LowercaseNormalizer().Normalize(text);
        return text;
    }
}

/// <summary>A tokenizer.json pattern: {"String": literal} or {"Regex": Oniguruma-style regex}.</summary>
internal sealed class Pattern
{
    private readonly string? _literal;
    private readonly CodePointRegex? _regex;
    private readonly Func<string, List<(int, int)>>? _known;

    private Pattern(string? literal, CodePointRegex? regex)
    {
        _literal = literal;
        _regex = regex;
        if (regex is not null) _known = KnownSplitPatterns.For(regex.Pattern);
    }

    public static Pattern Parse(JsonElement json)
    {
        if (json.TryGetProperty("String", out var s)) return new Pattern(s.GetString()!, null);
        if (json.TryGetProperty("Regex", out var r)) return new Pattern(null, new CodePointRegex(r.GetString()!));
        throw new ModelFormatException($"Unsupported tokenizer.json pattern {json.GetRawText()}.");
    }

    public static Pattern FromRegex(string regex) => new(null, new CodePointRegex(regex));

    /// <summary>Non-overlapping, non-empty matches as UTF-16 [start, end).</summary>
    public List<(int Start, int End)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (_literal is not null)
        {
            if (_literal.Length == 0) return result;
            for (int at = text.IndexOf(_literal, StringComparison.Ordinal); at >= 0;
                 at = text.IndexOf(_literal, at + _literal.Length, StringComparison.Ordinal))
                result.Add((at, at + _literal.Length));
            return result;
        }
        return _known is not null ? _known(text) : _regex!.Matches(text);
    }

    /// <summary>The regex engine's matches, even for a pattern with a hand-written matcher (for cross-checks).</summary>
    internal List<(int Start, int End)> RegexMatches(string text) => _regex!.Matches(text);
}
