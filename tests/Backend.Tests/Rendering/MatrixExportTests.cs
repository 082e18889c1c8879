using System.Globalization;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Export;
using static AttentionViz.Backend.Tests.Rendering.RenderTestSupport;

namespace AttentionViz.Backend.Tests.Rendering;

[TestClass]
public sealed class MatrixExportTests
{
    private static readonly string[] Awkward =
        ["[CLS]", "a,b", "say \"hi\"", "line\r\nbreak", "=SUM(A1)", "", " spaced ", "\"", ",", "\n", "naïve", "😀", "[SEP]"];

    private static string Temp(string name) => Path.Combine(Directory.CreateTempSubdirectory("avz-export").FullName, name);

    private static float[] Expected(StoredAnalysis analysis, int layer, int head)
    {
        var n = analysis.Tokens.Count;
        var matrix = new float[n * n];
        analysis.Attention.Matrix(layer, head, matrix);
        return matrix;
    }

    [TestMethod]
    [DataRow(1, 2, DisplayName = "one head")]
    [DataRow(-1, -1, DisplayName = "mean of everything")]
    [DataRow(0, -1, DisplayName = "mean of a layer's heads")]
    public void CsvReadsBackToTheSameTokensAndFloats(int layer, int head)
    {
        var analysis = HandMade(Awkward, 2, 3, RandomRows(Awkward.Length, 42));
        var path = Temp("matrix.csv");
        MatrixExport.WriteCsv(analysis, layer, head, path);
        var records = CsvReader.Parse(File.ReadAllText(path));
        var n = Awkward.Length;
        Assert.HasCount(n + 1, records);
        CollectionAssert.AreEqual(new[] { "query \\ key" }.Concat(Awkward).ToArray(), records[0], "header: the key tokens");
        var expected = Expected(analysis, layer, head);
        for (var q = 0; q < n; q++)
        {
            Assert.HasCount(n + 1, records[q + 1]);
            Assert.AreEqual(Awkward[q], records[q + 1][0], $"row {q}: the query token");
            for (var k = 0; k < n; k++)
            {
                var value = float.Parse(records[q + 1][k + 1], NumberStyles.Float, CultureInfo.InvariantCulture);
                Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[q * n + k]), BitConverter.SingleToInt32Bits(value),
                    $"({q}, {k}): {records[q + 1][k + 1]}");
            }
        }
    }

    [TestMethod]
    public void FieldsAreQuotedOnlyWhenNeeded()
    {
        Assert.AreEqual("plain", MatrixExport.Field("plain"));
        Assert.AreEqual("\"a,b\"", MatrixExport.Field("a,b"));
        Assert.AreEqual("\"say \"\"hi\"\"\"", MatrixExport.Field("say \"hi\""));
        Assert.AreEqual("\"x\ny\"", MatrixExport.Field("x\ny"));
        Assert.AreEqual("\"x\ry\"", MatrixExport.Field("x\ry"));
    }

    [TestMethod]
    public void JsonHoldsTokensAndTheExactMatrix()
    {
        var analysis = HandMade(Awkward, 2, 3, RandomRows(Awkward.Length, 9));
        var path = Temp("matrix.json");
        MatrixExport.WriteJson(analysis, 1, 0, path);
        var json = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        Assert.AreEqual(1, json.GetProperty("layer").GetInt32());
        Assert.AreEqual(0, json.GetProperty("head").GetInt32());
        Assert.AreEqual("test-model", json.GetProperty("model").GetProperty("id").GetString());
        CollectionAssert.AreEqual(Awkward, json.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("text").GetString()).ToArray());
        var expected = Expected(analysis, 1, 0);
        var actual = json.GetProperty("matrix").EnumerateArray().SelectMany(row => row.EnumerateArray().Select(v => v.GetSingle())).ToArray();
        CollectionAssert.AreEqual(expected, actual);
    }

    [TestMethod]
    public void OutputPathsMustBeAbsoluteInAnExistingFolder()
    {
        var folder = Directory.CreateTempSubdirectory("avz-path").FullName;
        Assert.AreEqual(Path.Combine(folder, "a.png"), MatrixExport.CheckOutputPath(Path.Combine(folder, "a.png"), ".png"));
        Assert.Throws<InvalidRequestException>(() => MatrixExport.CheckOutputPath("relative.png"));
        Assert.Throws<InvalidRequestException>(() => MatrixExport.CheckOutputPath(""));
        Assert.Throws<InvalidRequestException>(() => MatrixExport.CheckOutputPath(null));
        Assert.Throws<InvalidRequestException>(() => MatrixExport.CheckOutputPath("/nonexistent-folder/a.csv"));
        Assert.Throws<InvalidRequestException>(() => MatrixExport.CheckOutputPath(folder));
        Assert.Throws<InvalidRequestException>(() => MatrixExport.CheckOutputPath(Path.Combine(folder, "a.txt"), ".png"));
        Assert.Throws<InvalidRequestException>(() => MatrixExport.CheckOutputPath(folder + "/a\0.png"));
    }
}
