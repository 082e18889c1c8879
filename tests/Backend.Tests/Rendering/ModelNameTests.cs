using System.Text.Json;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Rendering;
using AttentionViz.Backend.Tests.Support;
using static AttentionViz.Backend.Tests.Rendering.RenderTestSupport;

namespace AttentionViz.Backend.Tests.Rendering;

/// <summary>#13 point 6: the model's name, not its snapshot hash, wherever a person reads it (PNG titles, models/list).</summary>
[TestClass]
public sealed class ModelNameTests
{
    private const string Snapshot = "/home/u/.cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/9f8e7d6c";

    [TestMethod]
    public void TheSharedTableReadsTheSameHere()
    {
        // The extension's shared/modelName.ts is held to the same table (unit/sections.test.cjs).
        var path = Path.Combine(Fixtures.RepoRoot, "tests", "reference", "model-names", "cases.json");
        var cases = JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("cases").EnumerateArray().ToArray();
        Assert.IsGreaterThanOrEqualTo(8, cases.Length);
        foreach (var c in cases)
            Assert.AreEqual(c.GetProperty("name").GetString(), ModelName.Display(c.GetProperty("id").GetString()), c.GetProperty("id").GetString());
    }

    [TestMethod]
    public void PngTitlesNameTheHubRepoNotTheSnapshot()
    {
        // Before: "9f8e7d6c · layer 1 · head 2", the snapshot's hash.
        var analysis = HandMade(["a", "b", "c"], 2, 3, RandomRows(3, 1), modelId: Snapshot);
        var heatmap = AttentionRenderer.Heatmap(analysis, 1, 2, new RenderOptions());
        Assert.AreEqual("Qwen/Qwen2.5-0.5B-Instruct · layer 1 · head 2", heatmap.Title);
        var grid = AttentionRenderer.Grid(analysis, new RenderOptions());
        Assert.AreEqual("Qwen/Qwen2.5-0.5B-Instruct · 2 layers × 3 heads · 3 tokens", grid.Title);
        Assert.DoesNotContain("9f8e7d6c", heatmap.Title + grid.Title);
        var embedded = AttentionRenderer.Heatmap(HandMade(["a", "b"], 1, 1, RandomRows(2, 1), modelId: "default"), 0, 0, new RenderOptions());
        Assert.AreEqual("all-MiniLM-L6-v2 (embedded) · layer 0 · head 0", embedded.Title);
    }

    [TestMethod]
    public void AModelPathNamingASnapshotIsListedByItsRepo()
    {
        var hub = Directory.CreateTempSubdirectory("avz-named").FullName;
        var snapshot = Path.Combine(hub, "models--acme--tiny-bert", "snapshots", "0123abcd");
        Directory.CreateDirectory(snapshot);
        foreach (var file in Directory.GetFiles(Fixtures.Folder("bert-tiny")))
            File.Copy(file, Path.Combine(snapshot, Path.GetFileName(file)));
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var entry = registry.List([snapshot]).Single(m => m.Path == snapshot);
        Assert.AreEqual("acme/tiny-bert", entry.Name, "was the revision's hash, 0123abcd");
    }
}
