using AttentionViz.Backend.Rendering;

namespace AttentionViz.Backend.Tests.Rendering;

[TestClass]
public sealed class ColorMapTableTests
{
    /// <summary>The public table a generator emits for the client is the one the renderer interpolates.</summary>
    [TestMethod]
    public void ViridisPointsAreTheRenderersControlPoints()
    {
        var points = ColorMap.ViridisPoints;
        Assert.HasCount(52, points);
        Assert.AreEqual((0.267004, 0.004874, 0.329415), points[0]);
        Assert.AreEqual((0.993248, 0.906157, 0.143936), points[^1]);
        Assert.IsFalse(points is (double, double, double)[], "read-only: a caller cannot change the renderer's colours");
        for (var k = 0; k < points.Count; k++)
        {
            var (r, g, b) = points[k];
            var expected = new SkiaSharp.SKColor(Byte(r), Byte(g), Byte(b));
            Assert.AreEqual(expected, ColorMap.Viridis.At((double)k / (points.Count - 1)), $"control point {k}");
        }
    }

    private static byte Byte(double channel) => (byte)Math.Round(channel * 255, MidpointRounding.AwayFromZero);
}
