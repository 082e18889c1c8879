using System.Diagnostics;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Export;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Rendering;
using AttentionViz.Backend.Tests.Support;
using AttentionViz.Backend.Tokenization;
using AttentionViz.Backend.Tokenization.HuggingFace;

namespace AttentionViz.Backend.Tests.Storage;

/// <summary>
/// Issue #12 (points 4, 6, 13, 14): files that are not what their names say (FIFOs, devices, huge files, links) are
/// refused in bounded time and memory, exports go only where the path rule allows, and replace files atomically.
/// </summary>
[TestClass]
public sealed class HostileFileTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private string _dir = "";

    [TestInitialize]
    public void Init() => _dir = Directory.CreateTempSubdirectory("avz-hostile-").FullName;

    [TestCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    internal static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
        Assert.AreEqual(0, mkfifo.ExitCode, $"mkfifo {path}");
    }

    /// <summary>
    /// Runs <paramref name="action"/> with a time bound. Should it block on the FIFO (the old behaviour), the FIFO is
    /// opened for writing once, which releases the blocked reader, so no thread stays stuck after the test.
    /// </summary>
    internal static async Task<Exception?> Bounded(Action action, string? fifo = null)
    {
        var task = Task.Run(action);
        try
        {
            await task.WaitAsync(Bound);
            return null;
        }
        catch (TimeoutException) when (fifo is not null)
        {
            using (new FileStream(fifo, FileMode.Open, FileAccess.Write)) { }
            throw new AssertFailedException($"blocked on the FIFO {fifo} for {Bound.TotalSeconds} s");
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            return e;
        }
    }

    private string BertFolder()
    {
        var folder = Path.Combine(_dir, "model");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(Fixtures.Folder("bert-tiny"), "config.json"), Path.Combine(folder, "config.json"));
        File.Copy(Path.Combine(Fixtures.Folder("bert-tiny"), "model.safetensors"), Path.Combine(folder, "model.safetensors"));
        return folder;
    }

    private static T AssertRefused<T>(Exception? e, string path, params string[] fragments) where T : Exception
    {
        Assert.IsNotNull(e, $"{path} was accepted");
        Assert.IsInstanceOfType<T>(e, e.ToString());
        StringAssert.Contains(e.Message, path);
        foreach (var f in fragments) StringAssert.Contains(e.Message, f);
        return (T)e;
    }

    // ---------- point 4: FIFOs are refused, never waited on ----------

    [TestMethod]
    public async Task FifoAsModelSafetensors_IsRefusedAtOnce()
    {
        var fifo = Path.Combine(_dir, "model.safetensors");
        MakeFifo(fifo);
        var watch = Stopwatch.StartNew();
        var e = await Bounded(() => SafetensorsFile.Open(fifo).Dispose(), fifo);
        AssertRefused<ModelFormatException>(e, fifo, "FIFO", "not a regular file");
        Assert.IsLessThan(2000, watch.ElapsedMilliseconds);
    }

    [TestMethod]
    public async Task FifoAsConfigJson_IsRefusedByModelsListsDescription()
    {
        var folder = BertFolder();
        var config = Path.Combine(folder, "config.json");
        File.Delete(config);
        MakeFifo(config);
        var e = await Bounded(() => ModelFolder.Describe(folder), config);
        AssertRefused<ModelLoadException>(e, config, "FIFO");
    }

    [TestMethod]
    public async Task FifoAsTokenizerJson_IsRefused()
    {
        var fifo = Path.Combine(_dir, "tokenizer.json");
        MakeFifo(fifo);
        var e = await Bounded(() => TokenizerLoader.TryLoad(_dir), fifo);
        AssertRefused<ModelFormatException>(e, fifo, "FIFO", "tokenizer file");
    }

    [TestMethod]
    public async Task FifoAsVocabTxt_IsRefused()
    {
        var fifo = Path.Combine(_dir, "vocab.txt");
        MakeFifo(fifo);
        var e = await Bounded(() => TokenizerLoader.TryLoad(_dir), fifo);
        AssertRefused<ModelFormatException>(e, fifo, "FIFO");
    }

    // ---------- point 6: sizes are bounded before reading ----------

    [TestMethod]
    public async Task DevZeroAsTokenizerJson_IsRefusedBeforeReading()
    {
        var link = Path.Combine(_dir, "tokenizer.json");
        File.CreateSymbolicLink(link, "/dev/zero");
        long allocated = 0;
        var e = await Bounded(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            try { TokenizerLoader.TryLoad(_dir); }
            finally { allocated = GC.GetAllocatedBytesForCurrentThread() - before; }
        });
        AssertRefused<ModelFormatException>(e, link, "character device");
        Assert.IsLessThan(1L << 20, allocated, "bytes allocated while refusing /dev/zero");
    }

    [TestMethod]
    public async Task DevZeroAsConfigJson_IsRefusedBeforeReading()
    {
        var folder = BertFolder();
        var config = Path.Combine(folder, "config.json");
        File.Delete(config);
        File.CreateSymbolicLink(config, "/dev/zero");
        var e = await Bounded(() => ModelFolder.ReadConfig(folder));
        AssertRefused<ModelLoadException>(e, config, "character device");
    }

    [TestMethod]
    public async Task TokenizerJsonOverTheLimit_IsRefusedWithTheLimit()
    {
        var path = Path.Combine(_dir, "tokenizer.json");
        using (var sparse = File.Create(path)) sparse.SetLength(TokenizerFile.MaxBytes + 1);
        var e = await Bounded(() => TokenizerLoader.TryLoad(_dir));
        AssertRefused<ModelFormatException>(e, path, "128 MB", "tokenizer file");
    }

    [TestMethod]
    public void LinkedTokenizerFiles_StillLoad()
    {
        // The Hugging Face cache links snapshot files into ../../blobs: links are followed for reading.
        var blob = Path.Combine(_dir, "blob");
        File.WriteAllLines(blob, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"]);
        File.CreateSymbolicLink(Path.Combine(_dir, "vocab.txt"), blob);
        var tokenizer = TokenizerLoader.TryLoad(_dir)!;
        Assert.AreEqual(4, tokenizer.Tokenize("hello").Single().Id);
    }

    // ---------- point 6: normalizers may not multiply the text ----------

    private static HfTokenizer Doubling(int steps)
    {
        var replace = string.Join(", ", Enumerable.Repeat("""{"type": "Replace", "pattern": {"String": "a"}, "content": "aa"}""", steps));
        var json = $$$"""
            {"normalizer": {"type": "Sequence", "normalizers": [{{{replace}}}]},
             "model": {"type": "BPE", "vocab": {"a": 0, "<unk>": 1}, "merges": [], "unk_token": "<unk>"}}
            """;
        using var doc = JsonDocument.Parse(json);
        return HfTokenizer.FromJson(doc.RootElement, null, "doubling tokenizer.json");
    }

    [TestMethod]
    public async Task NormalizerThatMultipliesTheText_IsRefused()
    {
        // 12 doublings: 4096 × (old: 409,600 tokens from 100 characters, and 2^40 × with 40 steps).
        var tokenizer = Doubling(12);
        var e = await Bounded(() => tokenizer.Tokenize(new string('a', 100)));
        Assert.IsInstanceOfType<ModelFormatException>(e);
        StringAssert.Contains(e!.Message, "more than 4 times as long as it was, plus 64 characters");
        StringAssert.Contains(e.Message, "a text of 100 characters would grow past 464");
    }

    [TestMethod]
    public void NormalizerWithinFourTimes_IsAccepted()
    {
        // Two doublings: 4 × exactly, the most allowed (plus 64).
        Assert.HasCount(400, Doubling(2).Tokenize(new string('a', 100)));
    }

    // ---------- point 13: where exports may go ----------

    private static void AssertBadPath(string path, params string[] fragments)
    {
        var e = Assert.ThrowsExactly<InvalidRequestException>(() => MatrixExport.CheckOutputPath(path));
        foreach (var f in fragments) StringAssert.Contains(e.Message, f);
    }

    [TestMethod]
    public void OutputPath_RefusesRelativeDotDotLinksAndSpecialFiles()
    {
        AssertBadPath("out.csv", "absolute");
        AssertBadPath(Path.Combine(_dir, "..", "..", "..", "etc", "passwd"), "'..'");
        AssertBadPath(_dir + "/sub/../x.csv", "'..'");

        var secret = Path.Combine(_dir, "secret");
        File.WriteAllText(secret, "keep me");
        var link = Path.Combine(_dir, "sym.csv");
        File.CreateSymbolicLink(link, secret);
        AssertBadPath(link, "symbolic link", link);

        var real = Directory.CreateDirectory(Path.Combine(_dir, "real")).FullName;
        var linkedFolder = Path.Combine(_dir, "linked");
        Directory.CreateSymbolicLink(linkedFolder, real);
        AssertBadPath(Path.Combine(linkedFolder, "x.csv"), "symbolic link", linkedFolder);

        var fifo = Path.Combine(_dir, "pipe.csv");
        MakeFifo(fifo);
        AssertBadPath(fifo, "FIFO", "not a regular file");
        AssertBadPath("/dev/null", "character device");
        AssertBadPath(_dir, "folder");
        AssertBadPath(Path.Combine(_dir, "missing", "x.csv"), "does not exist");
        Assert.AreEqual("keep me", File.ReadAllText(secret));

        var fine = Path.Combine(_dir, "fine.csv");
        Assert.AreEqual(fine, MatrixExport.CheckOutputPath(fine));
        File.WriteAllText(fine, "old");
        Assert.AreEqual(fine, MatrixExport.CheckOutputPath(fine), "an existing regular file is replaced");
    }

    // ---------- point 14: exports replace files atomically and clean their own stale temporaries ----------

    private static StoredAnalysis Sample() => RenderTestSupport.HandMade(["a", "b", "c"], 2, 2, (_, _, _, k) => k == 0 ? 1f : 0f);

    /// <summary>
    /// A second hard link to the previous file keeps its content when the export replaces it by renaming; writing in
    /// place (what a kill mid-write truncates) changes it.
    /// </summary>
    private void AssertReplacedByRename(string name, Action<string> export)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, "previous");
        var witness = Path.Combine(_dir, "witness-" + name);
        using (var ln = Process.Start("ln", [path, witness])) ln.WaitForExit();
        export(path);
        Assert.AreEqual("previous", File.ReadAllText(witness), $"{name} was written in place");
        Assert.AreNotEqual("previous", File.ReadAllText(path));
        Assert.IsEmpty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [TestMethod]
    public void CsvExport_ReplacesByRename() =>
        AssertReplacedByRename("m.csv", path => MatrixExport.WriteCsv(Sample(), 0, 0, path));

    [TestMethod]
    public void JsonMatrixExport_ReplacesByRename() =>
        AssertReplacedByRename("m.json", path => MatrixExport.WriteJson(Sample(), 0, 0, path));

    [TestMethod]
    public void SafetensorsExport_RemovesOnlyItsOwnStaleTemporaries()
    {
        var guid = new string('0', 32);
        string Own(string target, int pid) => Path.Combine(_dir, $".{target}.{pid}.{guid}.tmp");
        var stale = Own("a.safetensors", 999999);
        var fresh = Own("b.safetensors", 999998);
        var foreign = Path.Combine(_dir, ".a.safetensors.tmp");
        var user = Path.Combine(_dir, "notes.tmp");
        foreach (var f in new[] { stale, fresh, foreign, user }) File.WriteAllText(f, "x");
        var old = DateTime.UtcNow - AtomicFile.StaleAfter - TimeSpan.FromMinutes(1);
        foreach (var f in new[] { stale, foreign, user }) File.SetLastWriteTimeUtc(f, old);

        AnalysisExport.WriteSafetensors(Sample(), Path.Combine(_dir, "a.safetensors"));

        Assert.IsFalse(File.Exists(stale), "an abandoned temporary of this backend's naming stays");
        Assert.IsTrue(File.Exists(fresh), "a recent temporary (a write in progress) must stay");
        Assert.IsTrue(File.Exists(foreign) && File.Exists(user), "files of other naming must stay");
        using var file = SafetensorsFile.Open(Path.Combine(_dir, "a.safetensors"));
        Assert.IsTrue(file.Contains("attentions"));
    }

    [TestMethod]
    public async Task RpcExports_RefuseLinksAndReplacePngAndCsvByRename()
    {
        using var backend = new InMemoryBackend();
        var analysis = await backend.Call("attention/analyze", new { text = "Hello world" });
        var id = analysis.GetProperty("analysisId").GetString();

        var secret = Path.Combine(_dir, "shadow");
        File.WriteAllText(secret, "keep me");
        var link = Path.Combine(_dir, "sym.csv");
        File.CreateSymbolicLink(link, secret);
        Assert.AreEqual(-32602, await backend.ErrorCode("attention/export", new { analysisId = id, format = "csv", path = link }));
        var pngLink = Path.Combine(_dir, "sym.png");
        File.CreateSymbolicLink(pngLink, secret);
        Assert.AreEqual(-32602, await backend.ErrorCode("render/png", new { analysisId = id, path = pngLink }));
        Assert.AreEqual(-32602, await backend.ErrorCode("render/png", new { analysisId = id, path = _dir + "/../x.png" }));
        Assert.AreEqual("keep me", File.ReadAllText(secret));
        Assert.IsTrue(new FileInfo(link).LinkTarget is not null && new FileInfo(pngLink).LinkTarget is not null, "the links stay links");

        AssertReplacedByRename("heat.png", path => backend.Call("render/png", new { analysisId = id, path }).GetAwaiter().GetResult());
        AssertReplacedByRename("m.csv", path =>
            backend.Call("attention/export", new { analysisId = id, format = "csv", path }).GetAwaiter().GetResult());
    }

    [TestMethod]
    public void CliOut_DoesNotWriteThroughALink()
    {
        var secret = Path.Combine(_dir, "secret");
        File.WriteAllText(secret, "keep me");
        var link = Path.Combine(_dir, "sym.csv");
        File.CreateSymbolicLink(link, secret);
        var (exit, _, stderr) = BackendCli.Run("analyze", "--text", "hi there", "--out", link);
        Assert.AreEqual(2, exit, stderr);
        StringAssert.Contains(stderr, "symbolic link");
        Assert.AreEqual("keep me", File.ReadAllText(secret));
    }
}
