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
/// <param name="RowRange">[start, end) of the rows, in units after the options; null: all</param>
/// <param name="ColRange">[start, end) of the columns; null: all</param>
/// <param name="Pooling">how blocks bigger than maxSize are pooled: "max" (default) or "mean"</param>
public sealed record ViewRequest(
    int Layer, int Head, ViewOptions Options, int? MaxSize = null, string? HeadReduce = null,
    int[]? RowRange = null, int[]? ColRange = null, string? Pooling = null);

/// <summary>Reads rows [rowStart, rowEnd) × columns [colStart, colEnd) of an n×n token matrix, row-major.</summary>
public delegate void TokenRows(int rowStart, int rowEnd, int colStart, int colEnd, Span<float> destination);

/// <summary>The view options that apply to every matrix: hide special tokens (rows renormalised), merge subwords into words.</summary>
public static class AttentionViews
{
    /// <summary>Token rows read per step: bounds what a view of a long analysis holds at once.</summary>
    private const long StepCells = 4L << 20;

    /// <summary>Tiles up to this many cells come from the shared array pool.</summary>
    internal const int PooledTileCells = 1 << 18;

    /// <summary>Above this many recomputed cells (heads × window), a display of a long analysis (one head or a mean over
    /// heads) comes from its overviews: one 8,160-token head took 1.2 s to recompute and pool on an AVX2 EPYC.</summary>
    internal static double RecomputeBudget { get; set; } = 64e6;                   // tests lower it

    /// <summary>
    /// A window of the matrix of one layer and head (-1: combined by <see cref="ViewRequest.HeadReduce"/>) with the
    /// view options applied and pooled to maxSize: the one path behind attention/matrix, attention/view, render/png
    /// and the exports. It reads the attention a step of rows at a time.
    /// </summary>
    public static ViewResult View(StoredAnalysis analysis, ViewRequest request)
    {
        var reduce = RequestChecks.OneOf("headReduce", request.HeadReduce ?? "mean", "mean", "max");
        var pooling = RequestChecks.OneOf("pooling", request.Pooling ?? "max", "max", "mean");
        var (layers, heads) = (analysis.Model.Layers, analysis.Model.Heads);
        var minusOne = reduce == "mean" ? RequestChecks.MinusOneIsMean : RequestChecks.MinusOneIsMax;
        RequestChecks.LayerHead(layers, heads, request.Layer, request.Head, minusOne);
        RequestChecks.MaxSize(request.MaxSize);
        var layout = analysis.LayoutFor(request.Options);
        var rows = RequestChecks.Range("rowRange", request.RowRange, layout.Units.Length, "rows");
        var cols = RequestChecks.Range("colRange", request.ColRange, layout.Units.Length, "columns");
        var source = analysis.Attention;
        if (FromOverviews(source, layout, request, reduce, pooling, rows, cols) is { } overview) return overview;
        var max = reduce == "max";
        // One stored head's rows are pooled where they lie (copying them into a tile was a seventh of the model view).
        StoredRow? storedRow = source is AttentionTensor stored && request.Layer >= 0 && request.Head >= 0
            ? row => stored.Head(request.Layer, request.Head).Slice(row * stored.Tokens, stored.Tokens)
            : null;
        return Shape((r0, r1, c0, c1, d) => source.Combined(request.Layer, request.Head, max, r0, r1, c0, c1, d),
            layout, request.Layer, request.Head, rows, cols, request.MaxSize, pooling, storedRow);
    }

    /// <summary>Token row <paramref name="row"/> of a stored head, every column, in place.</summary>
    private delegate ReadOnlySpan<float> StoredRow(int row);

    /// <summary>The second half of <see cref="View"/>, for any n×n matrix over the analysis's tokens (rollout).</summary>
    public static ViewResult Shape(
        float[] matrix, StoredAnalysis analysis, int layer, int head, ViewOptions options, int? maxSize)
    {
        var n = analysis.Tokens.Count;
        var layout = analysis.LayoutFor(options);
        var all = (0, layout.Units.Length);
        return Shape((r0, r1, c0, c1, d) =>
        {
            for (var r = r0; r < r1; r++) matrix.AsSpan(r * n + c0, c1 - c0).CopyTo(d.Slice((r - r0) * (c1 - c0), c1 - c0));
        }, layout, layer, head, all, all, maxSize, "max");
    }

    /// <summary>
    /// Applies the layout to token rows read a step at a time and pools the window: hidden special tokens drop out and
    /// each row is renormalised over the kept keys; a word's column sums its pieces, its row averages them.
    /// </summary>
    private static ViewResult Shape(TokenRows read, ViewLayout layout, int layer, int head,
        (int Start, int End) rows, (int Start, int End) cols, int? maxSize, string pooling, StoredRow? storedRow = null)
    {
        var (r0, r1, c0, c1) = (rows.Start, rows.End, cols.Start, cols.End);
        var factor = MatrixOps.PoolFactor(Math.Max(r1 - r0, c1 - c0), maxSize ?? int.MaxValue);
        var (outRows, outCols) = ((r1 - r0 + factor - 1) / factor, (c1 - c0 + factor - 1) / factor);
        var mean = pooling == "mean";
        var output = new float[outRows * outCols];
        if (outRows == 0 || outCols == 0)
            return new ViewResult(outRows, outCols, layer, head, false, 1, output, layout.Units, r0, r1, c0, c1, pooling);
        if (!mean) Array.Fill(output, float.NegativeInfinity);
        // Token columns to read: all of them when rows are renormalised (the sum runs over every kept key).
        var (t0, t1) = layout.HideSpecial ? (0, layout.Tokens) : (layout.FirstToken(c0), layout.LastToken(c1 - 1) + 1);
        var width = t1 - t0;
        var unitRow = new double[c1 - c0];
        var groupMax = layout.IsIdentity && !mean ? new float[c1 - c0] : null;
        var group = -1;
        // Units are tokens: a pooled row's rows are maxed element-wise, then its columns in groups, vectorised (cell by
        // cell, the model view's 91 thumbnails of 512 tokens took 1.4 ms each); max is exact in any order, so the
        // result is the same.
        void MaxPoolRow(int unit, ReadOnlySpan<float> row)
        {
            var pooledRow = (unit - r0) / factor;
            if (pooledRow == group) TensorPrimitives.Max(groupMax, row, groupMax);
            else
            {
                if (group >= 0) MaxPoolColumns(groupMax, factor, output.AsSpan(group * outCols, outCols));
                row.CopyTo(groupMax);
                group = pooledRow;
            }
        }
        if (groupMax is not null && storedRow is not null)
        {
            for (var unit = r0; unit < r1; unit++) MaxPoolRow(unit, storedRow(unit).Slice(c0, c1 - c0));
            MaxPoolColumns(groupMax, factor, output.AsSpan(group * outCols, outCols));
            return new ViewResult(outRows, outCols, layer, head, factor > 1, factor, output, layout.Units, r0, r1, c0, c1, pooling);
        }
        for (var u = r0; u < r1;)
        {
            var uEnd = u + 1;
            var rowToken0 = layout.FirstToken(u);
            while (uEnd < r1 && (long)(layout.LastToken(uEnd) + 1 - rowToken0) * width <= StepCells) uEnd++;
            var rowToken1 = layout.LastToken(uEnd - 1) + 1;
            // Pooled up to a 512-token head (1 MB): a fresh array per step was zeroed and faulted in for every view.
            // Larger steps stay fresh, so that the pool never holds on to a long analysis's memory.
            var cells = (rowToken1 - rowToken0) * width;
            var rented = cells <= PooledTileCells ? System.Buffers.ArrayPool<float>.Shared.Rent(cells) : new float[cells];
            var tile = rented.AsSpan(0, cells);
            read(rowToken0, rowToken1, t0, t1, tile);
            if (groupMax is not null)
            {
                for (var unit = u; unit < uEnd; unit++) MaxPoolRow(unit, tile.Slice((unit - rowToken0) * width + c0 - t0, c1 - c0));
                if (cells <= PooledTileCells) System.Buffers.ArrayPool<float>.Shared.Return(rented);
                u = uEnd;
                continue;
            }
            for (var unit = u; unit < uEnd; unit++)
            {
                layout.Row(unit, tile, rowToken0, t0, width, c0, unitRow);
                var target = output.AsSpan((unit - r0) / factor * outCols, outCols);
                for (var v = 0; v < unitRow.Length; v++)
                {
                    ref var cell = ref target[v / factor];
                    var value = (float)unitRow[v];
                    if (mean) cell += value;
                    else if (value > cell) cell = value;
                }
            }
            if (cells <= PooledTileCells) System.Buffers.ArrayPool<float>.Shared.Return(rented);
            u = uEnd;
        }
        if (groupMax is not null && group >= 0) MaxPoolColumns(groupMax, factor, output.AsSpan(group * outCols, outCols));
        if (mean)
            for (var r = 0; r < outRows; r++)
            {
                var height = Math.Min(factor, r1 - r0 - r * factor);
                for (var c = 0; c < outCols; c++) output[r * outCols + c] /= height * Math.Min(factor, c1 - c0 - c * factor);
            }
        return new ViewResult(outRows, outCols, layer, head, factor > 1, factor, output, layout.Units, r0, r1, c0, c1, pooling);
    }

    /// <summary>target[j] = max of row[j·factor, (j + 1)·factor).</summary>
    private static void MaxPoolColumns(ReadOnlySpan<float> row, int factor, Span<float> target)
    {
        if (factor == 1) row.CopyTo(target);
        else
            for (var j = 0; j < target.Length; j++)
                target[j] = TensorPrimitives.Max(row.Slice(j * factor, Math.Min(factor, row.Length - j * factor)));
    }

    /// <summary>
    /// One head or a mean (or max) over heads of a long analysis, from the overviews its forward pooled, when the window at the
    /// asked resolution would cost more than <see cref="RecomputeBudget"/> to recompute: served at the overviews' block
    /// size or a multiple of it, the window widened to whole blocks (the answer says which). Null when not applicable.
    /// </summary>
    private static ViewResult? FromOverviews(IAttentionSource source, ViewLayout layout, ViewRequest request, string reduce,
        string pooling, (int Start, int End) rows, (int Start, int End) cols)
    {
        // Only a display request (maxSize) may be coarser than asked; a full-resolution one (an export) is exact.
        if (request.MaxSize is null || source.Overviews is not { } overviews || !layout.IsIdentity) return null;
        var maxOverHeads = reduce == "max";
        if (maxOverHeads && pooling == "mean") return null;                            // not derivable from block maxima
        var n = source.Tokens;
        var asked = MatrixOps.PoolFactor(Math.Max(rows.End - rows.Start, cols.End - cols.Start), request.MaxSize.Value);
        var block = overviews.Factor;
        var headCount = (request.Layer >= 0 ? 1 : source.Layers) * (request.Head >= 0 ? 1 : source.Heads);
        var work = (double)headCount * (rows.End - rows.Start) * (cols.End - cols.Start);
        if (work <= RecomputeBudget) return null;
        var group = Math.Max(1, (asked + block - 1) / block);
        var (rb0, rb1) = (rows.Start / block, (rows.End + block - 1) / block);
        var (cb0, cb1) = (cols.Start / block, (cols.End + block - 1) / block);
        var data = overviews.Read(request.Layer, request.Head, maxOverHeads, pooling == "mean", group, rb0, rb1, cb0, cb1);
        var factor = block * group;
        var (outRows, outCols) = ((rb1 - rb0 + group - 1) / group, (cb1 - cb0 + group - 1) / group);
        return new ViewResult(outRows, outCols, request.Layer, request.Head, factor > 1, factor, data, layout.Units,
            rb0 * block, Math.Min(n, rb1 * block), cb0 * block, Math.Min(n, cb1 * block), pooling);
    }

    /// <summary>Element-wise max over heads (head −1) and/or layers (layer −1) of the whole matrix.</summary>
    internal static void MaxOver(IAttentionSource attention, int layer, int head, Span<float> destination) =>
        attention.Combined(layer, head, max: true, 0, attention.Tokens, 0, attention.Tokens, destination);

    internal static ViewUnit TokenUnit(Token token, int index) =>
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
    public static ViewedMatrix Apply(float[] matrix, IReadOnlyList<Token> tokens, ViewOptions options)
    {
        var n = tokens.Count;
        var layout = ViewLayout.For(tokens, options);
        var all = (0, layout.Units.Length);
        var view = Shape((r0, r1, c0, c1, d) =>
        {
            for (var r = r0; r < r1; r++) matrix.AsSpan(r * n + c0, c1 - c0).CopyTo(d.Slice((r - r0) * (c1 - c0), c1 - c0));
        }, layout, 0, 0, all, all, null, "max");
        return new ViewedMatrix(view.Data, view.Rows, view.Units);
    }
}

/// <summary>
/// Which tokens make each row and column of a view: the kept tokens (special ones dropped when hidden) grouped into
/// units (one token each, or a word's pieces), and how a unit's row is made from the token rows.
/// </summary>
internal sealed class ViewLayout
{
    private readonly int[] _kept;                      // token index of each kept token
    private readonly (int First, int Last)[] _groups;  // each unit's kept tokens, inclusive indices into _kept

    private ViewLayout(int tokens, bool hideSpecial, int[] kept, (int, int)[] groups, ViewUnit[] units)
    {
        (Tokens, HideSpecial, _kept, _groups, Units) = (tokens, hideSpecial, kept, groups, units);
        IsIdentity = !hideSpecial && groups.Length == tokens;
    }

    public int Tokens { get; }
    public bool HideSpecial { get; }
    public ViewUnit[] Units { get; }

    /// <summary>One unit per token, nothing hidden: the view is the matrix itself.</summary>
    public bool IsIdentity { get; }

    public int FirstToken(int unit) => _kept[_groups[unit].First];
    public int LastToken(int unit) => _kept[_groups[unit].Last];

    public static ViewLayout For(IReadOnlyList<Token> tokens, ViewOptions options)
    {
        var n = tokens.Count;
        var kept = Enumerable.Range(0, n).Where(i => !(options.HideSpecial && tokens[i].Special)).ToArray();
        if (!options.WordLevel)
            return new ViewLayout(n, options.HideSpecial, kept, kept.Select((_, k) => (k, k)).ToArray(),
                kept.Select(i => AttentionViews.TokenUnit(tokens[i], i)).ToArray());
        var keptTokens = kept.Select(i => tokens[i]).ToArray();
        var groups = AttentionViews.GroupWords(keptTokens);
        var units = groups.Select(g =>
        {
            var (first, last) = (keptTokens[g.First], keptTokens[g.Last]);
            var text = string.Concat(Enumerable.Range(g.First, g.Last - g.First + 1).Select(i => TokenDisplay.WithoutMarkers(keptTokens[i])));
            return new ViewUnit(text, first.Start, last.End, kept[g.First], kept[g.Last], first.Special);
        }).ToArray();
        return new ViewLayout(n, options.HideSpecial, kept, groups.ToArray(), units);
    }

    /// <summary>
    /// Unit <paramref name="unit"/>'s row over the units from <paramref name="firstUnit"/> (as many as
    /// <paramref name="values"/> holds), from token rows in <paramref name="tile"/> (rows from tileRow0, token columns
    /// from tileCol0, <paramref name="width"/> wide).
    /// </summary>
    public void Row(int unit, ReadOnlySpan<float> tile, int tileRow0, int tileCol0, int width, int firstUnit, double[] values)
    {
        if (IsIdentity)
        {
            var row = tile.Slice((unit - tileRow0) * width + firstUnit - tileCol0, values.Length);
            for (var v = 0; v < values.Length; v++) values[v] = row[v];
            return;
        }
        Array.Clear(values);
        var (g0, g1) = _groups[unit];
        for (var k = g0; k <= g1; k++)
        {
            var row = tile.Slice((_kept[k] - tileRow0) * width, width);
            double sum = 0;
            if (HideSpecial)
                foreach (var c in _kept) sum += row[c - tileCol0];
            for (var v = 0; v < values.Length; v++)
            {
                var (h0, h1) = _groups[firstUnit + v];
                for (var kk = h0; kk <= h1; kk++)
                {
                    var value = row[_kept[kk] - tileCol0];
                    values[v] += HideSpecial && sum > 0 ? (float)(value / sum) : value;
                }
            }
        }
        var pieces = g1 - g0 + 1;
        if (pieces > 1)
            for (var v = 0; v < values.Length; v++) values[v] /= pieces;
    }
}
