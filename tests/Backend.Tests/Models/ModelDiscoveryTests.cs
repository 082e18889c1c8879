using AttentionViz.Backend.Models;
using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Models;

[TestClass]
public sealed class ModelDiscoveryTests
{
    [TestMethod]
    public void HubCacheLocationFollowsHuggingFaceRules()
    {
        string? Env(string name, Dictionary<string, string> vars) => vars.GetValueOrDefault(name);
        Assert.AreEqual("/h", ModelDiscovery.HuggingFaceHubCache(n => Env(n, new() { ["HF_HUB_CACHE"] = "/h", ["HF_HOME"] = "/x" })));
        Assert.AreEqual("/x/hub", ModelDiscovery.HuggingFaceHubCache(n => Env(n, new() { ["HF_HOME"] = "/x" })));
        Assert.AreEqual("/c/huggingface/hub", ModelDiscovery.HuggingFaceHubCache(n => Env(n, new() { ["XDG_CACHE_HOME"] = "/c" })));
    }

    [TestMethod]
    public void ScansSnapshotsAndDescribesWithoutWeights()
    {
        var hub = Directory.CreateTempSubdirectory("avz-hub").FullName;
        var snapshot = Path.Combine(hub, "models--acme--tiny-bert", "snapshots", "0123abcd");
        Directory.CreateDirectory(snapshot);
        File.Copy(Path.Combine(Fixtures.Folder("bert-tiny"), "config.json"), Path.Combine(snapshot, "config.json"));
        Directory.CreateDirectory(Path.Combine(hub, "models--acme--no-snapshot", "snapshots"));
        Directory.CreateDirectory(Path.Combine(hub, "datasets--acme--data"));

        var found = ModelDiscovery.ScanHubCache(hub);
        Assert.HasCount(1, found);
        Assert.AreEqual("acme/tiny-bert", found[0].Name);
        Assert.AreEqual(snapshot, found[0].Folder);

        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var unsupported = Directory.CreateTempSubdirectory("avz-unsupported").FullName;
        File.WriteAllText(Path.Combine(unsupported, "config.json"), """{"model_type": "mamba"}""");
        var list = registry.List([Fixtures.Folder("bert-tiny"), unsupported, "/nonexistent/folder"]);
        Assert.AreEqual("default", list[0].Id);
        var tiny = list.Single(m => m.Path == Fixtures.Folder("bert-tiny"));
        Assert.AreEqual(("bert", 2, 4, "path"), (tiny.Architecture, tiny.Layers, tiny.Heads, tiny.Source));
        Assert.AreEqual((4, 128), (tiny.KeyValueHeads, tiny.Window), "kv heads and window, for Select Model (#13 point 14)");
        var gqa = registry.List([Fixtures.Folder("llama-long-tiny")]).Single(m => m.Path == Fixtures.Folder("llama-long-tiny"));
        Assert.AreEqual(("llama", 4, 2, 4096), (gqa.Architecture, gqa.Heads, gqa.KeyValueHeads, gqa.Window));
        Assert.AreEqual((12, 512), (list[0].KeyValueHeads, list[0].Window), "the embedded MiniLM");
        Assert.AreEqual(new FileInfo(Path.Combine(Fixtures.Folder("bert-tiny"), "model.safetensors")).Length, tiny.SizeBytes);
        Assert.IsNull(tiny.Error);
        StringAssert.Contains(list.Single(m => m.Path == unsupported).Error, "mamba");
        StringAssert.Contains(list.Single(m => m.Path == "/nonexistent/folder").Error, "not found");
    }

    /// <summary>
    /// Issue #12 point 11: mutations of a snapshot's safetensors (random bytes, a header length past the file, a header
    /// that is not JSON or not UTF-8, offsets of the wrong type) each stay in their own entry; the good folders beside
    /// them are listed as usual.
    /// </summary>
    [TestMethod]
    public void OneBrokenSafetensorsHidesNoOtherModel()
    {
        var good = Fixtures.Folder("bert-tiny");
        var original = File.ReadAllBytes(Path.Combine(good, "model.safetensors"));
        var headerLength = (int)BitConverter.ToInt64(original, 0);
        var random = new Random(12);
        byte[] WithHeader(string json)
        {
            var header = System.Text.Encoding.UTF8.GetBytes(json);
            return [.. BitConverter.GetBytes((long)header.Length), .. header, .. original.AsSpan(8 + headerLength)];
        }
        var mutations = new Dictionary<string, byte[]>
        {
            ["random"] = Enumerable.Range(0, 4096).Select(_ => (byte)random.Next(256)).ToArray(),
            ["length past the end"] = [.. BitConverter.GetBytes(long.MaxValue / 2), .. original.AsSpan(8)],
            ["negative length"] = [.. BitConverter.GetBytes(-5L), .. original.AsSpan(8)],
            ["not JSON"] = WithHeader("{\"a\": [1, 2,"),
            ["not UTF-8"] = [.. BitConverter.GetBytes(4L), 0x7b, 0xff, 0xfe, 0x7d, .. original.AsSpan(8 + headerLength)],
            ["offsets as strings"] = WithHeader("""{"x": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}"""),
            ["shape of -1"] = WithHeader("""{"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"""),
            ["empty"] = [],
        };
        var folders = new List<string>();
        foreach (var (name, bytes) in mutations)
        {
            var folder = Directory.CreateTempSubdirectory("avz-broken").FullName;
            File.Copy(Path.Combine(good, "config.json"), Path.Combine(folder, "config.json"));
            File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), bytes);
            folders.Add(folder);
        }
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var list = registry.List([good, .. folders, good + "/"]);
        Assert.IsNull(list.Single(m => m.Path == good).Error, "the good folder is described as before");
        foreach (var (folder, name) in folders.Zip(mutations.Keys))
        {
            var entry = list.Single(m => m.Path == folder);
            Assert.IsNotNull(entry.Error, $"{name}: an entry of its own, with its error");
            Assert.DoesNotContain("   at ", entry.Error, name);
        }
    }
}
