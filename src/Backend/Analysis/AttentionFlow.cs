using System.Buffers;
using System.Runtime.CompilerServices;
namespace AttentionViz.Backend.Analysis;

/// <summary>How much of one token's representation at a layer flows from each input token.</summary>
/// <param name="Flow">Max-flow values normalised to sum to 1 (all zero when nothing flows); null unless complete.</param>
/// <param name="Raw">The max-flow values themselves (each ≤ 1); NaN for inputs not computed within the budget.</param>
/// <param name="UpperBound">A certified upper bound per input, min(source cut, sink cut): Raw[j] ≤ UpperBound[j].</param>
/// <param name="Complete">Every input's exact flow was computed (false only when the time budget ran out).</param>
public sealed record FlowResult(int Token, int Layer, double[]? Flow, double[] Raw, double[] UpperBound, bool Complete);

/// <summary>
/// Attention flow for one token: the DAG has (L+1)·n nodes and edges (l,i)→(l−1,j) with capacity Âˡᵢⱼ; the flow to
/// input j is the max-flow from (L,token) to (0,j). One graph is built (the input layer collapsed to one sink whose
/// n in-edges are re-weighted per j; the other input nodes are dead ends), and each of the n max-flows is Dinic's
/// algorithm on it, the sinks handed out to the cores largest upper bound first. A run stops as soon as its flow reaches
/// min(source cut, sink cut), which on real attention is almost always within the first blocking flow; that phase skips
/// tokens that can take no more flow by union-find, so it costs far less than one pass over the E ≈ (L−2)·n² arcs.
/// Dinic's bound is O(V²E) per flow, V = (L−1)·n + 2. An optional time budget stops handing out inputs when it runs
/// out: the result then says which inputs are exact (the others are NaN, with their upper bound), never an approximation.
/// </summary>
public static partial class AttentionFlow
{
    private const double Epsilon = 1e-10;

    /// <summary>
    /// Buffers up to this length come from the shared pool (fresh memory costs a page fault per 4 KB; at 512 tokens
    /// that was a sizeable part of a call); longer ones are allocated and dropped, so a long flow leaves no GBs behind.
    /// </summary>
    private const int PooledLength = 1 << 22;

    internal static T[] Rent<T>(int length) =>
        length <= PooledLength ? ArrayPool<T>.Shared.Rent(length) : GC.AllocateUninitializedArray<T>(length);

    internal static void Return<T>(T[] array)
    {
        if (array.Length <= PooledLength) ArrayPool<T>.Shared.Return(array);
    }
    private const double BoundTolerance = 1e-9;

    public static FlowResult Compute(IAttentionSource attention, int token, int layer, CancellationToken cancellationToken = default) =>
        Compute(attention, token, layer, null, cancellationToken);

    /// <summary>
    /// What the flow for <paramref name="layers"/> layers of n tokens holds at its peak: the layers' Âˡ (n² doubles
    /// each, while the graph is built), the graph's arcs (a causal model's half), the first layer's columns and one
    /// residual copy of the arcs per worker.
    /// </summary>
    public static long NeededBytes(int tokens, int layers, bool causal, int workers = 0)
    {
        long n = tokens, n2 = n * n;
        workers = workers > 0 ? workers : Math.Max(1, Math.Min(Environment.ProcessorCount, tokens));
        var perLayer = causal ? n * (n + 1) / 2 : n2;
        var arcs = layers <= 1 ? 1 : (layers - 2) * perLayer + 2 * n;
        return layers * n2 * sizeof(double) + arcs * (2 * sizeof(int) + sizeof(double)) + n2 * sizeof(double)
               + workers * arcs * sizeof(double);
    }

    /// <summary>Refuses, before anything is allocated, a flow whose graph would not fit <paramref name="budgetBytes"/>.</summary>
    public static void EnsureFits(int tokens, int layers, bool causal, long budgetBytes)
    {
        var needed = NeededBytes(tokens, layers, causal);
        if (needed <= budgetBytes) return;
        var fits = 0;
        for (var l = layers - 1; l >= 1 && fits == 0; l--)
            if (NeededBytes(tokens, l, causal) <= budgetBytes) fits = l;
        var advice = fits > 0
            ? $"attention flow holds every layer's graph; ask for layer {fits - 1} or lower, analyze fewer tokens, or raise " +
              "attentionViz.memoryBudgetMB (ATTENTIONVIZ_CACHE_MB); one token's rollout (attention/rolloutRow) needs no graph"
            : "attention flow holds every layer's graph; analyze fewer tokens or raise attentionViz.memoryBudgetMB " +
              "(ATTENTIONVIZ_CACHE_MB); one token's rollout (attention/rolloutRow) needs no graph";
        throw new MemoryBudgetException(needed, budgetBytes, advice);
    }

    /// <param name="budget">Wall time for the whole call (graph included); null: no limit.</param>
    /// <param name="causal">Keys after a query are zero in every head (read only up to the diagonal).</param>
    public static FlowResult Compute(IAttentionSource attention, int token, int layer, TimeSpan? budget,
        CancellationToken cancellationToken = default, bool causal = false)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var n = attention.Tokens;
        // Âˡ as in Rollout.Adjusted (a block of rows at a time), into pooled buffers: fresh memory costs a page fault per
        // 4 KB on first touch, which at 512 tokens was a sizeable part of the whole call.
        var capacities = new double[layer + 1][];
        LayeredGraph graph;
        try
        {
            Parallel.For(0, layer + 1, new ParallelOptions { CancellationToken = cancellationToken },
                l => Rollout.Adjusted(attention, l, causal, capacities[l] = Rent<double>(checked(n * n)), cancellationToken));
            graph = new LayeredGraph(capacities, n, token);
        }
        finally
        {
            // The graph holds its own copies: the layers are not kept while the flows run.
            foreach (var a in capacities) if (a is not null) Return(a);
        }
        using (graph) return Solve(graph, layer, budget, clock, cancellationToken);
    }

    /// <summary>Flow from <paramref name="token"/> at the top of the layers given (capacities[l] is Âˡ⁺¹, n×n row-major).</summary>
    public static FlowResult Compute(double[][] capacities, int n, int token, CancellationToken cancellationToken = default) =>
        Compute(capacities, n, token, null, cancellationToken);

    public static FlowResult Compute(double[][] capacities, int n, int token, TimeSpan? budget, CancellationToken cancellationToken = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var graph = new LayeredGraph(capacities, n, token);
        return Solve(graph, capacities.Length - 1, budget, clock, cancellationToken);
    }

    /// <summary>The n max-flows on a built graph; <paramref name="budget"/> is measured on <paramref name="clock"/>.</summary>
    private static FlowResult Solve(LayeredGraph graph, int layer, TimeSpan? budget, System.Diagnostics.Stopwatch clock,
        CancellationToken cancellationToken)
    {
        var (n, token) = (graph.Tokens, graph.Token);
        var upper = new double[n];
        for (var j = 0; j < n; j++) upper[j] = graph.UpperBound(j);
        // Largest bounds first: if the budget runs out, the inputs that can matter most are the exact ones.
        var order = Enumerable.Range(0, n).ToArray();
        Array.Sort(upper.Select(u => -u).ToArray(), order);
        var raw = new double[n];
        Array.Fill(raw, double.NaN);
        var nextInput = -1;
        var stopped = 0;
        var workers = Math.Max(1, Math.Min(Environment.ProcessorCount, n));
        var options = new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = workers };
        Parallel.For(0, workers, options, _ =>
        {
            using var solver = new Dinic(graph);
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // The clock is read before an input is claimed: every claimed input is computed, so the inputs done are
                // always the first ones of `order` (largest upper bound first).
                if (budget is { } b && clock.Elapsed >= b) { Volatile.Write(ref stopped, 1); return; }
                var k = Interlocked.Increment(ref nextInput);
                if (k >= n) return;
                raw[order[k]] = solver.MaxFlowTo(order[k], upper[order[k]], cancellationToken);
            }
        });
        var complete = stopped == 0 || !raw.Any(double.IsNaN);
        double[]? flow = null;
        if (complete)
        {
            var sum = raw.Sum();
            flow = raw.Select(v => sum > 0 ? v / sum : 0).ToArray();
        }
        return new FlowResult(token, layer, flow, raw, upper, complete);
    }
}
