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
        Assert.AreEqual(new FileInfo(Path.Combine(Fixtures.Folder("bert-tiny"), "model.safetensors")).Length, tiny.SizeBytes);
        Assert.IsNull(tiny.Error);
        StringAssert.Contains(list.Single(m => m.Path == unsupported).Error, "mamba");
        StringAssert.Contains(list.Single(m => m.Path == "/nonexistent/folder").Error, "not found");
    }
}
