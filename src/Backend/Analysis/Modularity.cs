namespace AttentionViz.Backend.Analysis;

/// <summary>Newman's Q and the Louvain communities of one attention graph. Communities are numbered by first token.</summary>
public sealed record ModularityResult(double Q, int[] Communities, int CommunityCount);

/// <summary>
/// True modularity of attention (anchors.md): the graph W = (A + Aᵀ)/2 on the tokens, self-loops excluded unless asked,
/// Q = (1/2m) Σᵢⱼ [Wᵢⱼ − kᵢkⱼ/2m] δ(cᵢ,cⱼ), communities by Louvain (Blondel et al. 2008). Deterministic: nodes are
/// visited in index order, a node moves only for a strictly positive gain, ties go to the lowest community index.
/// Dense: each local-moving sweep is O(n²) over the current (aggregated) graph.
/// </summary>
public static class Modularity
{
    private const double MinGain = 1e-12;

    /// <summary>
    /// The graph is dense (n² float64 weights, each Louvain sweep O(n²)): 32 MB and a few seconds a head at this many
    /// tokens, 0.5 GB a head at 8,192. Beyond it a request is refused in the product's words.
    /// </summary>
    public const int MaxTokens = 2048;

    public static void EnsureFits(int tokens)
    {
        if (tokens <= MaxTokens) return;
        throw new InvalidRequestException(
            $"Modularity is limited to {MaxTokens} tokens (this analysis has {tokens}: a dense graph of {tokens}² edges per head); " +
            "analyze a shorter selection to see communities");
    }

    /// <summary>W = (A + Aᵀ)/2 of an n×n attention matrix, with the diagonal zeroed unless self-loops are included.</summary>
    public static double[] Symmetrize(ReadOnlySpan<float> attention, int n, bool includeSelfLoops)
    {
        var w = new double[checked(n * n)];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                w[i * n + j] = i == j ? (includeSelfLoops ? attention[i * n + i] : 0) : 0.5 * (attention[i * n + j] + attention[j * n + i]);
        return w;
    }

    /// <summary>Q of a partition of the symmetric weighted graph <paramref name="w"/> (n×n), straight from Newman's formula.</summary>
    public static double Q(ReadOnlySpan<double> w, int n, ReadOnlySpan<int> communities)
    {
        var k = new double[n];
        double twoM = 0;
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < n; j++) k[i] += w[i * n + j];
            twoM += k[i];
        }
        if (twoM <= 0) return 0;
        double q = 0;
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                if (communities[i] == communities[j]) q += w[i * n + j] - k[i] * k[j] / twoM;
        return q / twoM;
    }

    public static ModularityResult Compute(ReadOnlySpan<float> attention, int n, bool includeSelfLoops, CancellationToken cancellationToken = default)
    {
        var w = Symmetrize(attention, n, includeSelfLoops);
        var communities = Louvain(w, n, cancellationToken);
        return new ModularityResult(Q(w, n, communities), communities, communities.Length == 0 ? 0 : communities.Max() + 1);
    }

    /// <summary>Louvain on a symmetric, non-negative weighted graph (n×n). Returns each node's community, numbered by first node.</summary>
    public static int[] Louvain(double[] w, int n, CancellationToken cancellationToken = default)
    {
        var membership = new int[n];
        for (var i = 0; i < n; i++) membership[i] = i;
        var graph = w;
        var size = n;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var local = LocalMoving(graph, size, cancellationToken, out var moved);
            var count = Renumber(local);
            for (var i = 0; i < n; i++) membership[i] = local[membership[i]];
            if (!moved || count == size) break;
            graph = Aggregate(graph, size, local, count);
            size = count;
        }
        Renumber(membership);
        return membership;
    }

    /// <summary>Phase 1: move single nodes to the neighbouring community with the best modularity gain until none improves.</summary>
    private static int[] LocalMoving(double[] w, int n, CancellationToken cancellationToken, out bool movedAny)
    {
        var community = new int[n];
        var k = new double[n];
        var total = new double[n];                                                    // Σ_tot of each community
        double twoM = 0;
        for (var i = 0; i < n; i++)
        {
            community[i] = i;
            for (var j = 0; j < n; j++) k[i] += w[i * n + j];
            total[i] = k[i];
            twoM += k[i];
        }
        movedAny = false;
        if (twoM <= 0) return community;
        var links = new double[n];                                                    // weight from the node to each community
        var touched = new List<int>(n);
        var improved = true;
        while (improved)
        {
            cancellationToken.ThrowIfCancellationRequested();
            improved = false;
            for (var i = 0; i < n; i++)
            {
                var own = community[i];
                touched.Clear();
                for (var j = 0; j < n; j++)
                {
                    var weight = w[i * n + j];
                    if (j == i || weight <= 0) continue;
                    var c = community[j];
                    if (links[c] == 0) touched.Add(c);
                    links[c] += weight;
                }
                total[own] -= k[i];
                // Gain of joining c (up to the common factor 2/2m): links(i→c) − Σ_tot(c)·kᵢ/2m.
                var best = own;
                var bestGain = links[own] - total[own] * k[i] / twoM;
                touched.Sort();
                foreach (var c in touched)
                {
                    var gain = links[c] - total[c] * k[i] / twoM;
                    if (gain > bestGain + MinGain) (best, bestGain) = (c, gain);
                }
                total[best] += k[i];
                if (best != own)
                {
                    community[i] = best;
                    improved = movedAny = true;
                }
                foreach (var c in touched) links[c] = 0;
                links[own] = 0;
            }
        }
        return community;
    }

    /// <summary>Renumbers labels 0, 1, … in order of first appearance; returns how many there are.</summary>
    private static int Renumber(int[] labels)
    {
        var map = new Dictionary<int, int>();
        for (var i = 0; i < labels.Length; i++)
        {
            if (!map.TryGetValue(labels[i], out var id)) map[labels[i]] = id = map.Count;
            labels[i] = id;
        }
        return map.Count;
    }

    /// <summary>Phase 2: one node per community; weights summed (internal weight becomes a self-loop).</summary>
    private static double[] Aggregate(double[] w, int n, int[] community, int count)
    {
        var result = new double[checked(count * count)];
        for (var i = 0; i < n; i++)
        {
            var row = community[i] * count;
            for (var j = 0; j < n; j++) result[row + community[j]] += w[i * n + j];
        }
        return result;
    }
}
