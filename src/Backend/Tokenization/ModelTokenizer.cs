namespace AttentionViz.Backend.Tokenization;

/// <summary>One token with its span in the ORIGINAL text, in UTF-16 code units: [Start, End). Special tokens span [0,0).
/// <paramref name="TypeId"/> is the segment (token type id): 0, or 1 for the second text of a sentence pair (and the special
/// tokens the pair template gives type 1). Tokens of the second text have spans into the second text.</summary>
public sealed record Token(int Id, string Text, int Start, int End, bool Special, int TypeId = 0)
{
    /// <summary>
    /// <see cref="Text"/> as a person reads it where the vocabulary string is not that: a byte-level token's non-ASCII
    /// bytes decoded as UTF-8 ("cafÃ©" → "café"; a character split across tokens shows its bytes as &lt;0xC3&gt;),
    /// its markers (Ġ, Ċ) kept for <see cref="TokenDisplay"/>; null when the text is already readable.
    /// </summary>
    public string? Readable { get; init; }
}

/// <summary>A model's tokenizer, split so that truncation can keep the closing special tokens.</summary>
public interface IModelTokenizer
{
    /// <summary>Content tokens of <paramref name="text"/>, without special tokens.</summary>
    IReadOnlyList<Token> Tokenize(string text);

    /// <summary>The first <paramref name="maxTokens"/> content tokens of <paramref name="text"/> (exactly the start of
    /// <see cref="Tokenize(string)"/>), stopping early so that a huge text costs only what the window needs.</summary>
    IReadOnlyList<Token> Tokenize(string text, int maxTokens);

    /// <summary>Wraps content tokens the way the model's tokenizer does by default (e.g. [CLS] … [SEP]).</summary>
    IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> content);

    /// <summary>A sentence pair the way the model's tokenizer builds it (e.g. [CLS] A [SEP] B [SEP]), with
    /// <see cref="Token.TypeId"/> set from the pair template; <paramref name="second"/> null is the single template.</summary>
    IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> first, IReadOnlyList<Token>? second);

    /// <summary>How many special tokens <see cref="AddSpecialTokens(IReadOnlyList{Token})"/> adds around a single sequence.</summary>
    int SpecialTokenCount { get; }

    /// <summary>How many special tokens the pair template adds around two sequences.</summary>
    int PairSpecialTokenCount { get; }

    /// <summary>The vocabulary string of an id, or null when the id is outside the vocabulary.</summary>
    string? IdToToken(int id);

    /// <summary>True for ids of special tokens ([CLS], [SEP], [PAD], BOS, …).</summary>
    bool IsSpecial(int id);

    int VocabularySize { get; }

    /// <summary>An id's text as a person reads it (byte-level "Ġworld" → " world", "▁Hello" → " Hello"); by default the
    /// vocabulary string.</summary>
    string ReadableText(int id) => IdToToken(id) ?? id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>An id's <see cref="Token.Readable"/> (a byte-level token's characters, markers kept), or null.</summary>
    string? ReadableToken(int id) => null;
}
