using System.Globalization;
using System.Text;
using System.Text.Json;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>A tokenizer.json "pre_tokenizer": splits (and may rewrite) normalized text into pieces for the model.</summary>
internal abstract class PreTokenizer
{
    public abstract void PreTokenize(List<AlignedText> pieces);

    public static PreTokenizer? Parse(JsonElement json)
    {
        if (json.ValueKind == JsonValueKind.Null) return null;
        string type = Json.Type(json, "pre_tokenizer");
        return type switch
        {
            "Sequence" => new SequencePreTokenizer([.. json.GetProperty("pretokenizers").EnumerateArray().Select(p => Parse(p)!)]),
            "ByteLevel" => new ByteLevelPreTokenizer(Json.Bool(json, "add_prefix_space", true), Json.Bool(json, "use_regex", true)),
            "Metaspace" => MetaspacePreTokenizer.FromJson(json),
            "BertPreTokenizer" => new BertPreTokenizer(),
            "Whitespace" => new SplitPreTokenizer(Pattern.FromRegex(@"\w+|[^\w\s]+"), SplitBehavior.Removed, invert: true),
            "WhitespaceSplit" => new WhitespaceSplitPreTokenizer(),
            "Punctuation" => new PunctuationPreTokenizer(SplitBehaviors.Parse(json, "behavior", SplitBehavior.Isolated)),
            "Digits" => new DigitsPreTokenizer(Json.Bool(json, "individual_digits", false)),
            "Split" => new SplitPreTokenizer(Pattern.Parse(json.GetProperty("pattern")),
                SplitBehaviors.Parse(json, "behavior", SplitBehavior.Isolated), Json.Bool(json, "invert", false)),
            _ => throw new ModelFormatException($"Unsupported tokenizer.json pre_tokenizer type \"{type}\"."),
        };
    }

    /// <summary>Replaces every piece by the pieces <paramref name="split"/> makes of it.</summary>
    protected static void ForEachPiece(List<AlignedText> pieces, Action<AlignedText, List<AlignedText>> split)
    {
        var result = new List<AlignedText>(pieces.Count * 2);
        foreach (var piece in pieces) split(piece, result);
        pieces.Clear();
        pieces.AddRange(result);
    }
}

internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

internal static class SplitBehaviors
{
    public static SplitBehavior Parse(JsonElement json, string name, SplitBehavior fallback)
    {
        if (!json.TryGetProperty(name, out var b) || b.ValueKind == JsonValueKind.Null) return fallback;
        return b.GetString() switch
        {
            "Removed" => SplitBehavior.Removed,
            "Isolated" => SplitBehavior.Isolated,
            "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
            "MergedWithNext" => SplitBehavior.MergedWithNext,
            "Contiguous" => SplitBehavior.Contiguous,
            var other => throw new ModelFormatException($"Unsupported tokenizer.json split behavior \"{other}\"."),
        };
    }

    /// <summary>HF's NormalizedString::split: <paramref name="matches"/> are sorted, non-overlapping [start, end).</summary>
    public static void Split(AlignedText text, List<(int Start, int End)> matches, SplitBehavior behavior, bool invert,
        List<AlignedText> output)
    {
        // Every unit range with whether it is a match (after inversion).
        var spans = new List<(int Start, int End, bool Match)>(matches.Count * 2 + 1);
        int at = 0;
        foreach (var (s, e) in matches)
        {
            if (s > at) spans.Add((at, s, invert));
            spans.Add((s, e, !invert));
            at = e;
        }
        if (at < text.Length) spans.Add((at, text.Length, invert));

        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var (s, e, m) in spans) if (!m) output.Add(text.Slice(s, e));
                break;
            case SplitBehavior.Isolated:
                foreach (var (s, e, _) in spans) output.Add(text.Slice(s, e));
                break;
            case SplitBehavior.Contiguous:
                for (int i = 0; i < spans.Count;)
                {
                    int j = i + 1;
                    while (j < spans.Count && spans[j].Match == spans[i].Match) j++;
                    output.Add(text.Slice(spans[i].Start, spans[j - 1].End));
                    i = j;
                }
                break;
            case SplitBehavior.MergedWithPrevious:
                {
                    int start = -1, end = -1;
                    foreach (var (s, e, m) in spans)
                    {
                        if (m && start >= 0) { end = e; output.Add(text.Slice(start, end)); start = -1; }
                        else if (m) output.Add(text.Slice(s, e));
                        else
                        {
                            if (start >= 0) output.Add(text.Slice(start, end));
                            start = s;
                            end = e;
                        }
                    }
                    if (start >= 0) output.Add(text.Slice(start, end));
                    break;
                }
            case SplitBehavior.MergedWithNext:
                {
                    int pending = -1;
                    foreach (var (s, e, m) in spans)
                    {
                        if (m)
                        {
                            if (pending >= 0) output.Add(text.Slice(pending, s));
                            pending = s;
                        }
                        else
                        {
                            output.Add(text.Slice(pending >= 0 ? pending : s, e));
                            pending = -1;
                        }
                    }
                    if (pending >= 0) output.Add(text.Slice(pending, text.Length));
                    break;
                }
        }
    }
}

internal sealed class SequencePreTokenizer(PreTokenizer[] items) : PreTokenizer
{
    public IReadOnlyList<PreTokenizer> Items => items;

    public override void PreTokenize(List<AlignedText> pieces)
    {
        foreach (var p in items) p.PreTokenize(pieces);
    }
}

internal sealed class SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert) : PreTokenizer
{
    public override void PreTokenize(List<AlignedText> pieces) =>
        ForEachPiece(pieces, (piece, output) => SplitBehaviors.Split(piece, pattern.Matches(piece.Text), behavior, invert, output));
}

internal sealed class WhitespaceSplitPreTokenizer : PreTokenizer
{
    public override void PreTokenize(List<AlignedText> pieces) => ForEachPiece(pieces, (piece, output) =>
    {
        var matches = new List<(int, int)>();
        for (int i = 0; i < piece.Length;)
        {
            if (!char.IsWhiteSpace(piece.Text[i])) { i++; continue; }
            int j = i;
            while (j < piece.Length && char.IsWhiteSpace(piece.Text[j])) j++;
            matches.Add((i, j));
            i = j;
        }
        SplitBehaviors.Split(piece, matches, SplitBehavior.Removed, false, output);
    });
}

/// <summary>HF's BertPreTokenizer: whitespace removed, every punctuation character isolated.</summary>
internal sealed class BertPreTokenizer : PreTokenizer
{
    public override void PreTokenize(List<AlignedText> pieces) => ForEachPiece(pieces, (piece, output) =>
    {
        var whitespace = new List<(int, int)>();
        for (int i = 0; i < piece.Length;)
        {
            int n = Normalizer.CodePointLength(piece.Text, i);
            if (char.IsWhiteSpace(piece.Text, i)) whitespace.Add((i, i + n));
            i += n;
        }
        var words = new List<AlignedText>();
        SplitBehaviors.Split(piece, whitespace, SplitBehavior.Removed, false, words);
        foreach (var w in words)
            SplitBehaviors.Split(w, PunctuationPreTokenizer.PunctuationMatches(w.Text), SplitBehavior.Isolated, false, output);
    });
}

internal sealed class PunctuationPreTokenizer(SplitBehavior behavior) : PreTokenizer
{
    public override void PreTokenize(List<AlignedText> pieces) =>
        ForEachPiece(pieces, (piece, output) => SplitBehaviors.Split(piece, PunctuationMatches(piece.Text), behavior, false, output));

    public static List<(int, int)> PunctuationMatches(string s)
    {
        var result = new List<(int, int)>();
        for (int i = 0; i < s.Length;)
        {
            int n = Normalizer.CodePointLength(s, i);
            if (BertCharacterClasses.IsPunctuation(n == 2 ? char.ConvertToUtf32(s[i], s[i + 1]) : s[i])) result.Add((i, i + n));
            i += n;
        }
        return result;
    }
}

internal sealed class DigitsPreTokenizer(bool individual) : PreTokenizer
{
    public override void PreTokenize(List<AlignedText> pieces) => ForEachPiece(pieces, (piece, output) =>
    {
        var matches = new List<(int, int)>();
        for (int i = 0; i < piece.Length; i++)
        {
            if (!char.IsAsciiDigit(piece.Text[i])
                && CharUnicodeInfo.GetUnicodeCategory(piece.Text[i]) != UnicodeCategory.DecimalDigitNumber) continue;
            matches.Add((i, i + 1));
        }
        SplitBehaviors.Split(piece, matches, individual ? SplitBehavior.Isolated : SplitBehavior.Contiguous, false, output);
    });
}

/// <summary>HF's Metaspace: spaces become the replacement (▁), which is prepended per the scheme, then split before it.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, string prependScheme, bool split) : PreTokenizer
{
    public static MetaspacePreTokenizer FromJson(JsonElement json)
    {
        string rep = json.TryGetProperty("replacement", out var r) ? r.GetString()! : "\u2581";
        string scheme = json.TryGetProperty("prepend_scheme", out var p) && p.ValueKind == JsonValueKind.String
            ? p.GetString()!
            : Json.Bool(json, "add_prefix_space", true) ? "always" : "never";
        if (scheme is not ("always" or "first" or "never"))
            throw new ModelFormatException($"Unsupported Metaspace prepend_scheme \"{scheme}\".");
        if (rep.Length != 1) throw new ModelFormatException($"Unsupported Metaspace replacement \"{rep}\" (one UTF-16 unit expected).");
        return new MetaspacePreTokenizer(rep[0], scheme, Json.Bool(json, "split", true));
    }

    public override void PreTokenize(List<AlignedText> pieces) => ForEachPiece(pieces, (piece, output) =>
    {
        var b = new AlignedText.Builder(piece.Length + 1, piece.OriginalStart);
        bool prepend = piece.Length > 0 && piece.Text[0] != replacement && piece.Text[0] != ' ' &&
            (prependScheme == "always" || (prependScheme == "first" && piece.OriginalStart == 0));
        if (prepend) b.Append(replacement, piece.Start[0], piece.End[0]);
        for (int i = 0; i < piece.Length; i++)
            b.Append(piece.Text[i] == ' ' ? replacement : piece.Text[i], piece.Start[i], piece.End[i]);
        var text = b.Build();
        if (!split) { output.Add(text); return; }
        var matches = new List<(int, int)>();
        for (int i = 0; i < text.Length; i++) if (text.Text[i] == replacement) matches.Add((i, i + 1));
        SplitBehaviors.Split(text, matches, SplitBehavior.MergedWithNext, false, output);
    });
}

/// <summary>HF's ByteLevel pre-tokenizer: optional prefix space, the GPT-2 regex split, then every UTF-8 byte mapped to a
/// printable character (GPT-2's bytes_to_unicode). Every byte of a character carries the character's span.</summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    private static readonly Pattern Gpt2Pattern = Pattern.FromRegex(KnownSplitPatterns.Gpt2);

    public static readonly char[] ByteToChar = BuildByteToChar();

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is (>= '!' and <= '~') or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    public override void PreTokenize(List<AlignedText> pieces)
    {
        if (addPrefixSpace)
        {
            for (int i = 0; i < pieces.Count; i++)
            {
                var p = pieces[i];
                if (p.Length == 0 || p.Text[0] == ' ') continue;
                var b = new AlignedText.Builder(p.Length + 1, p.OriginalStart);
                b.Append(' ', p.Start[0], p.End[0]);
                b.AppendFrom(p, 0, p.Length);
                pieces[i] = b.Build();
            }
        }
        if (useRegex)
            ForEachPiece(pieces,
                (piece, output) => SplitBehaviors.Split(piece, Gpt2Pattern.Matches(piece.Text), SplitBehavior.Isolated, false, output));
        for (int i = 0; i < pieces.Count; i++) pieces[i] = ToBytes(pieces[i]);
    }

    public static AlignedText ToBytes(AlignedText piece)
    {
        var text = piece.Span;
        var pieceStart = piece.Start;
        var pieceEnd = piece.End;
        int bytes = 0;
        bool identity = true;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c < 0x80) { bytes++; if (ByteToChar[c] != c) identity = false; continue; }
            identity = false;
            if (c < 0x800) bytes += 2;
            else if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { bytes += 4; i++; }
            else bytes += 3; // including a lone surrogate, encoded as U+FFFD
        }
        if (identity) return piece;
        var chars = new char[bytes];
        var start = new int[bytes];
        var end = new int[bytes];
        Span<byte> utf8 = stackalloc byte[4];
        int o = 0;
        for (int i = 0; i < text.Length;)
        {
            char c = text[i];
            if (c < 0x80)
            {
                chars[o] = ByteToChar[c]; start[o] = pieceStart[i]; end[o] = pieceEnd[i]; o++; i++;
                continue;
            }
            int n = char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            Rune r = n == 2 ? new Rune(c, text[i + 1]) : Rune.IsValid(c) ? new Rune(c) : Rune.ReplacementChar;
            int len = r.EncodeToUtf8(utf8);
            int s = pieceStart[i], e = pieceEnd[i + n - 1];
            for (int k = 0; k < len; k++) { chars[o] = ByteToChar[utf8[k]]; start[o] = s; end[o] = e; o++; }
            i += n;
        }
        return new AlignedText(new string(chars), start, end, piece.OriginalStart);
    }
}
