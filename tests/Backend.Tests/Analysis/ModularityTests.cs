using AttentionViz.Backend.Analysis;

namespace AttentionViz.Backend.Tests.Analysis;

[TestClass]
public sealed class ModularityTests
{
    /// <summary>Newman's Q written out again here: (1/2m) Σᵢⱼ [Wᵢⱼ − kᵢkⱼ/2m] δ(cᵢ,cⱼ).</summary>
    private static double IndependentQ(double[,] w, int[] c)
    {
        var n = w.GetLength(0);
        var k = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, n).Sum(j => w[i, j])).ToArray();
        var twoM = k.Sum();
        double q = 0;
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                if (c[i] == c[j]) q += w[i, j] - k[i] * k[j] / twoM;
        return q / twoM;
    }

    /// <summary>Unweighted graph of <paramref name="cliques"/> cliques of <paramref name="size"/> nodes; clique c's last node links to clique c+1's
    /// first.</summary>
    private static double[,] CliqueGraph(int cliques, int size, bool ring)
    {
        var n = cliques * size;
        var w = new double[n, n];
        for (var c = 0; c < cliques; c++)
        {
            for (var i = 0; i < size; i++)
                for (var j = 0; j < size; j++)
                    if (i != j) w[c * size + i, c * size + j] = 1;
            if (c + 1 < cliques || ring)
            {
                var (a, b) = (c * size + size - 1, (c + 1) % cliques * size);
                w[a, b] = w[b, a] = 1;
            }
        }
        return w;
    }

    private static float[] Flatten(double[,] w) => w.Cast<double>().Select(v => (float)v).ToArray();

    private static int[] Blocks(int cliques, int size) => Enumerable.Range(0, cliques * size).Select(i => i / size).ToArray();

    [TestMethod]
    public void TwoCliquesJoinedByOneEdge()
    {
        var w = CliqueGraph(2, 5, ring: false);
        var result = Modularity.Compute(Flatten(w), 10, includeSelfLoops: false);
        CollectionAssert.AreEqual(Blocks(2, 5), result.Communities);
        Assert.AreEqual(2, result.CommunityCount);
        // m = 21 edges; each clique holds 10 of them and has degree 21: Q = 2·(10/21 − (21/42)²) = 20/21 − 1/2.
        Assert.AreEqual(20.0 / 21 - 0.5, result.Q, 1e-12);
        Assert.AreEqual(IndependentQ(w, result.Communities), result.Q, 1e-12);
    }

    [TestMethod]
    public void RingOfCliques()
    {
        const int cliques = 6, size = 4;
        var w = CliqueGraph(cliques, size, ring: true);
        var result = Modularity.Compute(Flatten(w), cliques * size, includeSelfLoops: false);
        CollectionAssert.AreEqual(Blocks(cliques, size), result.Communities);
        // m = 6·6 + 6 = 42; each clique holds 6 edges and has degree 14: Q = 6·(6/42 − (14/84)²).
        Assert.AreEqual(6 * (6.0 / 42 - Math.Pow(14.0 / 84, 2)), result.Q, 1e-12);
        Assert.AreEqual(IndependentQ(w, result.Communities), result.Q, 1e-12);
    }

    [TestMethod]
    public void RowNormalisedAttentionOfTwoCliquesIsSymmetrisedAndSplit()
    {
        var graph = CliqueGraph(2, 5, ring: false);
        var n = 10;
        // An attention head that spreads each row evenly over the token's graph neighbours: A = D⁻¹G, not symmetric.
        var attention = new float[n * n];
        for (var i = 0; i < n; i++)
        {
            var degree = Enumerable.Range(0, n).Sum(j => graph[i, j]);
            for (var j = 0; j < n; j++) attention[i * n + j] = (float)(graph[i, j] / degree);
        }
        var result = Modularity.Compute(attention, n, includeSelfLoops: false);
        var w = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                if (i != j) w[i, j] = (attention[i * n + j] + attention[j * n + i]) / 2.0;
        CollectionAssert.AreEqual(Blocks(2, 5), result.Communities);
        Assert.AreEqual(IndependentQ(w, result.Communities), result.Q, 1e-9);
    }

    [TestMethod]
    public void SelfLoopsAreExcludedByDefaultAndIncludedOnRequest()
    {
        // Identity attention: without self-loops there are no edges (Q = 0, every token alone);
        // with them each token is its own perfect community: Q = Σᵢ (1/n − 1/n²) = 1 − 1/n.
        const int n = 5;
        var identity = new float[n * n];
        for (var i = 0; i < n; i++) identity[i * n + i] = 1;
        var without = Modularity.Compute(identity, n, includeSelfLoops: false);
        Assert.AreEqual(0.0, without.Q);
        var with = Modularity.Compute(identity, n, includeSelfLoops: true);
        CollectionAssert.AreEqual(Enumerable.Range(0, n).ToArray(), with.Communities);
        Assert.AreEqual(1 - 1.0 / n, with.Q, 1e-12);
        var w = Modularity.Symmetrize(identity, n, includeSelfLoops: true);
        Assert.AreEqual(1.0, w[0]);
        Assert.AreEqual(0.0, Modularity.Symmetrize(identity, n, includeSelfLoops: false)[0]);
    }

    [TestMethod]
    public void LouvainIsDeterministicAndNeverWorseThanOneCommunity()
    {
        using var attention = AnalysisTestData.Random(1, 1, 40, seed: 9, sharpness: 5);
        var matrix = AnalysisTestData.Matrix(attention, 0, 0);
        var first = Modularity.Compute(matrix, 40, false);
        var second = Modularity.Compute(matrix, 40, false);
        CollectionAssert.AreEqual(first.Communities, second.Communities);
        Assert.AreEqual(first.Q, second.Q);
        Assert.IsGreaterThanOrEqualTo(0.0, first.Q, "Louvain starts from singletons and only takes gains; Q ≥ Q(all in one) = 0");
        Assert.AreEqual(0, first.Communities[0], "communities are numbered by first token");
        var w = Modularity.Symmetrize(matrix, 40, false);
        Assert.AreEqual(Modularity.Q(w, 40, first.Communities), first.Q, 1e-12);
    }
}
