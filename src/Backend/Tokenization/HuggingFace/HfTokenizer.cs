using System.Buffers;
using System.Text;
using System.Text.Json;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>
/// A Hugging Face "fast" tokenizer (tokenizer.json) run with the same pipeline as HF tokenizers: added tokens split out of
/// the original text first, then per remaining segment normalizer → pre_tokenizer → model, then the post_processor's
/// template. Every token keeps its UTF-16 span in the original text; the byte-level or byte-fallback tokens of one
/// character all carry that character's span. Immutable after loading and safe to share between threads.
/// </summary>
/// <remarks>
/// Deliberate simplifications (documented, asserted in tests where they matter): added tokens are matched on the original
/// text even when marked normalized (HF matches those on the normalized text; it differs only when the normalizer changes
/// the token's own characters); an added special token found in the text has Special=false like any token made from text
/// (HF's special_tokens_mask), while <see cref="IsSpecial"/> is true for its id.
/// </remarks>
public sealed class HfTokenizer : IModelTokenizer
{
    private sealed record AddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip, bool Special);

    private readonly Normalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly TokenModel _model;
    private readonly PostProcessor _post;
    private readonly string?[] _idToToken;
    private readonly HashSet<int> _specialIds = [];
    private readonly Dictionary<char, AddedToken[]> _addedByFirstChar = [];
    private readonly SearchValues<char> _addedFirstChars;
    private readonly bool _byteLevel;

    public int VocabularySize => _idToToken.Length;
    public int SpecialTokenCount => _post.Count(pair: false);
    public int PairSpecialTokenCount => _post.Count(pair: true);

    /// <summary>What kind of tokenizer this is, e.g. "BPE (tokenizer.json)", for logs and errors.</summary>
    public string Description { get; }

    private HfTokenizer(Normalizer? normalizer, PreTokenizer? preTokenizer, TokenModel model, PostProcessor post,
        IReadOnlyList<AddedToken> added, string description)
    {
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _post = post;
        Description = description;
        _byteLevel = ContainsByteLevel(preTokenizer);
        int size = 0;
        foreach (var id in model.Vocab.Values) size = Math.Max(size, id + 1);
        foreach (var a in added) size = Math.Max(size, a.Id + 1);
        _idToToken = new string?[size];
        foreach (var (token, id) in model.Vocab) _idToToken[id] = token;
        foreach (var a in added)
        {
            _idToToken[a.Id] = a.Content;
            if (a.Special) _specialIds.Add(a.Id);
        }
        foreach (int id in post.SpecialIds) _specialIds.Add(id);
        foreach (var group in added.Where(a => a.Content.Length > 0).GroupBy(a => a.Content[0]))
            _addedByFirstChar[group.Key] = [.. group.OrderByDescending(a => a.Content.Length)];
        _addedFirstChars = SearchValues.Create([.. _addedByFirstChar.Keys]);
    }

    private static bool ContainsByteLevel(PreTokenizer? p) => p switch
    {
        ByteLevelPreTokenizer => true,
        SequencePreTokenizer s => s.Items.Any(ContainsByteLevel),
        _ => false,
    };

    // ---- Loading -------------------------------------------------------------------------------------------------

    /// <summary>Loads tokenizer.json; <paramref name="configPath"/> (tokenizer_config.json) is optional and only consulted
    /// for add_bos_token/add_eos_token of Llama-family tokenizer classes, as transformers' LlamaTokenizerFast does.</summary>
    public static HfTokenizer FromTokenizerJson(string path, string? configPath = null)
    {
        using var doc = TokenizerFile.Read(path,
            () => JsonDocument.Parse(TokenizerFile.ReadBytes(path), new JsonDocumentOptions { MaxDepth = 256 }));
        using var config = configPath is not null && File.Exists(configPath)
            ? TokenizerFile.Read(configPath, () => JsonDocument.Parse(TokenizerFile.ReadBytes(configPath)))
            : null;
        return TokenizerFile.Read(path, () => FromJson(doc.RootElement, config?.RootElement, path));
    }

    internal static HfTokenizer FromJson(JsonElement root, JsonElement? config, string source)
    {
        var model = TokenModel.Parse(root.ValueKind == JsonValueKind.Object && root.TryGetProperty("model", out var m)
            ? m
            : throw new ModelFormatException("tokenizer.json has no \"model\" section."));
        var normalizer = root.TryGetProperty("normalizer", out var n) ? Normalizer.Parse(n) : null;
        var pre = root.TryGetProperty("pre_tokenizer", out var p) ? PreTokenizer.Parse(p) : null;
        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
            foreach (var a in at.EnumerateArray())
                added.Add(new AddedToken(a.GetProperty("id").GetInt32(), a.GetProperty("content").GetString()!,
                    Json.Bool(a, "single_word", false), Json.Bool(a, "lstrip", false), Json.Bool(a, "rstrip", false),
                    Json.Bool(a, "special", false)));
        int IdOf(string token) =>
            added.FirstOrDefault(a => a.Content == token)?.Id
            ?? (model.Vocab.TryGetValue(token, out int id)
                ? id
                : throw ModelFormatException.For(source, null, $"unknown token \"{token}\"."));
        var post = root.TryGetProperty("post_processor", out var pp) ? PostProcessor.Parse(pp, IdOf) : PostProcessor.None;
        if (config is JsonElement c && IsLlamaClass(c) &&
            (c.TryGetProperty("add_bos_token", out _) || c.TryGetProperty("add_eos_token", out _)))
        {
            bool addBos = Json.Bool(c, "add_bos_token", true), addEos = Json.Bool(c, "add_eos_token", false);
            int? bos = addBos ? IdOf(TokenString(c, "bos_token") ?? throw MissingToken("bos")) : null;
            int? eos = addEos ? IdOf(TokenString(c, "eos_token") ?? throw MissingToken("eos")) : null;
            post = PostProcessor.LlamaStyle(bos, eos);
        }
        ModelFormatException MissingToken(string which) =>
            ModelFormatException.For(source, null, $"add_{which}_token without {which}_token.");
        string modelType = model switch { BpeModel => "BPE", WordPieceModel => "WordPiece", _ => "Unigram" };
        return new HfTokenizer(normalizer, pre, model, post, added, $"{modelType} (tokenizer.json)");
    }

    private static bool IsLlamaClass(JsonElement config) =>
        Json.OptionalString(config, "tokenizer_class") is "LlamaTokenizer" or "LlamaTokenizerFast" or "CodeLlamaTokenizer"
            or "CodeLlamaTokenizerFast" or "GemmaTokenizer" or "GemmaTokenizerFast";

    private static string? TokenString(JsonElement config, string name) =>
        !config.TryGetProperty(name, out var v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString() : null;

    /// <summary>GPT-2 style vocab.json + merges.txt: byte-level BPE with the GPT-2 regex, no special tokens added around
    /// the text (as GPT2TokenizerFast); "&lt;|endoftext|&gt;" is a special added token when the vocabulary has it.</summary>
    public static HfTokenizer FromVocabAndMerges(string vocabJsonPath, string mergesPath)
    {
        var vocab = TokenizerFile.Read(vocabJsonPath, () =>
        {
            using var doc = JsonDocument.Parse(TokenizerFile.ReadBytes(vocabJsonPath));
            return Json.Vocab(doc.RootElement);
        });
        var merges = new List<(string, string)>();
        foreach (string line in TokenizerFile.ReadLines(mergesPath))
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            int space = line.IndexOf(' ', 1);
            if (space < 0)
                throw ModelFormatException.For(mergesPath, null, $"line \"{line}\" is not of the form \"a b\".");
            merges.Add((line[..space], line[(space + 1)..]));
        }
        var model = TokenizerFile.Read(mergesPath,
            () => new BpeModel(vocab, merges, null, null, null, byteFallback: false, fuseUnk: false, ignoreMerges: false));
        var added = vocab.TryGetValue("<|endoftext|>", out int eot) ? [new AddedToken(eot, "<|endoftext|>", false, false, false, true)]
            : new List<AddedToken>();
        return new HfTokenizer(null, new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true), model,
            new PostProcessor(PostProcessor.None.Single, PostProcessor.None.Pair, trimOffsets: false, addPrefixSpace: false), added,
            "BPE (vocab.json + merges.txt)");
    }

    // ---- IModelTokenizer -----------------------------------------------------------------------------------------

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public int? TokenToId(string token)
    {
        foreach (var group in _addedByFirstChar.Values)
            foreach (var a in group)
                if (a.Content == token) return a.Id;
        return _model.Vocab.TryGetValue(token, out int id) ? id : null;
    }

    public bool IsSpecial(int id) => _specialIds.Contains(id);

    public IReadOnlyList<Token> Tokenize(string text) => Tokenize(text, int.MaxValue);

    public IReadOnlyList<Token> Tokenize(string text, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        var tokens = new List<Token>();
        if (maxTokens == 0) return tokens;
        int at = 0;
        foreach (var (s, e, added) in FindAddedTokens(text))
        {
            if (s > at) TokenizeSegment(text, at, s, tokens, maxTokens);
            if (tokens.Count >= maxTokens) break;
            tokens.Add(new Token(added.Id, added.Content, s, e, false));
            at = e;
        }
        if (at < text.Length && tokens.Count < maxTokens) TokenizeSegment(text, at, text.Length, tokens, maxTokens);
        if (tokens.Count > maxTokens) tokens.RemoveRange(maxTokens, tokens.Count - maxTokens);
        return tokens;
    }

    public IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> content) => AddSpecialTokens(content, null);

    public IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> first, IReadOnlyList<Token>? second)
    {
        ArgumentNullException.ThrowIfNull(first);
        var template = second is null ? _post.Single : _post.Pair;
        var result = new List<Token>(first.Count + (second?.Count ?? 0) + 4);
        foreach (var piece in template)
        {
            if (piece.IsSequence)
            {
                var seq = piece.Sequence == 0 ? first : second!;
                foreach (var t in seq) result.Add(t.TypeId == piece.TypeId ? t : t with { TypeId = piece.TypeId });
            }
            else
            {
                foreach (int id in piece.Ids) result.Add(new Token(id, IdToToken(id) ?? id.ToString(), 0, 0, true, piece.TypeId));
            }
        }
        return result;
    }

    /// <summary>The token's text as a person reads it: byte-level characters decoded to UTF-8 (a byte sequence that is not
    /// valid on its own shows as &lt;0xXX&gt;), the metaspace "▁" as a space.</summary>
    public string ReadableText(int id)
    {
        string? token = IdToToken(id);
        if (token is null) return id.ToString();
        if (_specialIds.Contains(id)) return token;
        if (_byteLevel)
        {
            var bytes = new List<byte>(token.Length);
            foreach (char c in token)
            {
                int b = Array.IndexOf(ByteLevelPreTokenizer.ByteToChar, c);
                if (b < 0) return token;
                bytes.Add((byte)b);
            }
            try { return new UTF8Encoding(false, true).GetString([.. bytes]); }
            catch (DecoderFallbackException) { return string.Concat(bytes.Select(b => $"<0x{b:X2}>")); }
        }
        return token.Replace('\u2581', ' ');
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, string?> _readable = new();

    public string? ReadableToken(int id) => _byteLevel && id >= 0 && id < _idToToken.Length ? ByteLevelReadable(id) : null;

    /// <summary>
    /// A byte-level token with its non-ASCII bytes decoded as UTF-8 and everything else (letters, the Ġ/Ċ/ĉ markers)
    /// as in the vocabulary; bytes that are not a whole character here (one split across tokens) as &lt;0xXX&gt;.
    /// Null when nothing changes (an ASCII token). Cached per id.
    /// </summary>
    private string? ByteLevelReadable(int id) => _readable.GetOrAdd(id, i =>
    {
        var token = _idToToken[i];
        if (token is null || token.All(c => Array.IndexOf(ByteLevelPreTokenizer.ByteToChar, c) is >= 0 and < 0x80)) return null;
        var builder = new StringBuilder(token.Length);
        var run = new List<byte>();
        void Flush()
        {
            if (run.Count == 0) return;
            var bytes = run.ToArray();
            for (var at = 0; at < bytes.Length;)
            {
                var status = System.Text.Rune.DecodeFromUtf8(bytes.AsSpan(at), out var rune, out var used);
                if (status == System.Buffers.OperationStatus.Done) builder.Append(rune.ToString());
                else for (var k = 0; k < Math.Max(1, used); k++) builder.Append($"<0x{bytes[at + k]:X2}>");
                at += Math.Max(1, used);
            }
            run.Clear();
        }
        foreach (char c in token)
        {
            int b = Array.IndexOf(ByteLevelPreTokenizer.ByteToChar, c);
            if (b < 0) return null;                                          // not a byte-level string after all
            if (b >= 0x80) run.Add((byte)b);
            else
            {
                Flush();
                builder.Append(c);
            }
        }
        Flush();
        return builder.ToString();
    });

    // ---- Pipeline ------------------------------------------------------------------------------------------------

    /// <summary>How far before a window's cut a piece must end to be the same as in the whole text: the split regexes
    /// look ahead at most one character and the normalizers change nothing beyond a combining sequence.</summary>
    private const int WindowMargin = 256;

    private void TokenizeSegment(string text, int from, int to, List<Token> tokens, int maxTokens)
    {
        // With a token cap, a long segment is tokenized through growing windows from its start; a window's tokens count
        // only from pieces that end well before its cut, so they are exactly the whole segment's first tokens.
        if (maxTokens != int.MaxValue)
        {
            for (long window = Math.Max(4096L, (maxTokens - tokens.Count) * 16L); window < to - from; window *= 4)
            {
                int cut = from + (int)window;
                if (char.IsLowSurrogate(text[cut])) cut++;
                int mark = tokens.Count;
                if (TokenizeRange(text, from, cut, tokens, maxTokens, cut - WindowMargin)) return;
                tokens.RemoveRange(mark, tokens.Count - mark);
            }
        }
        TokenizeRange(text, from, to, tokens, maxTokens, int.MaxValue);
    }

    /// <summary>Runs normalizer → pre-tokenizer → model on text[from, to). Returns true once <paramref name="maxTokens"/>
    /// tokens are there; false (with partial output) at the first piece reaching past <paramref name="safeEnd"/>.</summary>
    private bool TokenizeRange(string text, int from, int to, List<Token> tokens, int maxTokens, int safeEnd)
    {
        var aligned = AlignedText.FromOriginal(text, from, to - from);
        if (_normalizer is not null) aligned = _normalizer.Normalize(aligned);
        if (aligned.Length == 0) return tokens.Count >= maxTokens;
        var pieces = new List<AlignedText> { aligned };
        _preTokenizer?.PreTokenize(pieces);
        var pieceTokens = new List<PieceToken>();
        foreach (var piece in pieces)
        {
            if (piece.Length == 0) continue;
            if (piece.Start[0] >= safeEnd) return tokens.Count >= maxTokens;
            // A piece that reaches past safeEnd (a model without pre-tokenizer sees one piece) keeps only the tokens that
            // end before it: BPE/Unigram results are local, far shorter than the margin.
            bool last = piece.End[^1] > safeEnd;
            pieceTokens.Clear();
            _model.Tokenize(piece.Text, pieceTokens);
            foreach (var pt in pieceTokens)
            {
                var (s, e) = piece.OriginalSpan(pt.Start, pt.End);
                if (last && e > safeEnd) return tokens.Count >= maxTokens;
                string tokenText = _idToToken[pt.Id]!;
                if (_post.TrimOffsets && _byteLevel) (s, e) = TrimByteLevel(text, tokenText, s, e);
                tokens.Add(new Token(pt.Id, tokenText, s, e, false) { Readable = _byteLevel ? ByteLevelReadable(pt.Id) : null });
            }
            if (tokens.Count >= maxTokens) return true;
        }
        return tokens.Count >= maxTokens;
    }

    /// <summary>trim_offsets of tokenizers' ByteLevel/RobertaProcessing: spaces ('Ġ') at a token's ends are left out of its
    /// offsets. Only whitespace that is really in the original text is trimmed: HF subtracts the count of 'Ġ' even when
    /// the space was the prefix space it added (so after an added token "Ġsystem" would lose its 's').</summary>
    private static (int, int) TrimByteLevel(string text, string token, int s, int e)
    {
        int leading = 0, trailing = 0;
        while (leading < token.Length && (token[leading] == '\u0120' || char.IsWhiteSpace(token[leading]))) leading++;
        if (leading == token.Length) return (s, e);
        while (trailing < token.Length && (token[^(trailing + 1)] == '\u0120' || char.IsWhiteSpace(token[^(trailing + 1)]))) trailing++;
        for (; leading > 0 && s < e && text[s] == ' '; leading--) s++;
        for (; trailing > 0 && e > s && text[e - 1] == ' '; trailing--) e--;
        return (s, e);
    }

    /// <summary>Added tokens in the original text: leftmost, then longest; lstrip/rstrip take the whitespace beside the
    /// token into its span; single_word tokens only match outside words.</summary>
    private IEnumerable<(int Start, int End, AddedToken Token)> FindAddedTokens(string text)
    {
        if (_addedByFirstChar.Count == 0) yield break;
        int last = 0;
        for (int i = 0; i < text.Length;)
        {
            int next = text.AsSpan(i).IndexOfAny(_addedFirstChars);
            if (next < 0) yield break;
            i += next;
            AddedToken? match = null;
            foreach (var a in _addedByFirstChar[text[i]])
            {
                if (!text.AsSpan(i).StartsWith(a.Content, StringComparison.Ordinal)) continue;
                if (a.SingleWord
                    && (i > 0 && IsWordChar(text, i - 1) || i + a.Content.Length < text.Length && IsWordChar(text, i + a.Content.Length)))
                    continue;
                match = a;
                break;
            }
            if (match is null) { i++; continue; }
            int s = i, e = i + match.Content.Length;
            if (match.LStrip) while (s > last && char.IsWhiteSpace(text[s - 1])) s--;
            if (match.RStrip) while (e < text.Length && char.IsWhiteSpace(text[e])) e++;
            yield return (s, e, match);
            last = i = e;
        }
    }

    private static bool IsWordChar(string text, int i) => char.IsLetterOrDigit(text[i]) || text[i] == '_' || char.IsSurrogate(text[i]);
}
