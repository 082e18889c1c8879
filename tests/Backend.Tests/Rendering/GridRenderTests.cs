using AttentionViz.Backend.Rendering;
using SkiaSharp;
using static AttentionViz.Backend.Tests.Rendering.RenderTestSupport;

namespace AttentionViz.Backend.Tests.Rendering;

[TestClass]
public sealed class GridRenderTests
{
    [TestMethod]
    public void GridHasOneThumbnailPerLayerAndHeadWithTheirValues()
    {
        // Thumbnail (layer l, head h) is uniform (l·3 + h + 1)/6 except cell (0, n-1) of (1, 2), which is 0.
        var analysis = HandMade(["a", "b", "c", "d"], 2, 3, (l, h, q, k) => l == 1 && h == 2 && q == 0 && k == 3 ? 0 : (l * 3 + h + 1) / 6f);
        var image = AttentionRenderer.Grid(analysis, new RenderOptions(Size: 40));
        Save("grid-known.png", image.Png);
        using var bitmap = Decode(image.Png);
        Assert.AreEqual((image.Width, image.Height), (bitmap.Width, bitmap.Height));
        var layout = image.Layout;
        Assert.AreEqual((10, 4, 44), (layout.Cell, layout.Cells, layout.Pitch));
        Assert.AreEqual(1f, layout.ScaleMax);
        // Width: left gutter + 3 thumbnails and 2 gaps + colour bar and ticks; height: 2 thumbnails, or the bar's minimum.
        Assert.AreEqual(layout.Left + 3 * 44 - 4, layout.ColorBar.Left - 12);
        Assert.AreEqual(image.Height, layout.Top + Math.Max(2 * 44 - 4, 120) + 10 + (int)LabelFont.Create(11).Spacing / 2);
        for (var l = 0; l < 2; l++)
            for (var h = 0; h < 3; h++)
            {
                var expected = ColorMap.Viridis.At((l * 3 + h + 1) / 6.0);
                AssertColor(expected, CellColor(bitmap, layout.Left + h * 44, layout.Top + l * 44, 10, 2, 2), 1, $"thumbnail L{l} H{h}");
            }
        AssertColor(ColorMap.Viridis.At(0), CellColor(bitmap, layout.Left + 2 * 44, layout.Top + 44, 10, 0, 3), 1, "the known dark cell of L1 H2");
        Assert.AreEqual(SKColors.White, bitmap.GetPixel(layout.Left + 41, layout.Top + 5), "a gap between thumbnails");
        Assert.IsGreaterThan(30, Ink(bitmap, layout.RowLabels, SKColors.White), "layer labels");
        Assert.IsGreaterThan(30, Ink(bitmap, layout.ColumnLabels, SKColors.White), "head labels");
    }

    [TestMethod]
    public void LongInputsArePooledToTheThumbnailSize()
    {
        var analysis = HandMade(Enumerable.Range(0, 300).Select(i => $"t{i}").ToArray(), 2, 2, RandomRows(300, 5));
        var image = AttentionRenderer.Grid(analysis, new RenderOptions(Size: 64));
        Assert.AreEqual((5, 60, 1), (image.Layout.PoolFactor, image.Layout.Cells, image.Layout.Cell));
        Save("grid-pooled.png", image.Png);
        using var bitmap = Decode(image.Png);
        Assert.AreEqual(image.Width, bitmap.Width);
    }
}
