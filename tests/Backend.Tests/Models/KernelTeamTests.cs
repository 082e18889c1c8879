using AttentionViz.Backend.Models.Core;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>The kernels' thread team runs every index exactly once, from nested and concurrent callers too, and hands a
/// body's exception to the caller with the team still usable.</summary>
[TestClass]
public sealed class KernelTeamTests
{
    [TestMethod]
    public void RunsEveryIndexOnce()
    {
        foreach (var count in new long[] { 1, 2, 3, 17, 1000 })
        {
            var hits = new int[count];
            KernelTeam.For(count, i => Interlocked.Increment(ref hits[i]));
            Assert.IsTrue(hits.All(h => h == 1), $"count {count}: {string.Join(",", hits.Where(h => h != 1))}");
        }
    }

    [TestMethod]
    public void NestedAndConcurrentLoopsComplete()
    {
        var total = 0L;
        Parallel.For(0, 4, _ =>
        {
            for (var round = 0; round < 50; round++)
                KernelTeam.For(8, i => KernelTeam.For(4, j => Interlocked.Add(ref total, i * 4 + j)));
        });
        Assert.AreEqual(4L * 50 * Enumerable.Range(0, 32).Sum(), total);
    }

    [TestMethod]
    public void ABodysExceptionReachesTheCaller()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
            KernelTeam.For(64, i => { if (i == 40) throw new InvalidOperationException("index 40"); }));
        Assert.AreEqual("index 40", e.Message);
        var hits = 0;
        KernelTeam.For(64, _ => Interlocked.Increment(ref hits));
        Assert.AreEqual(64, hits);
    }
}
