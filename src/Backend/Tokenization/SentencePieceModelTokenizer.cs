using System.Text.Json;
using AttentionViz.Backend.Storage;
using Microsoft.ML.Tokenizers;

namespace AttentionViz.Backend.Tokenization;

/// <summary>
/// A SentencePiece tokenizer.model (Llama-1/2, Mistral style) through Microsoft.ML.Tokenizers' SentencePieceTokenizer, with
/// the library's offsets (into its normalized text, shifted by the dummy-prefix "▁") mapped back to the original text.
/// BOS/EOS around the text follow tokenizer_config.json's add_bos_token (default true) and add_eos_token (default false).
/// </summary>
public sealed class SentencePieceModelTokenizer : IModelTokenizer
{
    private readonly SentencePieceTokenizer _spm;
    private readonly bool _addBos, _addEos;
    private readonly string?[] _idToToken;

    private SentencePieceModelTokenizer(SentencePieceTokenizer spm, bool addBos, bool addEos)
    {
        _spm = spm;
        _addBos = addBos;
        _addEos = addEos;
        int size = spm.Vocabulary.Values.DefaultIfEmpty(-1).Max() + 1;
        _idToToken = new string?[size];
        foreach (var (token, id) in spm.Vocabulary) _idToToken[id] = token;
    }

    public static SentencePieceModelTokenizer FromFile(string modelPath, string? configPath = null)
    {
        bool addBos = true, addEos = false;
        if (configPath is not null && File.Exists(configPath))
        {
            using var doc = TokenizerFile.Read(configPath, () => JsonDocument.Parse(TokenizerFile.ReadBytes(configPath)));
            if (doc.RootElement.TryGetProperty("add_bos_token", out var b)
                && b.ValueKind is JsonValueKind.True or JsonValueKind.False) addBos = b.GetBoolean();
            if (doc.RootElement.TryGetProperty("add_eos_token", out var e)
                && e.ValueKind is JsonValueKind.True or JsonValueKind.False) addEos = e.GetBoolean();
        }
        using var stream = TokenizerFile.Open(modelPath);
        try
        {
            return new SentencePieceModelTokenizer(SentencePieceTokenizer.Create(stream, false, false), addBos, addEos);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException) // the file is open: any failure is its content
        {
            throw ModelFormatException.For(modelPath, null, $"not a supported SentencePiece model ({ex.Message}).", ex);
        }
    }

    public int VocabularySize => _idToToken.Length;
    public int SpecialTokenCount => (_addBos ? 1 : 0) + (_addEos ? 1 : 0);
    public int PairSpecialTokenCount => 2 * SpecialTokenCount;

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>"▁" as a space; special tokens as they are.</summary>
    public string ReadableText(int id) =>
        IdToToken(id) is { } token ? (IsSpecial(id) ? token : token.Replace('\u2581', ' '))
            : id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public bool IsSpecial(int id) => id == _spm.BeginningOfSentenceId || id == _spm.EndOfSentenceId || id == _spm.UnknownId;

    public IReadOnlyList<Token> Tokenize(string text) => Tokenize(text, int.MaxValue);

    public IReadOnlyList<Token> Tokenize(string text, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var encoded = _spm.EncodeToTokens(text, out string? normalized, addBeginningOfSentence: false, addEndOfSentence: false);
        var (start, end) = Align(text, normalized ?? text);
        var tokens = new List<Token>(Math.Min(encoded.Count, maxTokens));
        foreach (var t in encoded)
        {
            if (tokens.Count >= maxTokens) break;
            var (s, l) = t.Offset.GetOffsetAndLength((normalized ?? text).Length);
            int os = int.MaxValue, oe = int.MinValue;
            for (int i = s; i < s + l; i++) { os = Math.Min(os, start[i]); oe = Math.Max(oe, end[i]); }
            if (l == 0) os = oe = s < start.Length ? start[s] : text.Length;
            tokens.Add(new Token(t.Id, t.Value, os, oe, false));
        }
        return tokens;
    }

    /// <summary>Maps every unit of the library's normalized text (spaces as "▁", a dummy "▁" prefix) to an original span;
    /// an inserted "▁" takes the span of the character after it.</summary>
    private static (int[] Start, int[] End) Align(string text, string normalized)
    {
        var start = new int[normalized.Length];
        var end = new int[normalized.Length];
        int j = 0;
        for (int i = 0; i < normalized.Length; i++)
        {
            char n = normalized[i];
            while (j < text.Length && text[j] != n && !(n == '\u2581' && text[j] == ' ') && char.IsWhiteSpace(text[j]) && n != '\u2581') j++;
            if (j < text.Length && (text[j] == n || (n == '\u2581' && text[j] == ' ')))
            {
                int w = char.IsHighSurrogate(text[j]) && j + 1 < text.Length ? 2 : 1;
                if (char.IsLowSurrogate(text[j]) && j > 0 && i > 0) { start[i] = start[i - 1]; end[i] = end[i - 1]; j++; continue; }
                start[i] = j;
                end[i] = j + w;
                j++;
            }
            else
            {
                start[i] = Math.Min(j, text.Length);
                end[i] = Math.Min(j + 1, text.Length);
            }
        }
        return (start, end);
    }

    public IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> content) => AddSpecialTokens(content, null);

    public IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> first, IReadOnlyList<Token>? second)
    {
        ArgumentNullException.ThrowIfNull(first);
        var result = new List<Token>();
        Wrap(first, 0);
        if (second is not null) Wrap(second, 1);
        return result;

        void Wrap(IReadOnlyList<Token> seq, int type)
        {
            if (_addBos) result.Add(new Token(_spm.BeginningOfSentenceId, _spm.BeginningOfSentenceToken, 0, 0, true, type));
            foreach (var t in seq) result.Add(t.TypeId == type ? t : t with { TypeId = type });
            if (_addEos) result.Add(new Token(_spm.EndOfSentenceId, _spm.EndOfSentenceToken, 0, 0, true, type));
        }
    }
}
