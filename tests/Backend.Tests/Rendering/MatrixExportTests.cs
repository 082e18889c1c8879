using System.Globalization;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Export;
using AttentionViz.Backend.Tokenization;
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
        Assert.HasCount(n + 2, records);
        var labels = Awkward.Select(t => TokenDisplay.Escape(t)).ToArray(); // "line\\r\\nbreak", "\\n": as the panel shows them
        CollectionAssert.AreEqual(new[] { "query \\ key" }.Concat(labels).ToArray(), records[0], "header: the key tokens' display text");
        CollectionAssert.AreEqual(new[] { "vocabulary" }.Concat(Awkward).ToArray(), records[1], "second row: the vocabulary strings");
        var expected = Expected(analysis, layer, head);
        for (var q = 0; q < n; q++)
        {
            var record = records[q + 2];
            Assert.HasCount(n + 1, record);
            Assert.AreEqual(labels[q], record[0], $"row {q}: the query token");
            for (var k = 0; k < n; k++)
            {
                var value = float.Parse(record[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture);
                Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[q * n + k]), BitConverter.SingleToInt32Bits(value),
                    $"({q}, {k}): {record[k + 1]}");
            }
        }
    }

    /// <summary>[CLS] un ##believ ##able Ġdog [SEP]: special tokens to hide, pieces to merge, markers to drop.</summary>
    private static StoredAnalysis WithViewOptionsToApply()
    {
        Token[] tokens =
        [
            new(0, "[CLS]", 0, 0, true), new(1, "un", 0, 2, false), new(2, "##believ", 2, 8, false),
            new(3, "##able", 8, 12, false), new(4, "Ġdog", 12, 16, false), new(5, "[SEP]", 0, 0, true),
        ];
        var texts = tokens.Select(t => t.Text).ToArray();
        return HandMade(texts, 2, 3, RandomRows(tokens.Length, 5), tokens: tokens);
    }

    public static IEnumerable<object[]> ViewOptionsCases =>
        [[new ViewOptions()], [new ViewOptions(HideSpecial: true)], [new ViewOptions(WordLevel: true)], [new ViewOptions(true, true)]];

    [TestMethod]
    [DynamicData(nameof(ViewOptionsCases))]
    public void CsvIsTheViewsMatrixLabelledWithItsDisplayText(ViewOptions options)
    {
        // Before, the CSV read the raw matrix with the raw token text ("##believ", "Ġdog") whatever the view.
        var analysis = WithViewOptionsToApply();
        var view = AttentionViews.View(analysis, new ViewRequest(1, -1, options));
        var path = Temp("view.csv");
        MatrixExport.WriteCsv(analysis, 1, -1, path, options);
        var records = CsvReader.Parse(File.ReadAllText(path));
        var labels = view.Units.Select(u => u.Display).ToArray();
        CollectionAssert.AreEqual(new[] { "query \\ key" }.Concat(labels).ToArray(), records[0]);
        Assert.DoesNotContain("Ġdog", labels);
        // The vocabulary strings stay beside the readable ones, in their own row: a word's pieces joined by spaces.
        var vocabulary = view.Units.Select(u => u.Text switch
        {
            "unbelievable" => "un ##believ ##able",
            "un" => "un",
            "believ" => "##believ",
            "able" => "##able",
            "dog" => "Ġdog",
            var special => special,
        }).ToArray();
        CollectionAssert.AreEqual(new[] { "vocabulary" }.Concat(vocabulary).ToArray(), records[1]);
        var values = records.Skip(2).SelectMany(r => r.Skip(1))
            .Select(v => float.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray();
        CollectionAssert.AreEqual(view.Data, values);
        CollectionAssert.AreEqual(labels, records.Skip(2).Select(r => r[0]).ToArray());
    }

    [TestMethod]
    public void JsonIsTheViewsMatrixWithItsUnits()
    {
        var analysis = WithViewOptionsToApply();
        var options = new ViewOptions(HideSpecial: true, WordLevel: true);
        var view = AttentionViews.View(analysis, new ViewRequest(0, 2, options));
        var path = Temp("view.json");
        MatrixExport.WriteJson(analysis, 0, 2, path, options);
        var json = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        Assert.IsTrue(json.GetProperty("hideSpecial").GetBoolean());
        Assert.IsTrue(json.GetProperty("wordLevel").GetBoolean());
        var units = json.GetProperty("units").EnumerateArray().ToArray();
        CollectionAssert.AreEqual(new[] { "unbelievable", "dog" }, units.Select(u => u.GetProperty("display").GetString()).ToArray());
        CollectionAssert.AreEqual(new[] { "un ##believ ##able", "Ġdog" }, units.Select(u => u.GetProperty("vocabulary").GetString()).ToArray(),
            "the tokenizer's strings beside the readable text");
        CollectionAssert.AreEqual(new[] { 1, 4 }, units.Select(u => u.GetProperty("firstToken").GetInt32()).ToArray());
        Assert.AreEqual(6, json.GetProperty("tokens").GetArrayLength(), "the tokens as analyzed");
        var actual = json.GetProperty("matrix").EnumerateArray().SelectMany(row => row.EnumerateArray().Select(v => v.GetSingle())).ToArray();
        CollectionAssert.AreEqual(view.Data, actual);
    }

    [TestMethod]
    public void HidingEveryTokenIsRefusedAndWritesNothing()
    {
        var onlySpecial = HandMade(["[CLS]", "[SEP]"], 1, 1, (_, _, _, _) => 0.5f,
            tokens: [new(101, "[CLS]", 0, 0, true), new(102, "[SEP]", 0, 0, true)]);
        var folder = Directory.CreateTempSubdirectory("avz-empty-view").FullName;
        foreach (var format in new[] { "csv", "json" })
        {
            var path = Path.Combine(folder, $"view.{format}");
            var error = Assert.ThrowsExactly<InvalidRequestException>(() =>
            {
                if (format == "csv") MatrixExport.WriteCsv(onlySpecial, 0, 0, path, new ViewOptions(HideSpecial: true));
                else MatrixExport.WriteJson(onlySpecial, 0, 0, path, new ViewOptions(HideSpecial: true));
            });
            StringAssert.Contains(error.Message, "nothing left to export");
            Assert.IsFalse(File.Exists(path), $"no {format} file is written");
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
