using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>Loaded models are bounded (LRU by count and bytes), and a leased one is never unloaded under its user.</summary>
[TestClass]
public sealed class ModelRegistryTests
{
    private static string _root = "";

    [ClassInitialize]
    public static void Init(TestContext _)
    {
        _root = Path.Combine(Path.GetTempPath(), "av-registry-" + Guid.NewGuid().ToString("N"));
        for (var i = 0; i < 4; i++)
        {
            var folder = Path.Combine(_root, $"m{i}");
            Directory.CreateDirectory(folder);
            foreach (var file in new[] { "config.json", "model.safetensors" })
                File.Copy(Path.Combine(Fixtures.Folder("llama-tiny"), file), Path.Combine(folder, file));
        }
    }

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(_root, recursive: true);

    private static string Model(int i) => Path.Combine(_root, $"m{i}");

    private static async Task<LoadedModel> Use(ModelRegistry registry, int i)
    {
        using var lease = await registry.AcquireAsync(Model(i), CancellationToken.None);
        return lease.Loaded;
    }

    [TestMethod]
    public async Task AThirdModel_UnloadsTheLeastRecentlyUsed()
    {
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var first = await Use(registry, 0);
        var second = await Use(registry, 1);
        Assert.AreSame(first, await Use(registry, 0), "a loaded model is reused");
        var third = await Use(registry, 2);
        thread.Run(() => true);                                                  // the unload runs on the model thread
        CollectionAssert.AreEqual(new[] { Model(2), Model(0) }, registry.LoadedIds().ToArray());
        Assert.IsTrue(second.Disposed, "m1 was used least recently");
        Assert.IsFalse(first.Disposed);
        Assert.IsFalse(third.Disposed);
        var again = await Use(registry, 1);
        Assert.AreNotSame(second, again, "an unloaded model loads afresh");
        Assert.AreEqual(2, registry.LoadedIds().Count);
    }

    [TestMethod]
    public async Task ALeasedModel_StaysLoadedUntilReleased()
    {
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread) { MaxLoadedModels = 1 };
        var held = await registry.AcquireAsync(Model(0), CancellationToken.None);
        var other = await Use(registry, 1);
        thread.Run(() => true);
        Assert.IsFalse(held.Loaded.Disposed, "a queued forward may still use it");
        // The lease still works: its model runs.
        using (var result = thread.Run(() => held.Model.Forward(new AttentionViz.Backend.Models.Core.ForwardInput([[1, 2, 3]]))))
            Assert.AreEqual(3, result.Attentions[0].shape[2]);
        held.Dispose();
        thread.Run(() => true);
        Assert.IsTrue(held.Loaded.Disposed, "released and least recently used: unloaded");
        Assert.IsFalse(other.Disposed, "the newest model always stays");
        CollectionAssert.AreEqual(new[] { Model(1) }, registry.LoadedIds().ToArray());
        held.Dispose();                                                            // a second dispose is harmless
    }

    [TestMethod]
    public async Task LoadedWeights_StayUnderTheByteBudget()
    {
        using var thread = new ModelThread();
        using var probe = new ModelRegistry(thread);
        var one = (await Use(probe, 0)).Model.WeightBytes;
        using var registry = new ModelRegistry(thread) { MaxLoadedModels = 10, MaxLoadedBytes = 2 * one + one / 2 };
        var models = new List<LoadedModel>();
        for (var i = 0; i < 4; i++) models.Add(await Use(registry, i));
        thread.Run(() => true);
        CollectionAssert.AreEqual(new[] { Model(3), Model(2) }, registry.LoadedIds().ToArray());
        CollectionAssert.AreEqual(new[] { true, true, false, false }, models.Select(m => m.Disposed).ToArray());
    }

    [TestMethod]
    public async Task TheNewestModel_StaysEvenOverTheBudget()
    {
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread) { MaxLoadedBytes = 1 };
        await Use(registry, 0);
        var newest = await Use(registry, 1);
        thread.Run(() => true);
        Assert.IsFalse(newest.Disposed);
        CollectionAssert.AreEqual(new[] { Model(1) }, registry.LoadedIds().ToArray());
    }

    [TestMethod]
    public async Task AnalysesOfAnUnloadedModel_StillAnswer()
    {
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread) { MaxLoadedModels = 1 };
        var service = new AttentionService(registry, new AnalysisCache(AnalysisMemory.DefaultBudgetMegabytes << 20), thread);
        var analysis = await service.AnalyzeIdsAsync([1, 5, 9, 4], Model(0), CancellationToken.None);
        var before = analysis.Attention.Head(1, 2);
        await service.AnalyzeIdsAsync([1, 5, 9, 4], Model(1), CancellationToken.None);
        thread.Run(() => true);
        CollectionAssert.AreEqual(new[] { Model(1) }, registry.LoadedIds().ToArray());
        CollectionAssert.AreEqual(before, analysis.Attention.Head(1, 2), "the attention outlives the model");
    }

    [TestMethod]
    public async Task AnAnalysisThatNeedsTheRoomOfAnIdleModelUnloadsIt()
    {
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var idle = await Use(registry, 0);
        var inUse = await Use(registry, 1);
        var needed = AnalysisMemory.NeededBytes(inUse.Model, 4, AnalysisMemory.KeepProbabilitiesBytes);
        // The budget holds this analysis, but not it and the idle model's weights together.
        var service = new AttentionService(registry, new AnalysisCache(needed + idle.Model.WeightBytes / 2), thread);
        var analysis = await service.AnalyzeIdsAsync([1, 5, 9, 4], Model(1), CancellationToken.None);
        thread.Run(() => true);
        Assert.IsTrue(idle.Disposed, "the idle model made room");
        Assert.IsFalse(inUse.Disposed);
        Assert.AreEqual(4, analysis.Tokens.Count);
        Assert.AreEqual(0, registry.LoadedBytesOtherThan(inUse.Model));
    }
}
