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
    private const double BoundTolerance = 1e-9;

    public static FlowResult Compute(IAttentionSource attention, int token, int layer, CancellationToken cancellationToken = default) =>
        Compute(attention, token, layer, null, cancellationToken);

    /// <param name="budget">Wall time for the whole call (graph included); null: no limit.</param>
    public static FlowResult Compute(IAttentionSource attention, int token, int layer, TimeSpan? budget,
        CancellationToken cancellationToken = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var n = attention.Tokens;
        // Âˡ as in Rollout.ResidualAdjusted, computed here into pooled buffers: fresh memory costs a page fault per 4 KB
        // on first touch, which at 512 tokens was a sizeable part of the whole call.
        var capacities = new double[layer + 1][];
        try
        {
            Parallel.For(0, layer + 1, new ParallelOptions { CancellationToken = cancellationToken },
                l => Adjust(attention, l, capacities[l] = ArrayPool<double>.Shared.Rent(n * n)));
            return Compute(capacities, n, token, budget - clock.Elapsed, cancellationToken);
        }
        finally
        {
            foreach (var a in capacities) if (a is not null) ArrayPool<double>.Shared.Return(a);
        }
    }

    /// <summary>Âˡ⁺¹ into <paramref name="a"/> (n×n): rownorm(0.5·mean over heads + 0.5·I).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Adjust(IAttentionSource attention, int layer, double[] a)
    {
        var (n, heads) = (attention.Tokens, attention.Heads);
        var head = ArrayPool<float>.Shared.Rent(n * n);
        a.AsSpan(0, n * n).Clear();
        for (var h = 0; h < heads; h++)
        {
            var m = head.AsSpan(0, n * n);
            attention.Head(layer, h, m);
            for (var k = 0; k < m.Length; k++) a[k] += m[k];
        }
        ArrayPool<float>.Shared.Return(head);
        for (var i = 0; i < n; i++)
        {
            var row = a.AsSpan(i * n, n);
            double sum = 0;
            for (var k = 0; k < n; k++) sum += row[k] = row[k] / heads * 0.5 + (k == i ? 0.5 : 0);
            for (var k = 0; k < n; k++) row[k] /= sum;
        }
    }

    /// <summary>Flow from <paramref name="token"/> at the top of the layers given (capacities[l] is Âˡ⁺¹, n×n row-major).</summary>
    public static FlowResult Compute(double[][] capacities, int n, int token, CancellationToken cancellationToken = default) =>
        Compute(capacities, n, token, null, cancellationToken);

    public static FlowResult Compute(double[][] capacities, int n, int token, TimeSpan? budget, CancellationToken cancellationToken = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var graph = new LayeredGraph(capacities, n, token);
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
        return new FlowResult(token, capacities.Length - 1, flow, raw, upper, complete);
    }
}
