using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// One row/column of a viewed matrix: a token, or a word of several tokens. Tokens [FirstToken, LastToken] (inclusive)
/// of the analysis; Start/End the UTF-16 span of the text ([0,0) for special tokens).
/// </summary>
public sealed record ViewUnit(string Text, int Start, int End, int FirstToken, int LastToken, bool Special);

public sealed record ViewOptions(bool HideSpecial = false, bool WordLevel = false);

public sealed record ViewedMatrix(float[] Data, int Size, ViewUnit[] Units);

/// <summary>The view options that apply to every matrix: hide special tokens (rows renormalised), merge subwords into words.</summary>
public static class AttentionViews
{
    /// <summary>
    /// Groups tokens into words. A token continues the previous token's word when neither is special and either its
    /// text starts with <c>##</c> (WordPiece), or its span is non-empty, starts exactly where the previous token's
    /// ends (no whitespace between them), and its text does not start with a word-start marker (<c>Ġ</c> byte-level
    /// BPE, <c>▁</c> SentencePiece, or a space). So "don't" or "dog." is one word, as whitespace would split it.
    /// Returns the groups as inclusive token ranges, in order.
    /// </summary>
    public static List<(int First, int Last)> GroupWords(IReadOnlyList<Token> tokens)
    {
        var groups = new List<(int First, int Last)>();
        for (var i = 0; i < tokens.Count; i++)
        {
            if (i > 0 && groups.Count > 0 && groups[^1].Last == i - 1 && Continues(tokens[i - 1], tokens[i]))
                groups[^1] = (groups[^1].First, i);
            else
                groups.Add((i, i));
        }
        return groups;
    }

    private static bool Continues(Token previous, Token current)
    {
        if (previous.Special || current.Special) return false;
        if (current.Text.StartsWith("##", StringComparison.Ordinal)) return true;
        return current.End > current.Start && previous.End == current.Start && !StartsWord(current.Text);
    }

    private static bool StartsWord(string text) =>
        text.Length > 0 && (text[0] is 'Ġ' or '▁' or 'Ċ' || char.IsWhiteSpace(text[0]));

    /// <summary>
    /// Applies the options to an n×n matrix over <paramref name="tokens"/>: first hides special tokens (drops their rows
    /// and columns and renormalises each remaining row to sum 1; an all-zero row stays zero), then merges words
    /// (attention TO a word = sum over its pieces' columns, FROM a word = mean over its pieces' rows).
    /// </summary>
    public static ViewedMatrix Apply(ReadOnlySpan<float> matrix, IReadOnlyList<Token> tokens, ViewOptions options)
    {
        var n = tokens.Count;
        var kept = Enumerable.Range(0, n).Where(i => !(options.HideSpecial && tokens[i].Special)).ToArray();
        var m = kept.Length;
        var data = new float[m * m];
        for (var r = 0; r < m; r++)
        {
            double sum = 0;
            for (var c = 0; c < m; c++) sum += data[r * m + c] = matrix[kept[r] * n + kept[c]];
            if (options.HideSpecial && sum > 0)
                for (var c = 0; c < m; c++) data[r * m + c] = (float)(data[r * m + c] / sum);
        }
        var keptTokens = kept.Select(i => tokens[i]).ToArray();
        if (!options.WordLevel)
        {
            var units = kept.Select(i => new ViewUnit(TokenDisplay.WithoutMarkers(tokens[i]), tokens[i].Start, tokens[i].End, i, i, tokens[i].Special)).ToArray();
            return new ViewedMatrix(data, m, units);
        }

        var groups = GroupWords(keptTokens);
        var w = groups.Count;
        var merged = new float[w * w];
        for (var gr = 0; gr < w; gr++)
        {
            var (r0, r1) = groups[gr];
            var pieces = r1 - r0 + 1;
            for (var gc = 0; gc < w; gc++)
            {
                var (c0, c1) = groups[gc];
                double sum = 0;
                for (var r = r0; r <= r1; r++)
                    for (var c = c0; c <= c1; c++) sum += data[r * m + c];
                merged[gr * w + gc] = (float)(sum / pieces);
            }
        }
        var wordUnits = groups.Select(g =>
        {
            var (first, last) = (keptTokens[g.First], keptTokens[g.Last]);
            var text = string.Concat(Enumerable.Range(g.First, g.Last - g.First + 1).Select(i => TokenDisplay.WithoutMarkers(keptTokens[i])));
            return new ViewUnit(text, first.Start, last.End, kept[g.First], kept[g.Last], first.Special);
        }).ToArray();
        return new ViewedMatrix(merged, w, wordUnits);
    }
}
