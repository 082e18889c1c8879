namespace AttentionViz.Backend.Tokenization;

/// <summary>One piece of a word: its id and its UTF-16 range within the word.</summary>
internal readonly record struct WordPieceMatch(int Id, int Start, int End);

/// <summary>
/// HF's WordPiece, shared by the BERT vocab.txt tokenizer and tokenizer.json's WordPiece model: greedy longest match
/// first, pieces after the first looked up with the continuation prefix; a word that fails anywhere, or that is longer
/// than maxInputCharsPerWord code points, is one unknown token. Candidates never split a surrogate pair, and never
/// start longer than the longest vocabulary entry (which changes no result, only the time spent).
/// </summary>
internal sealed class WordPiece
{
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _start;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _continuation;
    private readonly int _maxStartChars, _maxContinuationChars, _maxInputChars;

    /// <param name="vocab">token → id, duplicates already resolved (HF: the last id wins)</param>
    public WordPiece(Dictionary<string, int> vocab, string continuationPrefix, int maxInputCharsPerWord)
    {
        var continuation = new Dictionary<string, int>(vocab.Count / 4, StringComparer.Ordinal);
        foreach (var (token, id) in vocab)
        {
            _maxStartChars = Math.Max(_maxStartChars, token.Length);
            if (token.Length > continuationPrefix.Length && token.StartsWith(continuationPrefix, StringComparison.Ordinal))
            {
                continuation[token[continuationPrefix.Length..]] = id;
                _maxContinuationChars = Math.Max(_maxContinuationChars, token.Length - continuationPrefix.Length);
            }
        }
        _start = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _continuation = continuation.GetAlternateLookup<ReadOnlySpan<char>>();
        _maxInputChars = maxInputCharsPerWord;
    }

    /// <summary>
    /// Appends the word's pieces to <paramref name="output"/>; false (with nothing appended) when the word is one
    /// unknown token.
    /// </summary>
    public bool Split(ReadOnlySpan<char> word, List<WordPieceMatch> output)
    {
        int n = word.Length;
        if (n > _maxInputChars && CountCodePoints(word) > _maxInputChars) return false;
        int mark = output.Count;
        for (int start = 0; start < n;)
        {
            bool continuation = start > 0;
            int end = Math.Min(n, start + (continuation ? _maxContinuationChars : _maxStartChars));
            if (SplitsPair(word, end)) end--;
            int id = -1;
            while (end > start)
            {
                var candidate = word[start..end];
                if (continuation ? _continuation.TryGetValue(candidate, out id) : _start.TryGetValue(candidate, out id)) break;
                id = -1;
                end--;
                if (end > start && SplitsPair(word, end)) end--;
            }
            if (id < 0)
            {
                output.RemoveRange(mark, output.Count - mark);
                return false;
            }
            output.Add(new WordPieceMatch(id, start, end));
            start = end;
        }
        return true;
    }

    private static bool SplitsPair(ReadOnlySpan<char> s, int at) =>
        at > 0 && at < s.Length && char.IsLowSurrogate(s[at]) && char.IsHighSurrogate(s[at - 1]);

    /// <summary>Code points, a lone surrogate counting as one (as Python's len and .NET's EnumerateRunes).</summary>
    private static int CountCodePoints(ReadOnlySpan<char> s)
    {
        int count = s.Length;
        for (int i = 1; i < s.Length; i++)
            if (char.IsLowSurrogate(s[i]) && char.IsHighSurrogate(s[i - 1])) count--;
        return count;
    }
}
