using System.Globalization;
using System.Text;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Tokenization;

/// <summary>
/// Hugging Face's BertTokenizer (BasicTokenizer + WordPiece), as used by all-MiniLM-L6-v2 (uncased), with every token's
/// span in the ORIGINAL text in UTF-16 code units. Immutable after creation and safe to share between threads.
/// 1 MB of text takes ~60–100 ms once warm (~250 ms on the first, unjitted call).
/// </summary>
/// <remarks>
/// <para>Why not Microsoft.ML.Tokenizers' BertTokenizer: its pre-tokenizer is not faithful for code (it drops
/// <c>= + | &lt; &gt; $ ~ ^</c> and backticks, deletes tabs and newlines, splits <c>foo_bar</c> wrongly) and reports
/// offsets into its normalized text. So the basic tokenizer is written here. The library's WordPiece model is exact (a
/// test cross-checks ours against it), but it works on one word string at a time with its own offsets; the WordPiece
/// here is a short greedy loop over span-keyed dictionary lookups (no allocation per candidate) that keeps the
/// normalized→original map in the same pass.</para>
/// <para>The basic tokenizer, one original code point at a time:
/// clean text (drop U+0000, U+FFFD and categories C*; whitespace → separator), isolate CJK ideographs,
/// lower-case (with Python's full mapping for 'İ' and its final-sigma rule for 'Σ') and NFD + drop Mn (own table, see
/// <see cref="CanonicalDecomposition"/>), split on punctuation (ASCII 33–47, 58–64, 91–96, 123–126 and categories P*).
/// Every normalized UTF-16 unit remembers the original code point it came from, so a token's span covers whole
/// original code points (surrogate pairs are never split). When a word piece boundary falls inside the expansion of one
/// original character (e.g. a Hangul syllable decomposed into jamo), both pieces cover that character.</para>
/// <para>As in HF, the special tokens' exact strings in the text ("[SEP]", …) are split out as those tokens; such a
/// token has its real span and <see cref="Token.Special"/> false, like an [UNK] made from text. Inserted [CLS]/[SEP]
/// span [0,0) with Special true. A lone surrogate (invalid UTF-16) becomes an [UNK] token of its own with its span
/// (HF would drop it as category Cs). A character that normalizes to nothing (a stripped accent, a variation selector)
/// joins the span of the character right before it. Unicode categories come from .NET's own data (Unicode 16 in .NET 10):
/// a character that .NET does not know yet is unassigned (Cn) and dropped, as HF's clean_text drops every C*.</para>
/// </remarks>
public sealed class BertTokenizer : IModelTokenizer
{
    public const int MaxInputCharsPerWord = 100;
    private const string ContinuationPrefix = "##";

    /// <summary>HF's all_special_tokens of BertTokenizer.</summary>
    private static readonly string[] SpecialTokenStrings = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    private readonly string[] _idToToken;
    private readonly Dictionary<string, int> _vocab;
    private readonly WordPiece _wordPiece;
    private readonly HashSet<int> _specialIds = [];
    private readonly (string Text, int Id)[] _specialInText;

    public bool LowerCase { get; }
    public int UnknownTokenId { get; }
    public int ClsTokenId { get; }
    public int SepTokenId { get; }
    public int VocabularySize => _idToToken.Length;
    public int SpecialTokenCount => 2;
    public int PairSpecialTokenCount => 3;

    /// <param name="invalid">the exception for a vocabulary that cannot be used: an argument error for a list in
    /// memory, a format error for a vocab.txt</param>
    private BertTokenizer(IReadOnlyList<string> vocab, bool lowerCase, Func<string, Exception> invalid)
    {
        LowerCase = lowerCase;
        _idToToken = [.. vocab];
        // As HF's load_vocab: a duplicated line maps to its last id.
        _vocab = new Dictionary<string, int>(_idToToken.Length, StringComparer.Ordinal);
        for (int id = 0; id < _idToToken.Length; id++)
            _vocab[_idToToken[id] ?? throw invalid($"Vocabulary entry {id} is null.")] = id;
        _wordPiece = new WordPiece(_vocab, ContinuationPrefix, MaxInputCharsPerWord);

        UnknownTokenId = Require("[UNK]");
        ClsTokenId = Require("[CLS]");
        SepTokenId = Require("[SEP]");
        var inText = new List<(string, int)>();
        foreach (string s in SpecialTokenStrings)
            if (_vocab.TryGetValue(s, out int id)) { _specialIds.Add(id); inText.Add((s, id)); }
        _specialInText = [.. inText];

        int Require(string token) => _vocab.TryGetValue(token, out int id)
            ? id
            : throw invalid($"The vocabulary has no {token} token.");
    }

    /// <summary>A tokenizer over <paramref name="vocab"/> (id = index). <paramref name="lowerCase"/> also strips accents, as HF
    /// does when strip_accents is unset.</summary>
    public static BertTokenizer FromVocabulary(IReadOnlyList<string> vocab, bool lowerCase = true)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        return new BertTokenizer(vocab, lowerCase, message => new ArgumentException(message, nameof(vocab)));
    }

    /// <summary>Reads a vocab.txt (one token per line; LF, CRLF or CR line endings, as Python's universal newlines).</summary>
    public static BertTokenizer FromVocabFile(string path, bool lowerCase = true)
    {
        var lines = TokenizerFile.ReadLines(path);
        return TokenizerFile.Read(path, () => new BertTokenizer(lines, lowerCase, message => new ModelFormatException(message)));
    }

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>The id of a vocabulary string, or null.</summary>
    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;

    /// <summary>True for [PAD] [UNK] [CLS] [SEP] [MASK] (HF's all_special_ids).</summary>
    public bool IsSpecial(int id) => _specialIds.Contains(id);

    public IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> content)
    {
        ArgumentNullException.ThrowIfNull(content);
        var result = new List<Token>(content.Count + 2) { new(ClsTokenId, _idToToken[ClsTokenId], 0, 0, true) };
        result.AddRange(content);
        result.Add(new Token(SepTokenId, _idToToken[SepTokenId], 0, 0, true));
        return result;
    }

    /// <summary>HF's BERT pair: [CLS] A [SEP] B [SEP], type id 0 up to the first [SEP] and 1 after it.</summary>
    public IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> first, IReadOnlyList<Token>? second)
    {
        ArgumentNullException.ThrowIfNull(first);
        if (second is null) return AddSpecialTokens(first);
        var result = new List<Token>(first.Count + second.Count + 3) { new(ClsTokenId, _idToToken[ClsTokenId], 0, 0, true) };
        foreach (var t in first) result.Add(t.TypeId == 0 ? t : t with { TypeId = 0 });
        result.Add(new Token(SepTokenId, _idToToken[SepTokenId], 0, 0, true));
        foreach (var t in second) result.Add(t.TypeId == 1 ? t : t with { TypeId = 1 });
        result.Add(new Token(SepTokenId, _idToToken[SepTokenId], 0, 0, true, 1));
        return result;
    }

    public IReadOnlyList<Token> Tokenize(string text) => Tokenize(text, int.MaxValue);

    /// <summary>Content tokens of <paramref name="text"/>, stopping once <paramref name="maxTokens"/> tokens are made
    /// (the result is exactly the first <paramref name="maxTokens"/> tokens of the full tokenization).</summary>
    public IReadOnlyList<Token> Tokenize(string text, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        var run = new Run(this, text, maxTokens);
        run.Execute();
        return run.Tokens;
    }

    // ---- Character classes -------------------------------------------------------------------------------------

    private const byte AsciiDrop = 0, AsciiSpace = 1, AsciiPunct = 2, AsciiWord = 3;

    private static readonly byte[] AsciiClass = BuildAsciiClass();

    private static byte[] BuildAsciiClass()
    {
        var table = new byte[128];
        for (int c = 0; c < 128; c++)
        {
            table[c] = c switch
            {
                ' ' or '\t' or '\n' or '\r' => AsciiSpace,
                < 0x20 or 0x7F => AsciiDrop, // category Cc (including U+0000)
                (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126) => AsciiPunct,
                _ => AsciiWord,
            };
        }
        return table;
    }

    private static bool IsDropped(UnicodeCategory cat) => cat is UnicodeCategory.Control or UnicodeCategory.Format
        or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;

    // Python's str.split() also splits on U+2028/U+2029 (categories Zl, Zp), which HF's clean_text keeps.
    private static bool IsSpace(UnicodeCategory cat) => cat is UnicodeCategory.SpaceSeparator
        or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;

    // Unicode Case_Ignorable and Cased, for the Final_Sigma condition of SpecialCasing.txt (what Python's str.lower uses).
    private static bool IsCaseIgnorable(int cp, UnicodeCategory cat) =>
        cat is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol
        || cp is 0x27 or 0x2E or 0x3A or 0xB7 or 0x387 or 0x55F or 0x5F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027
            or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;

    private static bool IsCased(int cp, UnicodeCategory cat) =>
        cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
        || cp is 0xAA or 0xBA or (>= 0x2B0 and <= 0x2B8) or 0x2C0 or 0x2C1 or (>= 0x2E0 and <= 0x2E4) or 0x345 or 0x37A
            or (>= 0x1D2C and <= 0x1D6A) or 0x1D78 or (>= 0x1D9B and <= 0x1DBF) or 0x2071 or 0x207F
            or (>= 0x2090 and <= 0x209C) or (>= 0x2160 and <= 0x217F) or (>= 0x24B6 and <= 0x24E9) or 0x2C7C or 0x2C7D
            or 0xA69C or 0xA69D or 0xA770 or 0xA7F8 or 0xA7F9 or (>= 0xAB5C and <= 0xAB5F)
            or (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189);

    /// <summary>Reads the code point at <paramref name="i"/>; a lone surrogate reads as itself (length 1).</summary>
    private static int CodePointAt(string text, int i, out int length)
    {
        char c = text[i];
        if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
        {
            length = 2;
            return char.ConvertToUtf32(c, text[i + 1]);
        }
        length = 1;
        return c;
    }

    private static bool IsDroppedAt(int cp) =>
        cp is 0 or 0xFFFD || (cp is not ('\t' or '\n' or '\r') && IsDropped(CharUnicodeInfo.GetUnicodeCategory(cp)));

    /// <summary>Final_Sigma: a cased letter before (skipping case-ignorables) and none after. Characters that clean_text
    /// drops are skipped, because Python lower-cases the cleaned text.</summary>
    private static bool IsFinalSigma(string text, int index, int length)
    {
        bool casedBefore = false;
        for (int j = index - 1; j >= 0; j--)
        {
            int cp = text[j];
            if (char.IsLowSurrogate(text[j]) && j > 0 && char.IsHighSurrogate(text[j - 1]))
            {
                cp = char.ConvertToUtf32(text[j - 1], text[j]);
                j--;
            }
            else if (char.IsSurrogate(text[j])) break; // a lone surrogate is a token of its own: a boundary
            if (IsDroppedAt(cp)) continue;
            var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
            if (IsCaseIgnorable(cp, cat)) continue;
            casedBefore = IsCased(cp, cat);
            break;
        }
        if (!casedBefore) return false;
        for (int j = index + length; j < text.Length;)
        {
            int cp = CodePointAt(text, j, out int len);
            j += len;
            if (len == 1 && char.IsSurrogate((char)cp)) return true;
            if (IsDroppedAt(cp)) continue;
            var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
            if (IsCaseIgnorable(cp, cat)) continue;
            return !IsCased(cp, cat);
        }
        return true;
    }

    // ---- One tokenization ----------------------------------------------------------------------------------------

    private sealed class Run(BertTokenizer owner, string text, int maxTokens)
    {
        public readonly List<Token> Tokens = new(Math.Min(maxTokens, Math.Max(16, text.Length / 3)));

        // The current word in normalized form, with the original span of each UTF-16 unit.
        private char[] _chars = new char[64];
        private readonly List<WordPieceMatch> _pieces = [];
        private int[] _starts = new int[64], _ends = new int[64];
        private int _length;
        private bool _full;

        public void Execute()
        {
            if (maxTokens == 0) return;
            bool lower = owner.LowerCase;
            Span<int> lowered = stackalloc int[2];
            Span<int> decomposed = stackalloc int[CanonicalDecomposition.MaxLength];
            int n = text.Length;
            for (int i = 0; i < n && !_full;)
            {
                char c = text[i];
                if (c < 128)
                {
                    switch (AsciiClass[c])
                    {
                        case AsciiWord:
                            Append(lower && c is >= 'A' and <= 'Z' ? (char)(c + 32) : c, i, i + 1);
                            break;
                        case AsciiSpace:
                            FlushWord();
                            break;
                        case AsciiPunct:
                            if (c == '[' && TrySpecialInText(i, out int matched)) { i += matched; continue; }
                            Isolated(c, i, i + 1);
                            break;
                    }
                    i++;
                    continue;
                }

                int cp = CodePointAt(text, i, out int length);
                int start = i, end = i + length;
                i = end;
                if (cp <= 0xFFFF && char.IsSurrogate((char)cp))
                {
                    // Invalid UTF-16: a lone surrogate is its own unknown token.
                    FlushWord();
                    Emit(owner.UnknownTokenId, start, end);
                    continue;
                }
                var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
                if (cp == 0xFFFD || IsDropped(cat)) continue;
                if (IsSpace(cat)) { FlushWord(); continue; }
                bool chinese = BertCharacterClasses.IsChineseChar(cp);
                if (chinese) FlushWord();
                if (!lower)
                {
                    AppendNormalized(cp, start, end);
                }
                else
                {
                    int nl;
                    if (cp == 0x130) { lowered[0] = 'i'; lowered[1] = 0x307; nl = 2; } // Python: 'İ'.lower() == 'i̇'
                    else if (cp == 0x3A3) { lowered[0] = IsFinalSigma(text, start, length) ? 0x3C2 : 0x3C3; nl = 1; }
                    else { lowered[0] = Rune.ToLowerInvariant(new Rune(cp)).Value; nl = 1; }
                    bool produced = false;
                    for (int k = 0; k < nl; k++)
                    {
                        int nd = CanonicalDecomposition.Decompose(lowered[k], decomposed);
                        for (int m = 0; m < nd; m++)
                        {
                            int d = decomposed[m];
                            if (d >= 0x300 && CharUnicodeInfo.GetUnicodeCategory(d) == UnicodeCategory.NonSpacingMark) continue;
                            AppendNormalized(d, start, end);
                            produced = true;
                        }
                    }
                    if (!produced) AttachToPrevious(start, end);
                }
                if (chinese) FlushWord();
            }
            if (!_full) FlushWord();
        }

        /// <summary>A character that normalizes to nothing (a stripped combining mark, a variation selector) joins the span
        /// of the character right before it, so that "e\u0301" or "❤\uFE0F" is covered whole. Ids are unaffected.</summary>
        private void AttachToPrevious(int start, int end)
        {
            if (_length > 0)
            {
                if (_ends[_length - 1] == start)
                    for (int k = _length - 1; k >= 0 && _ends[k] == start; k--) _ends[k] = end;
            }
            else if (Tokens.Count > 0 && Tokens[^1].End == start)
            {
                Tokens[^1] = Tokens[^1] with { End = end };
            }
        }

        private bool TrySpecialInText(int i, out int length)
        {
            foreach (var (s, id) in owner._specialInText)
            {
                if (string.CompareOrdinal(text, i, s, 0, s.Length) == 0)
                {
                    FlushWord();
                    if (!_full) Emit(id, i, i + s.Length);
                    length = s.Length;
                    return true;
                }
            }
            length = 0;
            return false;
        }

        private void AppendNormalized(int cp, int start, int end)
        {
            if (BertCharacterClasses.IsPunctuation(cp)) Isolated(cp, start, end);
            else AppendCodePoint(cp, start, end);
        }

        private void Isolated(int cp, int start, int end)
        {
            FlushWord();
            AppendCodePoint(cp, start, end);
            FlushWord();
        }

        /// <summary>Both halves of a surrogate pair map to the same original span.</summary>
        private void AppendCodePoint(int cp, int start, int end)
        {
            if (cp <= 0xFFFF)
            {
                Append((char)cp, start, end);
                return;
            }
            cp -= 0x10000;
            Append((char)(0xD800 + (cp >> 10)), start, end);
            Append((char)(0xDC00 + (cp & 0x3FF)), start, end);
        }

        private void Append(char c, int start, int end)
        {
            if (_length == _chars.Length)
            {
                Array.Resize(ref _chars, _length * 2);
                Array.Resize(ref _starts, _length * 2);
                Array.Resize(ref _ends, _length * 2);
            }
            _chars[_length] = c;
            _starts[_length] = start;
            _ends[_length] = end;
            _length++;
        }

        private void Emit(int id, int start, int end)
        {
            Tokens.Add(new Token(id, owner._idToToken[id], start, end, false));
            if (Tokens.Count >= maxTokens) _full = true;
        }

        /// <summary>WordPiece on the current word; the whole word is [UNK] when it cannot be split.</summary>
        private void FlushWord()
        {
            int n = _length;
            if (n == 0 || _full) return;
            _length = 0;
            _pieces.Clear();
            if (!owner._wordPiece.Split(_chars.AsSpan(0, n), _pieces))
            {
                Emit(owner.UnknownTokenId, _starts[0], _ends[n - 1]);
                return;
            }
            foreach (var (id, start, end) in _pieces)
                Tokens.Add(new Token(id, owner._idToToken[id], _starts[start], _ends[end - 1], false));
            if (Tokens.Count >= maxTokens)
            {
                if (Tokens.Count > maxTokens) Tokens.RemoveRange(maxTokens, Tokens.Count - maxTokens);
                _full = true;
            }
        }
    }
}
