using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Tokenization;
using static AttentionViz.Backend.Tests.Analysis.AnalysisTestData;

namespace AttentionViz.Backend.Tests.Analysis;

[TestClass]
public sealed class ViewAndHistogramTests
{
    [TestMethod]
    public void HideSpecialDropsTheirRowsAndColumnsAndRenormalises()
    {
        var tokens = Spans(("[CLS]", 0, 0, true), ("a", 0, 1, false), ("b", 2, 3, false), ("[SEP]", 0, 0, true));
        float[] matrix =
        [
            0.4f, 0.2f, 0.2f, 0.2f,
            0.5f, 0.3f, 0.1f, 0.1f,
            0.6f, 0.0f, 0.2f, 0.2f,
            0.1f, 0.1f, 0.1f, 0.7f,
        ];
        var view = AttentionViews.Apply(matrix, tokens, new ViewOptions(HideSpecial: true));
        Assert.AreEqual(2, view.Size);
        CollectionAssert.AreEqual(new[] { "a", "b" }, view.Units.Select(u => u.Text).ToArray());
        CollectionAssert.AreEqual(new[] { 1, 2 }, view.Units.Select(u => u.FirstToken).ToArray());
        double[] expected = [0.75, 0.25, 0, 1];                                        // [.3,.1]/.4 and [0,.2]/.2
        for (var k = 0; k < 4; k++) Assert.AreEqual(expected[k], view.Data[k], 1e-6);

        var unchanged = AttentionViews.Apply(matrix, tokens, new ViewOptions());
        CollectionAssert.AreEqual(matrix, unchanged.Data);
        Assert.IsTrue(unchanged.Units[0].Special);
    }

    [TestMethod]
    public void WordPieceGrouping()
    {
        // "[CLS] unbelievable dogs. [SEP]" as un ##believ ##able dog ##s .
        var tokens = Spans(("[CLS]", 0, 0, true), ("un", 0, 2, false), ("##believ", 2, 8, false), ("##able", 8, 12, false),
            ("dog", 13, 16, false), ("##s", 16, 17, false), (".", 17, 18, false), ("[SEP]", 0, 0, true));
        var groups = AttentionViews.GroupWords(tokens);
        CollectionAssert.AreEqual(new[] { (0, 0), (1, 3), (4, 6), (7, 7) }, groups.ToArray());
    }

    [TestMethod]
    public void ByteLevelAndSentencePieceGrouping()
    {
        // GPT-2 "Hello world's end": Hello | Ġworld 's | Ġend; byte-level spans include the leading space.
        var bytes = Spans(("Hello", 0, 5, false), ("Ġworld", 5, 11, false), ("'s", 11, 13, false), ("Ġend", 13, 17, false));
        CollectionAssert.AreEqual(new[] { (0, 0), (1, 2), (3, 3) }, AttentionViews.GroupWords(bytes).ToArray());
        // SentencePiece with BOS: <s> ▁Hel lo ▁there, spans that skip the space.
        var pieces = Spans(("<s>", 0, 0, true), ("▁Hel", 0, 3, false), ("lo", 3, 5, false), ("▁there", 6, 11, false));
        CollectionAssert.AreEqual(new[] { (0, 0), (1, 2), (3, 3) }, AttentionViews.GroupWords(pieces).ToArray());
        // Ids only (spans [0,0)): nothing merges unless marked with ##.
        var bare = Spans(("a", 0, 0, false), ("b", 0, 0, false), ("##c", 0, 0, false));
        CollectionAssert.AreEqual(new[] { (0, 0), (1, 2) }, AttentionViews.GroupWords(bare).ToArray());
    }

    [TestMethod]
    public void ALoneDoubleHashIsALiteralTokenAsTokenDisplaySays()
    {
        // "a ##": the lone ## is text (TokenDisplay.IsContinuation), so the space before it splits the words.
        var spaced = Spans(("a", 0, 1, false), ("##", 2, 4, false), ("##b", 4, 5, false));
        Assert.IsFalse(TokenDisplay.IsContinuation("##"));
        CollectionAssert.AreEqual(new[] { (0, 0), (1, 2) }, AttentionViews.GroupWords(spaced).ToArray());
        // A newline (byte-level Ċ) starts a word even where the spans touch.
        var lines = Spans(("a", 0, 1, false), ("Ċ", 1, 2, false), ("b", 2, 3, false));
        CollectionAssert.AreEqual(new[] { (0, 0), (1, 2) }, AttentionViews.GroupWords(lines).ToArray());
    }

    [TestMethod]
    public void WordLevelSumsToAndAveragesFrom()
    {
        // Tokens: x | y ##z  → words x, yz.
        var tokens = Spans(("x", 0, 1, false), ("y", 2, 3, false), ("##z", 3, 4, false));
        float[] matrix =
        [
            0.2f, 0.3f, 0.5f,
            0.6f, 0.1f, 0.3f,
            0.0f, 0.8f, 0.2f,
        ];
        var view = AttentionViews.Apply(matrix, tokens, new ViewOptions(WordLevel: true));
        Assert.AreEqual(2, view.Size);
        Assert.AreEqual("yz", view.Units[1].Text);
        Assert.AreEqual((2, 4, 1, 2), (view.Units[1].Start, view.Units[1].End, view.Units[1].FirstToken, view.Units[1].LastToken));
        // x→x 0.2, x→yz 0.3+0.5; yz→x mean(0.6, 0) = 0.3, yz→yz mean(0.4, 1.0) = 0.7.
        double[] expected = [0.2, 0.8, 0.3, 0.7];
        for (var k = 0; k < 4; k++) Assert.AreEqual(expected[k], view.Data[k], 1e-6);
    }

    [TestMethod]
    public void HideSpecialThenWordLevel()
    {
        var tokens = Spans(("[CLS]", 0, 0, true), ("y", 0, 1, false), ("##z", 1, 2, false), ("[SEP]", 0, 0, true));
        using var attention = Heads(4, Uniform(4));
        var view = AttentionViews.Apply(Matrix(attention, 0, 0), tokens, new ViewOptions(true, true));
        Assert.AreEqual(1, view.Size);
        Assert.AreEqual(1.0, view.Data[0], 1e-6);
        Assert.AreEqual("yz", view.Units[0].Text);
    }

    [TestMethod]
    [DataRow(37, 8, null, null)]
    [DataRow(37, 5, new[] { 3, 30 }, new[] { 1, 36 })]
    [DataRow(50, 48, null, null)]
    [DataRow(50, 7, new[] { 0, 49 }, new[] { 9, 10 })]
    public void MaxPooledViewsOfAStoredAnalysisEqualANaivePool(int n, int maxSize, int[]? rowRange, int[]? colRange)
    {
        // One head (pooled where it is stored), a layer's mean and the mean of everything, against pooling by hand.
        var analysis = Rendering.RenderTestSupport.HandMade(
            Enumerable.Range(0, n).Select(i => $"t{i}").ToArray(), 2, 3, Rendering.RenderTestSupport.RandomRows(n, 11));
        var (r0, r1) = rowRange is null ? (0, n) : (rowRange[0], rowRange[1]);
        var (c0, c1) = colRange is null ? (0, n) : (colRange[0], colRange[1]);
        foreach (var (layer, head) in new[] { (1, 2), (0, 0), (1, -1), (-1, -1) })
        {
            var matrix = new float[n * n];
            analysis.Attention.Matrix(layer, head, matrix);
            var request = new ViewRequest(layer, head, new ViewOptions(), maxSize, RowRange: rowRange, ColRange: colRange);
            var view = AttentionViews.View(analysis, request);
            var factor = MatrixOps.PoolFactor(Math.Max(r1 - r0, c1 - c0), maxSize);
            Assert.AreEqual(((r1 - r0 + factor - 1) / factor, (c1 - c0 + factor - 1) / factor, factor), (view.Rows, view.Cols, view.PoolFactor));
            for (var br = 0; br < view.Rows; br++)
                for (var bc = 0; bc < view.Cols; bc++)
                {
                    var want = float.NegativeInfinity;
                    for (var r = r0 + br * factor; r < Math.Min(r1, r0 + (br + 1) * factor); r++)
                        for (var c = c0 + bc * factor; c < Math.Min(c1, c0 + (bc + 1) * factor); c++)
                            want = Math.Max(want, matrix[r * n + c]);
                    Assert.AreEqual(want, view.Data[br * view.Cols + bc], $"L{layer} H{head} block ({br}, {bc})");
                }
        }
    }

    [TestMethod]
    public void WeightHistogramCountsEveryEntry()
    {
        const int n = 9;
        var tokens = Spans(("[CLS]", 0, 0, true), ("a", 0, 1, false), ("b", 2, 3, false), ("c", 4, 5, false), ("d", 6, 7, false),
            ("e", 8, 9, false), ("f", 10, 11, false), ("g", 12, 13, false), ("[SEP]", 0, 0, true));
        using var attention = Random(3, 4, n, seed: 2);
        var all = Histograms.Weights(attention, tokens, false, null, null, 20, false);
        Assert.AreEqual(3L * 4 * n * n, all.Total);
        Assert.AreEqual(all.Total, all.Counts.Sum());
        Assert.HasCount(21, all.Edges);
        var layer = Histograms.Weights(attention, tokens, false, 1, null, 20, false);
        Assert.AreEqual(4L * n * n, layer.Counts.Sum());
        var head = Histograms.Weights(attention, tokens, false, 1, 2, 7, true);
        Assert.AreEqual((long)(n - 2) * (n - 2), head.Counts.Sum());
        Assert.AreEqual(head.Total, head.Counts.Sum());

        // Counted by hand for one head.
        var values = Matrix(attention, 1, 2);
        var manual = new long[7];
        for (var i = 1; i < n - 1; i++)
            for (var j = 1; j < n - 1; j++) manual[Math.Min(6, (int)(values[i * n + j] * 7))]++;
        CollectionAssert.AreEqual(manual, head.Counts);

        using var causal = Random(2, 2, n, seed: 4, causal: true);
        var lower = Histograms.Weights(causal, tokens, true, null, null, 10, false);
        Assert.AreEqual(2L * 2 * n * (n + 1) / 2, lower.Counts.Sum(), "masked entries of a causal model are no weights");
    }

    [TestMethod]
    public void ValueHistogram()
    {
        var h = Histograms.Values([0, 0.1, 0.5, 1, 1], 4);
        CollectionAssert.AreEqual(new long[] { 2, 0, 1, 2 }, h.Counts);
        Assert.AreEqual(5, h.Total);
        var flat = Histograms.Values([2, 2, 2], 3);
        Assert.AreEqual(3, flat.Counts.Sum());
    }
}
