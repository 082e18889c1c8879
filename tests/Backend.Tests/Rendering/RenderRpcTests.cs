using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Rendering;
using AttentionViz.Backend.Rpc;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Support;
using Nerdbank.Streams;
using SkiaSharp;
using StreamJsonRpc;
using static AttentionViz.Backend.Tests.Rendering.RenderTestSupport;

namespace AttentionViz.Backend.Tests.Rendering;

/// <summary>render/png and attention/export over JSON-RPC, in memory, on the real default model.</summary>
[TestClass]
public sealed class RenderRpcTests
{
    private static InMemoryBackend _backend = null!;
    private static BackendHost _host => _backend.Host;
    private const string FoxText = "The quick brown fox jumps over the lazy dog.";

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void Start(TestContext context)
    {
        _backend = new InMemoryBackend();
    }

    [ClassCleanup]
    public static void Stop()
    {
        _backend.Dispose();
    }

    private static Task<JsonElement> Call(string method, object parameters) =>
        _backend.Call(method, parameters);

    private static Task<int> ErrorCode(string method, object parameters) => _backend.ErrorCode(method, parameters);

    private static async Task<string> Analyze(string text = FoxText) =>
        (await Call("attention/analyze", new { text })).GetProperty("analysisId").GetString()!;

    private static async Task<float[]> Matrix(string id, int layer, int head) =>
        MemoryMarshal.Cast<byte, float>((await Call("attention/matrix", new { analysisId = id, layer, head })).GetProperty("data")
            .GetBytesFromBase64()).ToArray();

    private static string TempFolder() => Directory.CreateTempSubdirectory("avz-render").FullName;

    [TestMethod]
    public async Task RenderPngDrawsTheModelsAttentionWithQueriesDownAndKeysAcross()
    {
        var id = await Analyze();
        var result = await Call("render/png", new { analysisId = id, layer = 2, head = 3, cellSize = 20 });
        var png = result.GetProperty("png").GetBytesFromBase64();
        Save("rpc-fox-layer2-head3.png", png);
        using var bitmap = Decode(png);
        Assert.AreEqual(result.GetProperty("width").GetInt32(), bitmap.Width);
        Assert.AreEqual(result.GetProperty("height").GetInt32(), bitmap.Height);

        // The same image as the renderer makes in process: its layout says where the cells are.
        using var lease = _host.Service.Acquire(id);
        var local = AttentionRenderer.Heatmap(lease.Analysis, 2, 3, new RenderOptions(CellSize: 20));
        CollectionAssert.AreEqual(local.Png, png);
        var matrix = await Matrix(id, 2, 3);
        var n = 12;
        Assert.AreEqual(matrix.Max(), local.Layout.ScaleMax);
        for (var q = 0; q < n; q++)
            for (var k = 0; k < n; k++)
                AssertColor(ColorMap.Viridis.At(matrix[q * n + k] / matrix.Max()), CellColor(bitmap, local.Layout.Left, local.Layout.Top, 20, q, k),
                    1, $"cell ({q}, {k})");
        // Not symmetric, so a transposed image would fail above; make sure the test data can tell.
        Assert.IsTrue(Enumerable.Range(0, n).Any(q => Enumerable.Range(0, n).Any(k => Math.Abs(matrix[q * n + k] - matrix[k * n + q]) > 0.05f)));
    }

    [TestMethod]
    public async Task RenderPngGridAndMeanAndDarkTheme()
    {
        var id = await Analyze();
        var grid = await Call("render/png", new { analysisId = id, grid = true, size = 48 });
        var gridPng = grid.GetProperty("png").GetBytesFromBase64();
        Save("rpc-fox-grid.png", gridPng);
        using var gridBitmap = Decode(gridPng);
        Assert.AreEqual(grid.GetProperty("width").GetInt32(), gridBitmap.Width);
        // 12 heads × (48 + 4 gap) − 4, plus gutters and the colour bar; 6 layers tall.
        Assert.IsGreaterThan(12 * 52, gridBitmap.Width);
        Assert.IsGreaterThan(6 * 52, gridBitmap.Height);

        var mean = await Call("render/png", new { analysisId = id, theme = "dark" });
        var meanPng = mean.GetProperty("png").GetBytesFromBase64();
        Save("rpc-fox-mean-dark.png", meanPng);
        using var meanBitmap = Decode(meanPng);
        Assert.AreEqual(new SKColor(0x1e, 0x1e, 0x1e), meanBitmap.GetPixel(0, 0));
    }

    [TestMethod]
    public async Task RenderPngAppliesTheViewOptionsAsTheProcessRendererDoes()
    {
        // "tokenization" is several WordPiece pieces: the word-level image has fewer columns than the token image.
        var id = await Analyze("Tokenization of unbelievable words.");
        using var lease = _host.Service.Acquire(id);
        var tokens = lease.Analysis.Tokens.Count;
        foreach (var (hide, words) in new[] { (true, false), (false, true), (true, true) })
        {
            var result = await Call("render/png", new { analysisId = id, layer = 1, head = 4, cellSize = 12, hideSpecial = hide, wordLevel = words });
            var png = result.GetProperty("png").GetBytesFromBase64();
            var local = AttentionRenderer.Heatmap(lease.Analysis, 1, 4, new RenderOptions(CellSize: 12), new ViewOptions(hide, words));
            CollectionAssert.AreEqual(local.Png, png, $"hideSpecial={hide}, wordLevel={words}");
            var viewed = AttentionViews.Apply(lease.Analysis.Attention.Head(1, 4), lease.Analysis.Tokens, new ViewOptions(hide, words));
            Assert.AreEqual(viewed.Size, local.Layout.Cells);
            Assert.IsLessThan(tokens, viewed.Size, "hidden or merged tokens leave fewer rows");
        }
    }

    [TestMethod]
    public async Task RenderPngWritesToAPath()
    {
        var id = await Analyze();
        var path = Path.Combine(TempFolder(), "fox.png");
        var result = await Call("render/png", new { analysisId = id, layer = 0, head = 0, path });
        Assert.IsFalse(result.TryGetProperty("png", out _), "with path, the image is not sent back");
        Assert.AreEqual(path, result.GetProperty("path").GetString());
        Assert.AreEqual(new FileInfo(path).Length, result.GetProperty("bytes").GetInt64());
        using var bitmap = Decode(File.ReadAllBytes(path));
        Assert.AreEqual(result.GetProperty("width").GetInt32(), bitmap.Width);
    }

    [TestMethod]
    public async Task A512TokenAnalysisRendersPooledAndInFull()
    {
        var text = string.Concat(Enumerable.Repeat("attention is all you need, said the paper. ", 120));
        var id = await Analyze(text);
        var pooled = await Call("render/png", new { analysisId = id, layer = 5, head = -1, maxSize = 128, cellSize = 4 });
        Save("rpc-512-pooled.png", pooled.GetProperty("png").GetBytesFromBase64());
        Assert.IsLessThan(900, pooled.GetProperty("width").GetInt32(), "128 cells of 4 px plus gutters");

        using var lease = _host.Service.Acquire(id);
        Assert.AreEqual(512, lease.Analysis.Tokens.Count);
        var image = AttentionRenderer.Heatmap(lease.Analysis, 3, 4, new RenderOptions());
        Save("rpc-512-layer3-head4.png", image.Png);
        var times = new List<double>();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        for (var run = 0; run < 5; run++)
        {
            var clock = Stopwatch.StartNew();
            AttentionRenderer.Heatmap(lease.Analysis, 3, 4, new RenderOptions());
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        var cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / 5;
        times.Sort();
        var rpcClock = Stopwatch.StartNew();
        await Call("render/png", new { analysisId = id, layer = 3, head = 4 });
        var rpcMs = rpcClock.Elapsed.TotalMilliseconds;
        var report = $"real 512-token analysis, layer 3 head 4 ({image.Width}×{image.Height} px, {image.Png.Length} bytes): render + encode " +
            $"median {times[2]:F1} ms (min {times[0]:F1}, max {times[^1]:F1}), process CPU {cpuMs:F1} ms per image; over RPC incl. base64: " +
            $"{rpcMs:F1} ms";
        TestContext.WriteLine(report);
        File.WriteAllText(Path.Combine(OutputFolder, "timing-real.txt"), report + "\n");
    }

    [TestMethod]
    public async Task BadRenderRequestsAreInvalidParams()
    {
        var id = await Analyze();
        var folder = TempFolder();
        object[] bad =
        [
            new { analysisId = id, layer = 6, head = 0 },
            new { analysisId = id, layer = 0, head = 12 },
            new { analysisId = id, layer = 0, head = -2 },
            new { analysisId = id, path = "relative.png" },
            new { analysisId = id, path = "/nonexistent-folder/x.png" },
            new { analysisId = id, path = Path.Combine(folder, "x.txt") },
            new { analysisId = id, path = folder },
            new { analysisId = "no-such-analysis" },
            new { analysisId = id, colorMap = "jet" },
            new { analysisId = id, theme = "neon" },
            new { analysisId = id, cellSize = 0 },
            new { analysisId = id, maxSize = 0 },
            new { analysisId = id, grid = true, layer = 1 },
            new { layer = 0 },
        ];
        foreach (var parameters in bad)
            Assert.AreEqual(-32602, await ErrorCode("render/png", parameters), JsonSerializer.Serialize(parameters));
        Assert.IsEmpty(Directory.GetFiles(folder), "nothing is written on a bad request");
    }

    [TestMethod]
    public async Task ExportCsvJsonAndSafetensors()
    {
        var id = await Analyze();
        var folder = TempFolder();
        var n = 12;

        var csvPath = Path.Combine(folder, "fox.csv");
        var csv = await Call("attention/export", new { analysisId = id, format = "csv", layer = 1, head = 2, path = csvPath });
        Assert.AreEqual(csvPath, csv.GetProperty("path").GetString());
        Assert.AreEqual(new FileInfo(csvPath).Length, csv.GetProperty("bytes").GetInt64());
        var records = CsvReader.Parse(File.ReadAllText(csvPath));
        var tokens = (await Call("attention/analyze", new { text = FoxText })).GetProperty("tokens").EnumerateArray()
            .Select(t => t.GetProperty("text").GetString()).ToArray();
        CollectionAssert.AreEqual(tokens, records[1][1..], "the second row: the vocabulary strings");
        Assert.AreEqual("vocabulary", records[1][0]);
        var matrix = await Matrix(id, 1, 2);
        var parsed = records.Skip(2).SelectMany(r => r[1..].Select(v => float.Parse(v, CultureInfo.InvariantCulture))).ToArray();
        CollectionAssert.AreEqual(matrix, parsed, "CSV numbers are the matrix, exactly");

        var meanPath = Path.Combine(folder, "mean.csv");
        await Call("attention/export", new { analysisId = id, format = "csv", path = meanPath });
        var mean = CsvReader.Parse(File.ReadAllText(meanPath)).Skip(2)
            .SelectMany(r => r[1..].Select(v => float.Parse(v, CultureInfo.InvariantCulture))).ToArray();
        CollectionAssert.AreEqual(await Matrix(id, -1, -1), mean, "without layer and head: the mean over everything");

        var jsonPath = Path.Combine(folder, "fox.json");
        await Call("attention/export", new { analysisId = id, format = "json", layer = 1, head = 2, path = jsonPath });
        var json = JsonDocument.Parse(File.ReadAllText(jsonPath)).RootElement;
        CollectionAssert.AreEqual(matrix,
            json.GetProperty("matrix").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetSingle())).ToArray());

        var stPath = Path.Combine(folder, "fox.safetensors");
        var st = await Call("attention/export", new { analysisId = id, format = "safetensors", path = stPath });
        Assert.AreEqual(new FileInfo(stPath).Length, st.GetProperty("bytes").GetInt64());
        using var file = SafetensorsFile.Open(stPath);
        var attentions = file.Read("attentions");
        CollectionAssert.AreEqual(new long[] { 6, 12, n, n }, attentions.shape);
        CollectionAssert.AreEqual(matrix, attentions[1, 2].contiguous().data<float>().ToArray());
    }

    [TestMethod]
    public async Task ExportWithViewOptionsIsTheViewsMatrix()
    {
        var id = await Analyze();
        var path = Path.Combine(TempFolder(), "hidden.csv");
        await Call("attention/export", new { analysisId = id, format = "csv", layer = 0, head = 3, path, hideSpecial = true });
        var view = await Call("attention/view", new { analysisId = id, layer = 0, head = 3, hideSpecial = true });
        var records = CsvReader.Parse(File.ReadAllText(path));
        var units = view.GetProperty("units").EnumerateArray().Select(u => u.GetProperty("display").GetString()).ToArray();
        Assert.DoesNotContain("[CLS]", units);
        CollectionAssert.AreEqual(units, records[0][1..], "labels: the units' display text");
        var expected = MemoryMarshal.Cast<byte, float>(view.GetProperty("data").GetBytesFromBase64()).ToArray();
        var parsed = records.Skip(2).SelectMany(r => r[1..].Select(v => float.Parse(v, CultureInfo.InvariantCulture))).ToArray();
        CollectionAssert.AreEqual(expected, parsed);
    }

    [TestMethod]
    public async Task RenderPngOverTheRealProcessKeepsStdoutToFrames()
    {
        // Native SkiaSharp code runs in the server process: it must not write to the protocol stream.
        await using var client = RawRpcClient.Start("serve");
        await client.CallAsync("initialize", new { clientName = "render-test" });
        var analysis = await client.CallAsync("attention/analyze", new { text = "naïve café 😀 <b>", maxTokens = 64 }, TimeSpan.FromSeconds(60));
        var id = analysis["result"]!["analysisId"]!.GetValue<string>();
        var heatmap = await client.CallAsync("render/png", new { analysisId = id, layer = 1, head = 1 });
        using var bitmap = Decode(Convert.FromBase64String(heatmap["result"]!["png"]!.GetValue<string>()));
        Assert.AreEqual(heatmap["result"]!["width"]!.GetValue<int>(), bitmap.Width, client.Stderr);
        var grid = await client.CallAsync("render/png", new { analysisId = id, grid = true });
        Assert.IsNotNull(grid["result"]!["png"], client.Stderr);
        var bad = await client.CallAsync("render/png", new { analysisId = id, layer = 99 });
        Assert.AreEqual(-32602, bad["error"]!["code"]!.GetValue<int>());
        await client.CallAsync("shutdown", null);
        client.Send("exit", null, notification: true);
        Assert.IsTrue(client.Process.WaitForExit(10_000), "backend did not exit after exit");
        Assert.AreEqual(-1, client.Process.StandardOutput.BaseStream.ReadByte(), "stdout carried bytes outside the protocol");
    }

    [TestMethod]
    public async Task BadExportRequestsAreInvalidParams()
    {
        var id = await Analyze();
        var folder = TempFolder();
        var path = Path.Combine(folder, "x.csv");
        object[] bad =
        [
            new { analysisId = id, format = "xml", path },
            new { analysisId = id, format = "csv" },
            new { analysisId = id, format = "csv", path = "x.csv" },
            new { analysisId = id, format = "csv", path = "/nonexistent-folder/x.csv" },
            new { analysisId = id, format = "csv", layer = 7, path },
            new { analysisId = id, format = "json", head = -3, path },
            new { analysisId = id, format = "safetensors", layer = 0, path },
            new { analysisId = "no-such-analysis", format = "csv", path },
        ];
        foreach (var parameters in bad)
            Assert.AreEqual(-32602, await ErrorCode("attention/export", parameters), JsonSerializer.Serialize(parameters));
        Assert.IsEmpty(Directory.GetFiles(folder), "nothing is written on a bad request");
    }
}
