namespace AttentionViz.Backend.Tokenization;

/// <summary>One token with its span in the ORIGINAL text, in UTF-16 code units: [Start, End). Special tokens span [0,0).</summary>
public sealed record Token(int Id, string Text, int Start, int End, bool Special);

/// <summary>A model's tokenizer, split so that truncation can keep the closing special tokens.</summary>
public interface IModelTokenizer
{
    /// <summary>Content tokens of <paramref name="text"/>, without special tokens.</summary>
    IReadOnlyList<Token> Tokenize(string text);

    /// <summary>Wraps content tokens the way the model's tokenizer does by default (e.g. [CLS] … [SEP]).</summary>
    IReadOnlyList<Token> AddSpecialTokens(IReadOnlyList<Token> content);

    /// <summary>How many special tokens <see cref="AddSpecialTokens"/> adds around a single sequence.</summary>
    int SpecialTokenCount { get; }

    /// <summary>The vocabulary string of an id, or null when the id is outside the vocabulary.</summary>
    string? IdToToken(int id);

    /// <summary>True for ids of special tokens ([CLS], [SEP], [PAD], BOS, …).</summary>
    bool IsSpecial(int id);

    int VocabularySize { get; }
}
