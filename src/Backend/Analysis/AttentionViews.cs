using System.Numerics.Tensors;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// One row/column of a viewed matrix: a token, or a word of several tokens. Tokens [FirstToken, LastToken] (inclusive)
/// of the analysis; Start/End the UTF-16 span of the text ([0,0) for special tokens).
/// </summary>
public sealed record ViewUnit(string Text, int Start, int End, int FirstToken, int LastToken, bool Special)
{
    /// <summary>The unit as shown (invisible characters escaped, as the images label it): Tokenization/TokenDisplay.</summary>
    public string Display => TokenDisplay.Escape(Text);
}

public sealed record ViewOptions(bool HideSpecial = false, bool WordLevel = false);

public sealed record ViewedMatrix(float[] Data, int Size, ViewUnit[] Units);

/// <summary>
/// A window [RowStart, RowEnd) × [ColStart, ColEnd) of a viewed matrix, possibly pooled for display: Units label all
/// rows and columns of the whole view, before pooling.
/// </summary>
public sealed record ViewResult(
    int Rows, int Cols, int Layer, int Head, bool Pooled, int PoolFactor, float[] Data, ViewUnit[] Units,
    int RowStart, int RowEnd, int ColStart, int ColEnd, string Pooling);

/// <param name="HeadReduce">how -1 combines heads and layers: "mean" (default) or "max"</param>
public sealed record ViewRequest(
    int Layer, int Head, ViewOptions Options, int? MaxSize = null, string? HeadReduce = null);

/// <summary>The view options that apply to every matrix: hide special tokens (rows renormalised), merge subwords into words.</summary>
public static class AttentionViews
{
    /// <summary>
    /// The matrix of one layer and head (-1: combined by <see cref="ViewRequest.HeadReduce"/>) with the view options
    /// applied and pooled to maxSize: the one path behind attention/matrix, attention/view and render/png.
    /// </summary>
    public static ViewResult View(StoredAnalysis analysis, ViewRequest request)
    {
        var reduce = RequestChecks.OneOf("headReduce", request.HeadReduce ?? "mean", "mean", "max");
        var (layers, heads) = (analysis.Model.Layers, analysis.Model.Heads);
        var minusOne = reduce == "mean" ? RequestChecks.MinusOneIsMean : RequestChecks.MinusOneIsMax;
        RequestChecks.LayerHead(layers, heads, request.Layer, request.Head, minusOne);
        RequestChecks.MaxSize(request.MaxSize);
        var n = analysis.Tokens.Count;
        var matrix = new float[n * n];
        if (reduce == "mean") analysis.Attention.Matrix(request.Layer, request.Head, matrix);
        else MaxOver(analysis.Attention, request.Layer, request.Head, matrix);
        return Shape(matrix, analysis, request.Layer, request.Head, request.Options, request.MaxSize);
    }

    /// <summary>The second half of <see cref="View"/>, for any n×n matrix over the analysis's tokens (rollout).</summary>
    public static ViewResult Shape(
        float[] matrix, StoredAnalysis analysis, int layer, int head, ViewOptions options, int? maxSize)
    {
        var viewed = options is { HideSpecial: false, WordLevel: false }
            ? AsTokens(matrix, analysis.Tokens)
            : Apply(matrix, analysis.Tokens, options);
        var (data, size, factor) = MatrixOps.Pool(viewed.Data, viewed.Size, maxSize);
        return new ViewResult(size, size, layer, head, factor > 1, factor, data, viewed.Units, 0, viewed.Size, 0, viewed.Size, "max");
    }

    /// <summary>Element-wise max over heads (head −1) and/or layers (layer −1).</summary>
    internal static void MaxOver(AttentionTensor attention, int layer, int head, Span<float> destination)
    {
        var n2 = attention.Tokens * attention.Tokens;
        destination = destination[..n2];
        destination.Fill(float.NegativeInfinity);
        for (var l = 0; l < attention.Layers; l++)
        {
            if (layer >= 0 && l != layer) continue;
            for (var h = 0; h < attention.Heads; h++)
                if (head < 0 || h == head) TensorPrimitives.Max(destination, attention.Head(l, h), destination);
        }
    }

    /// <summary>No options: the matrix as it is (not copied), one unit per token.</summary>
    private static ViewedMatrix AsTokens(float[] matrix, IReadOnlyList<Token> tokens) =>
        new(matrix, tokens.Count, tokens.Select((t, i) => TokenUnit(t, i)).ToArray());

    private static ViewUnit TokenUnit(Token token, int index) =>
        new(TokenDisplay.WithoutMarkers(token), token.Start, token.End, index, index, token.Special);

    /// <summary>
    /// Groups tokens into words. A token continues the previous token's word when neither is special and either it
    /// is a WordPiece continuation (<c>##</c> and more: <see cref="TokenDisplay.IsContinuation"/>; a lone <c>##</c> is
    /// a literal token), or its span is non-empty, starts exactly where the previous token's ends (no whitespace
    /// between them), and it does not start a word (<see cref="TokenDisplay.StartsWord"/>: <c>Ġ</c>, <c>▁</c>,
    /// <c>Ċ</c> or a space). So "don't" or "dog." is one word, as whitespace would split it.
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
        if (TokenDisplay.IsContinuation(current.Text)) return true;
        return current.End > current.Start && previous.End == current.Start && !TokenDisplay.StartsWord(current.Text);
    }

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
            var units = kept.Select(i => TokenUnit(tokens[i], i)).ToArray();
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
