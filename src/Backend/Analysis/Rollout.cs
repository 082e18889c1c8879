using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// Attention rollout and flow (Abnar &amp; Zuidema 2020) on the residual-adjusted layer matrices
/// Âˡ = rownorm(0.5·Āˡ + 0.5·I), Āˡ = mean over heads of layer l (1-based here, as in anchors.md).
/// </summary>
public static class Rollout
{
    /// <summary>Âˡ for layers 1 … <paramref name="layers"/>: (layers, n, n) float64.</summary>
    public static Tensor ResidualAdjusted(AttentionTensor attention, int layers)
    {
        var n = attention.Tokens;
        using var scope = NewDisposeScope();
        var identity = eye(n, dtype: float64);
        var result = new List<Tensor>(layers);
        for (var l = 0; l < layers; l++)
        {
            var mean = HeadMetrics.LayerTensor(attention, l).mean([0]);               // (n, n)
            var adjusted = mean * 0.5 + identity * 0.5;
            result.Add(adjusted / adjusted.sum(-1, keepdim: true));
        }
        return stack(result, 0).MoveToOuterDisposeScope();                           // (L, n, n)
    }

    /// <summary>
    /// R¹ = Â¹, Rˡ = Âˡ · R^{l−1}, up to layer <paramref name="layer"/> (0-based: 0 is the first layer): row i is how
    /// much token i's representation after that layer draws on each input token. n×n float32, row-major.
    /// </summary>
    public static float[] Compute(AttentionTensor attention, int layer)
    {
        using var scope = NewDisposeScope();
        var adjusted = ResidualAdjusted(attention, layer + 1);                        // (l+1, n, n)
        var rollout = adjusted[0];
        for (var l = 1; l <= layer; l++) rollout = adjusted[l].matmul(rollout);
        return rollout.to(float32).contiguous().data<float>().ToArray();
    }
}

/// <summary>How much of one token's representation at a layer flows from each input token.</summary>
/// <param name="Flow">Max-flow values normalised to sum to 1 (all zero when nothing flows).</param>
/// <param name="Raw">The max-flow values themselves (each ≤ 1).</param>
public sealed record FlowResult(int Token, int Layer, double[] Flow, double[] Raw);

/// <summary>
/// Attention flow for one token: the DAG has (L+1)·n nodes and edges (l,i)→(l−1,j) with capacity Âˡᵢⱼ; the flow to
/// input j is the max-flow from (L,token) to (0,j). One graph is built (the input layer collapsed to one sink whose
/// n in-edges are re-weighted per j; the other input nodes are dead ends), and each of the n max-flows is Dinic's
/// algorithm on it, the sinks spread over the cores. A run stops as soon as its flow reaches min(source cut, sink cut),
/// which on real attention is almost always after the first blocking flow. Bound: O(V²E) per flow in theory, with
/// V = (L−1)·n + 2 and E ≤ (L−2)·n² + 2n; measured O(E) per flow (one or two phases), so O(L·n³) for all n inputs.
/// </summary>
public static class AttentionFlow
{
    private const double Epsilon = 1e-10;
    private const double BoundTolerance = 1e-9;

    public static FlowResult Compute(AttentionTensor attention, int token, int layer, CancellationToken cancellationToken = default)
    {
        double[][] capacities;
        using (NewDisposeScope())
        {
            var adjusted = Rollout.ResidualAdjusted(attention, layer + 1);            // (l+1, n, n)
            capacities = Enumerable.Range(0, layer + 1).Select(l => adjusted[l].contiguous().data<double>().ToArray()).ToArray();
        }
        return Compute(capacities, attention.Tokens, token, cancellationToken);
    }

    /// <summary>Flow from <paramref name="token"/> at the top of the layers given (capacities[l] is Âˡ⁺¹, n×n row-major).</summary>
    public static FlowResult Compute(double[][] capacities, int n, int token, CancellationToken cancellationToken = default)
    {
        var graph = new LayeredGraph(capacities, n, token);
        var raw = new double[n];
        var options = new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) };
        Parallel.For(0, n, options, () => new Dinic(graph), (j, _, solver) =>
        {
            raw[j] = solver.MaxFlowTo(j, cancellationToken);
            return solver;
        }, _ => { });
        var sum = raw.Sum();
        var flow = raw.Select(v => sum > 0 ? v / sum : 0).ToArray();
        return new FlowResult(token, capacities.Length - 1, flow, raw);
    }

    /// <summary>
    /// The layered graph in compressed sparse rows with a reverse arc per arc. Node 0 is the source (top, token);
    /// layer l (1 ≤ l &lt; L) token i is 1 + (l−1)·n + i; the last node is the sink standing for input token j.
    /// </summary>
    internal sealed class LayeredGraph
    {
        public readonly int Nodes, Source, Sink, Layers, Tokens;
        /// <summary>One layer only: a single arc source → sink.</summary>
        public readonly bool Direct;
        public readonly int[] Start, To, Reverse;
        public readonly double[] Capacity;
        /// <summary>Arc index into the sink from each token of layer 1 (or from the source when L = 1).</summary>
        public readonly int[] SinkArcs;
        /// <summary>Capacity of those arcs for input j: SinkCapacity[i·n + j] = Â¹ᵢⱼ (or Â¹_{token,j} when Direct).</summary>
        public readonly double[] SinkCapacity;

        private static int[] Descending(ReadOnlySpan<double> row)
        {
            var order = new int[row.Length];
            for (var k = 0; k < order.Length; k++) order[k] = k;
            var keys = row.ToArray();
            for (var k = 0; k < keys.Length; k++) keys[k] = -keys[k];
            Array.Sort(keys, order);
            return order;
        }

        public LayeredGraph(double[][] capacities, int n, int token)
        {
            var layers = capacities.Length;
            (Layers, Tokens) = (layers, n);
            Nodes = 2 + (layers - 1) * n;
            Source = 0;
            Sink = Nodes - 1;
            int Node(int l, int i) => l == layers ? Source : 1 + (l - 1) * n + i;

            var from = new List<int>();
            var to = new List<int>();
            var cap = new List<double>();
            void Add(int u, int v, double c) { from.Add(u); to.Add(v); cap.Add(c); }

            if (layers == 1)
            {
                Direct = true;
                SinkArcs = [0];
                Add(Source, Sink, 0);
                SinkCapacity = capacities[0].AsSpan(token * n, n).ToArray();
            }
            else
            {
                // Each node's arcs largest first: the search routes the bulk of the flow along few paths (the residual
                // diagonal first) and reaches the cut bound sooner.
                var top = capacities[layers - 1];
                foreach (var k in Descending(top.AsSpan(token * n, n)))
                    if (top[token * n + k] > 0) Add(Source, Node(layers - 1, k), top[token * n + k]);
                for (var l = layers - 1; l >= 2; l--)
                {
                    var a = capacities[l - 1];                                         // Âˡ: layer l → l−1
                    for (var i = 0; i < n; i++)
                        foreach (var j in Descending(a.AsSpan(i * n, n)))
                            if (a[i * n + j] > 0) Add(Node(l, i), Node(l - 1, j), a[i * n + j]);
                }
                SinkArcs = new int[n];
                for (var i = 0; i < n; i++)
                {
                    SinkArcs[i] = from.Count;
                    Add(Node(1, i), Sink, 0);
                }
                SinkCapacity = capacities[0];
            }

            var edges = from.Count;
            Start = new int[Nodes + 1];
            foreach (var u in from) Start[u + 1]++;
            foreach (var v in to) Start[v + 1]++;
            for (var v = 0; v < Nodes; v++) Start[v + 1] += Start[v];
            var next = Start[..Nodes];
            To = new int[2 * edges];
            Reverse = new int[2 * edges];
            Capacity = new double[2 * edges];
            var position = new int[edges];
            for (var e = 0; e < edges; e++)
            {
                int forward = next[from[e]]++, backward = next[to[e]]++;
                (To[forward], Capacity[forward], Reverse[forward]) = (to[e], cap[e], backward);
                (To[backward], Capacity[backward], Reverse[backward]) = (from[e], 0, forward);
                position[e] = forward;
            }
            for (var i = 0; i < SinkArcs.Length; i++) SinkArcs[i] = position[SinkArcs[i]];
        }
    }

    /// <summary>Dinic's max-flow on <see cref="LayeredGraph"/>, with its own residual capacities (one per worker).</summary>
    internal sealed class Dinic(LayeredGraph graph)
    {
        private readonly double[] _residual = new double[graph.Capacity.Length];
        private readonly int[] _level = new int[graph.Nodes];
        private readonly int[] _next = new int[graph.Nodes];
        private readonly int[] _queue = new int[graph.Nodes];
        private readonly List<int> _changed = [];
        private bool _fresh;

        public double MaxFlowTo(int input, CancellationToken cancellationToken)
        {
            // Only arcs that carried flow differ from the capacities: restore those instead of copying all of them.
            if (!_fresh) graph.Capacity.CopyTo(_residual, 0);
            else
                foreach (var a in _changed) (_residual[a], _residual[graph.Reverse[a]]) = (graph.Capacity[a], graph.Capacity[graph.Reverse[a]]);
            _changed.Clear();
            _fresh = true;
            if (graph.Direct) _residual[graph.SinkArcs[0]] = graph.SinkCapacity[input];
            else
                for (var i = 0; i < graph.SinkArcs.Length; i++) _residual[graph.SinkArcs[i]] = graph.SinkCapacity[i * graph.SinkArcs.Length + input];
            // Upper bound: the source cut (1 for normalised rows) and the sink cut (Σᵢ Â¹ᵢⱼ). Reaching it ends the search
            // without the last breadth-first pass that would prove no augmenting path is left.
            double sourceCut = 0, sinkCut = 0;
            for (var a = graph.Start[graph.Source]; a < graph.Start[graph.Source + 1]; a++) sourceCut += _residual[a];
            foreach (var a in graph.SinkArcs) sinkCut += _residual[a];
            var bound = Math.Min(sourceCut, sinkCut);
            double flow = 0;
            // The first level graph is the layering itself (no reverse arc has capacity yet): no breadth-first pass needed.
            for (var first = true; flow < bound - BoundTolerance && (first ? LayerLevels() : Levels()); first = false)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Array.Copy(graph.Start, _next, graph.Nodes);
                double pushed;
                while (bound - flow > BoundTolerance && (pushed = Push(graph.Source, bound - flow)) > Epsilon) flow += pushed;
            }
            return flow;
        }

        private bool LayerLevels()
        {
            _level[graph.Source] = 0;
            _level[graph.Sink] = graph.Layers;
            for (var v = 1; v < graph.Sink; v++) _level[v] = graph.Layers - 1 - (v - 1) / graph.Tokens;
            return true;
        }

        private bool Levels()
        {
            Array.Fill(_level, -1);
            var (head, tail) = (0, 0);
            _queue[tail++] = graph.Source;
            _level[graph.Source] = 0;
            while (head < tail)
            {
                var v = _queue[head++];
                for (var a = graph.Start[v]; a < graph.Start[v + 1]; a++)
                {
                    var u = graph.To[a];
                    if (_level[u] >= 0 || _residual[a] <= Epsilon) continue;
                    _level[u] = _level[v] + 1;
                    _queue[tail++] = u;
                }
            }
            return _level[graph.Sink] >= 0;
        }

        /// <summary>Pushes up to <paramref name="limit"/> from v along the level graph (blocking flow with current arcs).</summary>
        private double Push(int v, double limit)
        {
            if (v == graph.Sink) return limit;
            double total = 0;
            var end = graph.Start[v + 1];
            for (; _next[v] < end; _next[v]++)
            {
                var a = _next[v];
                var u = graph.To[a];
                if (_residual[a] <= Epsilon || _level[u] != _level[v] + 1) continue;
                var pushed = Push(u, Math.Min(limit - total, _residual[a]));
                if (pushed <= 0) continue;
                _changed.Add(a);
                _residual[a] -= pushed;
                _residual[graph.Reverse[a]] += pushed;
                total += pushed;
                if (limit - total <= Epsilon) return total;
            }
            _level[v] = -1;                                                            // dead end for this phase
            return total;
        }
    }
}
