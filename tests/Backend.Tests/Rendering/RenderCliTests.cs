using System.Diagnostics;
using System.Globalization;
using AttentionViz.Backend.Rendering;
using AttentionViz.Backend.Tests.Support;
using SkiaSharp;
using static AttentionViz.Backend.Tests.Rendering.RenderTestSupport;

namespace AttentionViz.Backend.Tests.Rendering;

/// <summary>`render --out` and `analyze --out x.csv` through the real executable.</summary>
[TestClass]
public sealed class RenderCliTests
{
    private static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) => BackendCli.Run(args);

    private static string Temp(string name) => Path.Combine(Directory.CreateTempSubdirectory("avz-render-cli").FullName, name);

    [TestMethod]
    public void RenderWritesTheHeatmapAndTheGrid()
    {
        var heatmap = Temp("fox.png");
        var (code, stdout, stderr) = Run("render", "--text", "The quick brown fox jumps over the lazy dog.", "--layer", "2", "--head", "3",
            "--cell-size", "20", "--out", heatmap);
        Assert.AreEqual(0, code, stderr);
        Assert.AreEqual("", stdout, "stdout stays empty: the message goes to stderr");
        var png = File.ReadAllBytes(heatmap);
        Save("cli-fox-layer2-head3.png", png);
        using (var bitmap = Decode(png))
        {
            // 12 tokens of 20 px, plus gutters and the colour bar.
            Assert.IsGreaterThan(240, bitmap.Width);
            Assert.IsGreaterThan(240, bitmap.Height);
        }
        StringAssert.Contains(stderr, "wrote " + heatmap);

        var grid = Temp("grid.png");
        (code, _, stderr) = Run("render", "--ids", "101,7592,2088,102", "--grid", "--size", "32", "--theme", "dark", "--out", grid);
        Assert.AreEqual(0, code, stderr);
        var gridPng = File.ReadAllBytes(grid);
        Save("cli-ids-grid-dark.png", gridPng);
        using var gridBitmap = Decode(gridPng);
        Assert.AreEqual(new SKColor(0x1e, 0x1e, 0x1e), gridBitmap.GetPixel(0, 0));
        Assert.IsGreaterThan(12 * 32, gridBitmap.Width, "12 heads across");
        Assert.IsGreaterThan(6 * 32, gridBitmap.Height, "6 layers down");
    }

    [TestMethod]
    public void RenderHideSpecialDrawsTwoRowsFewer()
    {
        var all = Temp("all.png");
        var trimmed = Temp("trimmed.png");
        foreach (var (path, extra) in new[] { (all, Array.Empty<string>()), (trimmed, new[] { "--hide-special" }) })
        {
            var (code, _, stderr) = Run(["render", "--ids", "101,7592,1010,2088,102", "--cell-size", "40", "--out", path, .. extra]);
            Assert.AreEqual(0, code, stderr);
        }
        using var a = Decode(File.ReadAllBytes(all));
        using var b = Decode(File.ReadAllBytes(trimmed));
        // Two 40 px rows fewer; the rotated column labels' gutter may differ by a few pixels with [CLS]/[SEP] gone.
        Assert.IsTrue(a.Height - b.Height is > 70 and <= 80, $"[CLS] and [SEP] rows are gone: {a.Height} → {b.Height}");
    }

    [TestMethod]
    public void AnalyzeToCsvWritesTheSelectedMatrix()
    {
        var output = Temp("hello.csv");
        var (code, _, stderr) = Run("analyze", "--ids", "101,7592,1010,2088,102", "--layer", "5", "--head", "11", "--out", output);
        Assert.AreEqual(0, code, stderr);
        var records = CsvReader.Parse(File.ReadAllText(output));
        CollectionAssert.AreEqual(new[] { "query \\ key", "[CLS]", "hello", ",", "world", "[SEP]" }, records[0]);
        CollectionAssert.AreEqual(new[] { "vocabulary", "[CLS]", "hello", ",", "world", "[SEP]" }, records[1]);
        StringAssert.StartsWith(File.ReadAllText(output).Split("\r\n")[4], "\",\",", "the comma token is quoted");
        foreach (var row in records.Skip(2))
            Assert.AreEqual(1.0, row[1..].Sum(v => double.Parse(v, CultureInfo.InvariantCulture)), 1e-5, "a softmax row sums to 1");

        var json = Temp("hello.json");
        (code, _, stderr) = Run("analyze", "--ids", "101,7592,102", "--layer", "1", "--out", json);
        Assert.AreEqual(2, code, "--layer applies to .csv only");
        StringAssert.Contains(stderr, ".csv");
    }

    [TestMethod]
    public void AnalyzeToCsvAppliesTheViewOptions()
    {
        var output = Temp("hidden.csv");
        var (code, _, stderr) = Run("analyze", "--text", "hello world", "--hide-special", "--out", output);
        Assert.AreEqual(0, code, stderr);
        CollectionAssert.AreEqual(new[] { "query \\ key", "hello", "world" }, CsvReader.Parse(File.ReadAllText(output))[0]);

        (code, _, stderr) = Run("analyze", "--text", "hello world", "--word-level", "--out", Temp("whole.safetensors"));
        Assert.AreEqual(2, code, "the view options apply to .csv only");
        StringAssert.Contains(stderr, "--word-level");
    }

    [TestMethod]
    [DataRow("--text", "hi", "--out", "/nonexistent-folder/x.png", DisplayName = "missing folder")]
    [DataRow("--text", "hi", "--out", "/tmp/x.txt", DisplayName = "not a .png")]
    [DataRow("--text", "hi", "--grid", "--layer", "1", "--out", "/tmp/avz-grid.png", DisplayName = "grid with a layer")]
    [DataRow("--text", "hi", "--layer", "9", "--out", "/tmp/avz-layer9.png", DisplayName = "layer out of range")]
    [DataRow("--text", "hi", "--theme", "neon", "--out", "/tmp/avz-neon.png", DisplayName = "unknown theme")]
    [DataRow("--out", "/tmp/avz-noinput.png", DisplayName = "no input")]
    public void BadRenderInputIsExitCode2(params string[] args)
    {
        var (code, stdout, stderr) = Run(["render", .. args]);
        Assert.AreEqual(2, code, stderr);
        Assert.AreEqual("", stdout);
        StringAssert.Contains(stderr, "error: ");
    }
}
