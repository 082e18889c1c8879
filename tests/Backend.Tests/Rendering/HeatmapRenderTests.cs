using System.Diagnostics;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Rendering;
using AttentionViz.Backend.Tokenization;
using SkiaSharp;
using static AttentionViz.Backend.Tests.Rendering.RenderTestSupport;

namespace AttentionViz.Backend.Tests.Rendering;

/// <summary>Decodes rendered PNGs and checks what a person would see: cell colours, the colour bar, label text.</summary>
[TestClass]
public sealed class HeatmapRenderTests
{
    public TestContext TestContext { get; set; } = null!;

    // Entries 0, 50, 100, 125, 200 and 255 of the published 256-entry viridis table (mpl-colormaps, CC0).
    private static readonly Dictionary<int, (double R, double G, double B)> PublishedViridis = new()
    {
        [0] = (0.267004, 0.004874, 0.329415),
        [50] = (0.255645, 0.260703, 0.528312),
        [100] = (0.166617, 0.463708, 0.558119),
        [125] = (0.131172, 0.555899, 0.552459),
        [200] = (0.440137, 0.811138, 0.340967),
        [255] = (0.993248, 0.906157, 0.143936),
    };

    private static SKColor Published(int index)
    {
        var (r, g, b) = PublishedViridis[index];
        return new SKColor((byte)Math.Round(r * 255), (byte)Math.Round(g * 255), (byte)Math.Round(b * 255));
    }

    // Layer 1, head 2: each cell holds index/255 of a published viridis entry. Row 0 ends bright, row 3 starts dark:
    // rows are query tokens top to bottom, columns key tokens left to right.
    private static readonly int[,] KnownIndices =
    {
        { 0, 50, 100, 255 },
        { 125, 200, 0, 0 },
        { 50, 50, 50, 50 },
        { 0, 100, 200, 125 },
    };

    private static readonly string[] Tokens = ["[CLS]", "hello", "world", "[SEP]"];

    private static StoredAnalysis Known() =>
        HandMade(Tokens, 2, 3, (l, h, q, k) => l == 1 && h == 2 ? KnownIndices[q, k] / 255f : 0.25f);

    [TestMethod]
    public void CellsHaveTheColourMapsColourAtTheirValueWithQueriesDownAndKeysAcross()
    {
        var image = AttentionRenderer.Heatmap(Known(), 1, 2, new RenderOptions(CellSize: 24));
        Save("known-cells.png", image.Png);
        using var bitmap = Decode(image.Png);
        Assert.AreEqual((image.Width, image.Height), (bitmap.Width, bitmap.Height));
        var layout = image.Layout;
        Assert.AreEqual((24, 4, 1), (layout.Cell, layout.Cells, layout.PoolFactor));
        Assert.AreEqual(1f, layout.ScaleMax, "the default scale tops out at the largest value");
        for (var q = 0; q < 4; q++)
            for (var k = 0; k < 4; k++)
            {
                var expected = Published(KnownIndices[q, k]);
                // Every pixel of the cell, corners included, has the colour: no smoothing across cells.
                foreach (var (dx, dy) in new[] { (0, 0), (23, 0), (0, 23), (23, 23), (12, 12) })
                    AssertColor(expected, bitmap.GetPixel(layout.Left + k * 24 + dx, layout.Top + q * 24 + dy), 1,
                        $"cell ({q}, {k}) pixel +({dx}, {dy})");
            }
    }

    // "[CLS] hel ##lo world [SEP]": two special tokens and a word of two pieces. Entry (q, k) = (1 + q + 2k) / Σ.
    private static readonly Token[] PieceTokens =
    [
        new(101, "[CLS]", 0, 0, true), new(1, "hel", 0, 3, false), new(2, "##lo", 3, 5, false), new(3, "world", 6, 11, false),
            new(102, "[SEP]", 0, 0, true),
    ];

    private static float PieceValue(int q, int k) => (1 + q + 2 * k) / (float)Enumerable.Range(0, 5).Sum(j => 1 + q + 2 * j);

    private static StoredAnalysis Pieces() =>
        HandMade(PieceTokens.Select(t => t.Text).ToArray(), 2, 2, (_, _, q, k) => PieceValue(q, k), tokens: PieceTokens);

    /// <summary>The matrix shown with hideSpecial (and wordLevel), computed here from the definitions in docs/protocol.md.</summary>
    private static double[,] ExpectedView(bool words)
    {
        int[] kept = [1, 2, 3];
        var renormalised = new double[3, 3];
        for (var r = 0; r < 3; r++)
        {
            var sum = kept.Sum(k => (double)PieceValue(kept[r], k));
            for (var c = 0; c < 3; c++) renormalised[r, c] = PieceValue(kept[r], kept[c]) / sum;
        }
        if (!words) return renormalised;
        int[][] groups = [[0, 1], [2]];                                                // "hel ##lo", "world"
        var merged = new double[2, 2];
        for (var gr = 0; gr < 2; gr++)
            for (var gc = 0; gc < 2; gc++)
                merged[gr, gc] = groups[gr].Sum(r => groups[gc].Sum(c => renormalised[r, c])) / groups[gr].Length;
        return merged;
    }

    [TestMethod]
    [DataRow(false, DisplayName = "hide special tokens")]
    [DataRow(true, DisplayName = "hide special tokens, word level")]
    public void ViewOptionsDrawTheViewedMatrix(bool words)
    {
        var image = AttentionRenderer.Heatmap(Pieces(), 1, 1, new RenderOptions(CellSize: 20), new ViewOptions(HideSpecial: true, WordLevel: words));
        Save(words ? "view-words.png" : "view-no-special.png", image.Png);
        using var bitmap = Decode(image.Png);
        var expected = ExpectedView(words);
        var size = expected.GetLength(0);
        Assert.AreEqual(size, image.Layout.Cells, "one row and column per shown unit");
        var max = expected.Cast<double>().Max();
        Assert.AreEqual(max, image.Layout.ScaleMax, 1e-6);
        for (var q = 0; q < size; q++)
            for (var k = 0; k < size; k++)
                AssertColor(ColorMap.Viridis.At(expected[q, k] / max), CellColor(bitmap, image.Layout.Left, image.Layout.Top, 20, q, k), 1,
                    $"cell ({q}, {k})");
        Assert.IsGreaterThan(30, Ink(bitmap, image.Layout.RowLabels, SKColors.White), "unit labels are drawn");
    }

    [TestMethod]
    public void GridAppliesTheViewOptionsToEveryHead()
    {
        var image = AttentionRenderer.Grid(Pieces(), new RenderOptions(Size: 30), new ViewOptions(HideSpecial: true, WordLevel: true));
        using var bitmap = Decode(image.Png);
        Assert.AreEqual((2, 15), (image.Layout.Cells, image.Layout.Cell));
        var expected = ExpectedView(words: true);
        var max = expected.Cast<double>().Max();
        AssertColor(ColorMap.Viridis.At(expected[1, 0] / max),
            CellColor(bitmap, image.Layout.Left + image.Layout.Pitch, image.Layout.Top + image.Layout.Pitch, 15, 1, 0), 1, "L1 H1 cell (1, 0)");
    }

    [TestMethod]
    public void HidingEveryTokenIsABadRequestNotAnEmptyImage()
    {
        var onlySpecial = HandMade(["[CLS]", "[SEP]"], 1, 1, (_, _, _, _) => 0.5f,
            tokens: [new(101, "[CLS]", 0, 0, true), new(102, "[SEP]", 0, 0, true)]);
        var error = Assert.ThrowsExactly<InvalidRequestException>(() => AttentionRenderer.Heatmap(onlySpecial, 0, 0, new RenderOptions(),
            new ViewOptions(HideSpecial: true)));
        StringAssert.Contains(error.Message, "special");
        Assert.ThrowsExactly<InvalidRequestException>(() => AttentionRenderer.Grid(onlySpecial, new RenderOptions(),
            new ViewOptions(HideSpecial: true)));
    }

    [TestMethod]
    public void ScaleMaxSetsTheTopOfTheColourMap()
    {
        var image = AttentionRenderer.Heatmap(Known(), 1, 2, new RenderOptions(CellSize: 10, ScaleMax: 2));
        using var bitmap = Decode(image.Png);
        // 255/255 = 1 on a 0–2 scale is t = 0.5: between entries 127 and 128 of the table.
        var mid = ColorMap.Viridis.At(0.5);
        AssertColor(new SKColor(33, 144, 141), mid, 1, "viridis(0.5)");
        AssertColor(mid, CellColor(bitmap, image.Layout.Left, image.Layout.Top, 10, 0, 3), 1, "cell (0, 3)");
    }

    [TestMethod]
    public void ColourBarRunsFromZeroAtTheBottomToTheMaximumAtTheTop()
    {
        var image = AttentionRenderer.Heatmap(Known(), 1, 2, new RenderOptions(CellSize: 40));
        using var bitmap = Decode(image.Png);
        var bar = image.Layout.ColorBar;
        var x = bar.MidX;
        AssertColor(Published(255), bitmap.GetPixel(x, bar.Top), 1, "top of the bar");
        AssertColor(Published(0), bitmap.GetPixel(x, bar.Bottom - 1), 1, "bottom of the bar");
        AssertColor(new SKColor(33, 144, 141), bitmap.GetPixel(x, bar.Top + bar.Height / 2), 2, "middle of the bar");
        // Viridis' green channel rises monotonically: the gradient is there, pixel by pixel.
        for (var y = bar.Bottom - 1; y > bar.Top; y--)
            Assert.IsGreaterThanOrEqualTo(bitmap.GetPixel(x, y).Green, bitmap.GetPixel(x, y - 1).Green, $"green at y = {y - 1}");
        Assert.IsGreaterThan(100, bar.Height);
        // The tick labels right of the bar are drawn.
        Assert.IsGreaterThan(20,
            Ink(bitmap, SKRectI.Create(bar.Right + 4, bar.Top - 8, image.Width - bar.Right - 4, bar.Height + 16), SKColors.White));
    }

    [TestMethod]
    public void LabelsDrawTextPixelsThatEmptyLabelsDoNot()
    {
        var analysis = Known();
        var matrix = new float[16];
        analysis.Attention.Matrix(1, 2, matrix);
        var options = new RenderOptions(CellSize: 24);
        var labelled = AttentionRenderer.Heatmap(matrix, 4, Tokens, Tokens, "labelled", options);
        string[] none = ["", "", "", ""];
        var empty = AttentionRenderer.Heatmap(matrix, 4, none, none, "labelled", options);
        Save("labels.png", labelled.Png);
        Save("labels-empty.png", empty.Png);
        using var withText = Decode(labelled.Png);
        using var without = Decode(empty.Png);
        var rowInk = Ink(withText, labelled.Layout.RowLabels, SKColors.White);
        var columnInk = Ink(withText, labelled.Layout.ColumnLabels, SKColors.White);
        TestContext.WriteLine($"label ink: rows {rowInk} px, columns {columnInk} px");
        Assert.IsGreaterThan(150, rowInk, "row labels draw text");
        Assert.IsGreaterThan(150, columnInk, "column labels draw text");
        Assert.AreEqual(0, Ink(without, empty.Layout.RowLabels, SKColors.White), "no row labels, no ink");
        Assert.AreEqual(0, Ink(without, empty.Layout.ColumnLabels, SKColors.White), "no column labels, no ink");
        // Each row label sits beside its own row: ink in the band of every row.
        for (var q = 0; q < 4; q++)
        {
            var band = SKRectI.Create(labelled.Layout.RowLabels.Left, labelled.Layout.Top + q * 24, labelled.Layout.RowLabels.Width, 24);
            Assert.IsGreaterThan(20, Ink(withText, band, SKColors.White), $"label of row {q}");
        }
    }

    [TestMethod]
    public void DarkThemeHasADarkBackgroundAndLightText()
    {
        var image = AttentionRenderer.Heatmap(Known(), 1, 2, new RenderOptions(CellSize: 24, Theme: "dark"));
        Save("known-dark.png", image.Png);
        using var bitmap = Decode(image.Png);
        var background = new SKColor(0x1e, 0x1e, 0x1e);
        Assert.AreEqual(background, bitmap.GetPixel(1, 1));
        var rows = image.Layout.RowLabels;
        Assert.IsGreaterThan(150, Ink(bitmap, rows, background));
        var brightest = 0;
        for (var y = rows.Top; y < rows.Bottom; y++)
            for (var x = rows.Left; x < rows.Right; x++)
                brightest = Math.Max(brightest, bitmap.GetPixel(x, y).Red);
        Assert.IsGreaterThan(180, brightest, "text is light on the dark background");
    }

    [TestMethod]
    public void LongInputsAreMaxPooledToMaxSize()
    {
        var values = RandomRows(10, 7);
        var analysis = HandMade(Enumerable.Range(0, 10).Select(i => $"t{i}").ToArray(), 1, 1, values);
        var image = AttentionRenderer.Heatmap(analysis, 0, 0, new RenderOptions(CellSize: 12, MaxSize: 4));
        Save("pooled.png", image.Png);
        Assert.AreEqual((3, 4), (image.Layout.PoolFactor, image.Layout.Cells));
        using var bitmap = Decode(image.Png);
        var blockMax = Enumerable.Range(0, 3).SelectMany(q => Enumerable.Range(3, 3).Select(k => values(0, 0, q, k))).Max();
        AssertColor(ColorMap.Viridis.At(blockMax / image.Layout.ScaleMax), CellColor(bitmap, image.Layout.Left, image.Layout.Top, 12, 0, 1), 1,
            "block (0, 1)");
        var lastBlock = values(0, 0, 9, 9);                                           // the last block holds one token
        AssertColor(ColorMap.Viridis.At(lastBlock / image.Layout.ScaleMax), CellColor(bitmap, image.Layout.Left, image.Layout.Top, 12, 3, 3), 1,
            "block (3, 3)");
    }

    [TestMethod]
    public void GreysMapsZeroToWhiteAndTheMaximumToBlack()
    {
        var image = AttentionRenderer.Heatmap(Known(), 1, 2, new RenderOptions(CellSize: 8, ColorMap: "greys"));
        using var bitmap = Decode(image.Png);
        Assert.AreEqual(SKColors.Black, CellColor(bitmap, image.Layout.Left, image.Layout.Top, 8, 0, 3));
        Assert.AreEqual(SKColors.White, CellColor(bitmap, image.Layout.Left, image.Layout.Top, 8, 3, 0));
    }

    [TestMethod]
    public void HostileTokenTextRendersWithoutThrowingAndStaysVisible()
    {
        string[] hostile =
        [
            "<img src=x onerror=alert(1)>", "\u0000\u0007\n\t\r", "\u202Eevil", "😀", "中文", "\uD800", "", "a\u200Db",
            "Ġhello", "▁world", "##ing", new string('w', 5000), "\u0085\u2028\u2029", "naïve Ελληνικά Привет",
        ];
        var analysis = HandMade(hostile, 2, 2, RandomRows(hostile.Length, 3));
        var heatmap = AttentionRenderer.Heatmap(analysis, -1, -1, new RenderOptions());
        var grid = AttentionRenderer.Grid(analysis, new RenderOptions());
        Save("hostile.png", heatmap.Png);
        using var bitmap = Decode(heatmap.Png);
        using var gridBitmap = Decode(grid.Png);
        var layout = heatmap.Layout;
        // A label made only of an invisible bidi override still draws (as its escaped code point).
        var overrideRow = SKRectI.Create(layout.RowLabels.Left, layout.Top + 2 * layout.Cell, layout.RowLabels.Width, layout.Cell);
        Assert.IsGreaterThan(20, Ink(bitmap, overrideRow, SKColors.White));
        var emojiRow = SKRectI.Create(layout.RowLabels.Left, layout.Top + 3 * layout.Cell, layout.RowLabels.Width, layout.Cell);
        Assert.IsGreaterThan(20, Ink(bitmap, emojiRow, SKColors.White));
        Assert.IsLessThanOrEqualTo(10 + 160 + 6 + 12 + 14 * layout.Cell + 100, heatmap.Width, "a 5000-character token is cut, not drawn in full");
    }

    [TestMethod]
    public void RendersA512TokenHeatmapInTensOfMilliseconds()
    {
        const int n = 512;
        var analysis = HandMade(Enumerable.Range(0, n).Select(i => $"tok{i}").ToArray(), 1, 1, RandomRows(n, 11));
        var options = new RenderOptions();
        var image = AttentionRenderer.Heatmap(analysis, 0, 0, options);            // warm-up (JIT, font, native code)
        Save("random-512.png", image.Png);
        Assert.AreEqual((1, 512), (image.Layout.Cell, image.Layout.Cells));
        var times = new List<double>();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        for (var run = 0; run < 7; run++)
        {
            var clock = Stopwatch.StartNew();
            image = AttentionRenderer.Heatmap(analysis, 0, 0, options);
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        // CPU time as well: on 2 shared cores the wall clock mostly measures the neighbours.
        var cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / 7;
        times.Sort();
        var bigger = Stopwatch.StartNew();
        var cell2 = AttentionRenderer.Heatmap(analysis, 0, 0, new RenderOptions(CellSize: 2));
        var bigMs = bigger.Elapsed.TotalMilliseconds;
        var report = $"512×512 heatmap ({image.Width}×{image.Height} px, {image.Png.Length} bytes) render + PNG encode: median {times[3]:F1} ms, " +
            $"min {times[0]:F1} ms, max {times[^1]:F1} ms, process CPU {cpuMs:F1} ms per image; cell 2 ({cell2.Width}×{cell2.Height} px): " +
            $"{bigMs:F1} ms";
        TestContext.WriteLine(report);
        File.WriteAllText(Path.Combine(OutputFolder, "timing.txt"), report + "\n");
        Assert.IsLessThan(500, times[3], "median render + encode time (generous: 2 shared cores)");
    }

    [TestMethod]
    public void BadOptionsAreBadRequests()
    {
        var analysis = Known();
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(analysis, 2, 0, new RenderOptions()));
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(analysis, 0, 3, new RenderOptions()));
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(analysis, -2, 0, new RenderOptions()));
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(analysis, 0, 0, new RenderOptions(CellSize: 0)));
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(analysis, 0, 0, new RenderOptions(ColorMap: "jet")));
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(analysis, 0, 0, new RenderOptions(Theme: "blue")));
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(analysis, 0, 0, new RenderOptions(MaxSize: 0)));
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(analysis, 0, 0, new RenderOptions(ScaleMax: float.NaN)));
        Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Grid(analysis, new RenderOptions(CellSize: 4)));
        var big = HandMade(Enumerable.Range(0, 512).Select(i => $"t{i}").ToArray(), 1, 1, (_, _, _, _) => 1f / 512);
        var error = Assert.Throws<InvalidRequestException>(() => AttentionRenderer.Heatmap(big, 0, 0, new RenderOptions(CellSize: 32)));
        StringAssert.Contains(error.Message, "maxSize");
    }
}
