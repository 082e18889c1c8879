using System.Runtime.CompilerServices;
namespace AttentionViz.Backend.Analysis;

// The max-flow solver of attention flow: the layered graph it runs on and Dinic's algorithm.
public static partial class AttentionFlow
{
    /// <summary>
    /// The layered graph, forward arcs only, grouped by tail node in compressed sparse rows (each row in token order over
    /// its nonzero span, so the arc to a token is found by arithmetic);
    /// the reverse (residual) direction is built by each solver from the arcs carrying flow, needed only after the first
    /// phase. Node 0 is the source (top, token); layer l (1 ≤ l &lt; L) token i is 1 + (L−1−l)·n + i, so the levels of
    /// the first phase are the layers and the arcs into the sink (one per token of layer 1) are the last n arcs.
    /// </summary>
    internal sealed class LayeredGraph : IDisposable
    {
        public readonly int Nodes, Source, Sink, Layers, Tokens, Token, Arcs;
        /// <summary>One layer only: a single arc source → sink.</summary>
        public readonly bool Direct;
        public readonly int[] Start, To;
        public readonly double[] Capacity;
        /// <summary>Tail of each arc (for the reverse direction).</summary>
        public readonly int[] From;
        /// <summary>First arc into the sink; arc SinkArcs + i comes from layer-1 token i (the one arc when Direct).</summary>
        public readonly int SinkArcs;
        /// <summary>The token of each node's first arc: arc Start[v] + t − Low[v] goes to token t of the next layer down.</summary>
        public readonly int[] Low;
        /// <summary>
        /// Capacity of those arcs for input j: SinkCapacity[j·n + i] = Â¹ᵢⱼ, the columns of Â¹ contiguous (or Â¹_{token,j}
        /// when Direct).
        /// </summary>
        public readonly double[] SinkCapacity;
        private readonly double _sourceCut;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public LayeredGraph(double[][] capacities, int n, int token)
        {
            var layers = capacities.Length;
            (Layers, Tokens, Token) = (layers, n, token);
            Nodes = 2 + (layers - 1) * n;
            Source = 0;
            Sink = Nodes - 1;
            int Node(int l, int i) => l == layers ? Source : 1 + (layers - 1 - l) * n + i;

            if (layers == 1)
            {
                Direct = true;
                (Start, To, Capacity, From, Arcs) = ([0, 1, 1], [Sink], [0], [Source], 1);
                SinkArcs = 0;
                Low = [0, 0];
                SinkCapacity = capacities[0].AsSpan(token * n, n).ToArray();
                _sourceCut = double.PositiveInfinity;
            }
            else
            {
                var top = capacities[layers - 1];
                // Rows are dense, in token order over their nonzero span (see Dinic.PushLayered).
                (int Low, int High) Span(double[] a, int row)
                {
                    int low = 0, high = n;
                    while (low < n && a[row * n + low] <= 0) low++;
                    while (high > low && a[row * n + high - 1] <= 0) high--;
                    return (low, high);
                }
                var edges = n;                                                         // the sink arcs
                edges += Span(top, token).High - Span(top, token).Low;
                for (var l = 2; l < layers; l++)
                    for (var i = 0; i < n; i++) edges += Span(capacities[l - 1], i).High - Span(capacities[l - 1], i).Low;
                Start = new int[Nodes + 1];
                Low = new int[Nodes];
                // Pooled (longer than needed): see Compute(IAttentionSource, …) on fresh memory.
                Arcs = edges;
                To = Rent<int>(edges);
                From = Rent<int>(edges);
                Capacity = Rent<double>(edges);
                var e = 0;
                void AddRow(int from, double[] a, int row, int toLayer)
                {
                    var (low, high) = Span(a, row);
                    Low[from] = low;
                    for (var k = low; k < high; k++) (To[e], From[e], Capacity[e++]) = (Node(toLayer, k), from, a[row * n + k]);
                }
                AddRow(Source, top, token, layers - 1);
                for (var k = 0; k < n; k++) _sourceCut += top[token * n + k];
                for (var l = layers - 1; l >= 2; l--)
                    for (var i = 0; i < n; i++)
                    {
                        Start[Node(l, i)] = e;
                        AddRow(Node(l, i), capacities[l - 1], i, l - 1);              // Âˡ: layer l → l−1
                    }
                SinkArcs = e;
                for (var i = 0; i < n; i++)
                {
                    Start[Node(1, i)] = e;
                    (To[e], From[e], Capacity[e++]) = (Sink, Node(1, i), 0);
                }
                Start[Sink] = Start[Nodes] = e;
                SinkCapacity = Rent<double>(checked(n * n));
                var first = capacities[0];
                for (var i = 0; i < n; i++)
                    for (var j = 0; j < n; j++) SinkCapacity[j * n + i] = first[i * n + j];
            }
        }

        public void Dispose()
        {
            if (Direct) return;
            Return(To);
            Return(From);
            Return(Capacity);
            Return(SinkCapacity);
        }

        /// <summary>min(source cut, sink cut) for input j: the run stops when its flow reaches it.</summary>
        public double UpperBound(int input)
        {
            if (Direct) return SinkCapacity[input];
            double sinkCut = 0;
            foreach (var c in SinkCapacity.AsSpan(input * Tokens, Tokens)) sinkCut += c;
            return Math.Min(_sourceCut, sinkCut);
        }
    }

    /// <summary>Dinic's max-flow on <see cref="LayeredGraph"/>, with its own residual capacities (one per worker).</summary>
    internal sealed class Dinic : IDisposable
    {
        private readonly LayeredGraph graph;

        public Dinic(LayeredGraph graph)
        {
            this.graph = graph;
            _residual = Rent<double>(graph.Arcs);
            Array.Copy(graph.Capacity, _residual, graph.Arcs);
            _level = new int[graph.Nodes];
            _next = new int[graph.Nodes];
            _queue = new int[graph.Nodes];
            _reverseStart = new int[graph.Nodes + 1];
            _alive = new int[Math.Max(1, graph.Layers - 1) * (graph.Tokens + 1)];
        }

        public void Dispose() => Return(_residual);

        /// <summary>Residual capacity of each forward arc; its reverse arc's residual is Capacity − this (the flow).</summary>
        private readonly double[] _residual;
        private readonly int[] _level;
        /// <summary>Current arc per node: an arc index in the first phase; later, a position in its forward arcs followed by its reverse
        /// list.</summary>
        private readonly int[] _next;
        private readonly int[] _queue;
        private readonly List<int> _changed = [];
        /// <summary>
        /// The reverse direction for the current phase: the arcs carrying flow, grouped by head node. Only those have
        /// residual capacity backwards, and they are few, so later phases never scan the full in-arc index.
        /// </summary>
        private readonly int[] _reverseStart;
        private int[] _reverseArc = [];
        /// <summary>Per layer below the source (block d·(n+1) for level d+1): union-find over tokens still alive.</summary>
        private readonly int[] _alive;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]                         // hot from the first call: no tier-0 code
        public double MaxFlowTo(int input, double bound, CancellationToken cancellationToken)
        {
            // Only arcs that carried flow differ from the capacities: restore those instead of copying all of them.
            foreach (var a in _changed) _residual[a] = graph.Capacity[a];
            _changed.Clear();
            var n = graph.Tokens;
            if (graph.Direct) return bound;                                            // one arc: its capacity
            graph.SinkCapacity.AsSpan(input * n, n).CopyTo(_residual.AsSpan(graph.SinkArcs, n));
            double flow = 0;
            // The first level graph is the layering itself (no reverse arc has capacity yet): no breadth-first pass, and
            // only forward arcs to scan. Reaching the bound ends the search without the last breadth-first pass that
            // would prove no augmenting path is left.
            for (var first = true; flow < bound - BoundTolerance && (first ? LayerLevels() : Levels()); first = false)
            {
                cancellationToken.ThrowIfCancellationRequested();
                double pushed;
                if (first)
                {
                    Array.Copy(graph.Start, _next, graph.Nodes);
                    for (var b = 0; b < _alive.Length; b += n + 1)
                        for (var i = 0; i <= n; i++) _alive[b + i] = i;
                    // Every push has changed the residuals, however small: count it, then stop once pushes dry up.
                    while (bound - flow > BoundTolerance && _level[graph.Source] >= 0)
                    {
                        flow += pushed = PushLayered(graph.Source, bound - flow);
                        if (pushed <= Epsilon) break;
                    }
                }
                else
                {
                    // Levels() built the reverse lists for this phase.
                    Array.Clear(_next);
                    while (bound - flow > BoundTolerance)
                    {
                        flow += pushed = Push(graph.Source, bound - flow);
                        if (pushed <= Epsilon) break;
                    }
                }
            }
            return flow;
        }

        private bool LayerLevels()
        {
            _level[graph.Source] = 0;
            _level[graph.Sink] = graph.Layers;
            for (var v = 1; v < graph.Sink; v++) _level[v] = 1 + (v - 1) / graph.Tokens;
            return true;
        }

        /// <summary>Groups the arcs carrying flow by head node (sink arcs excluded: nothing leaves the sink).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void BuildReverse()
        {
            // _changed may hold an arc twice (flow back to zero, then pushed again): a duplicate reverse entry is
            // harmless, one more scan.
            Array.Clear(_reverseStart);
            var count = 0;
            foreach (var a in _changed)
            {
                if (graph.To[a] == graph.Sink || graph.Capacity[a] - _residual[a] <= Epsilon) continue;
                _reverseStart[graph.To[a] + 1]++;
                count++;
            }
            for (var v = 0; v < graph.Nodes; v++) _reverseStart[v + 1] += _reverseStart[v];
            if (_reverseArc.Length < count) _reverseArc = new int[Math.Max(count, 2 * _reverseArc.Length)];
            var next = _next;                                                          // free until the phase starts
            Array.Copy(_reverseStart, next, graph.Nodes);
            foreach (var a in _changed)
                if (graph.To[a] != graph.Sink && graph.Capacity[a] - _residual[a] > Epsilon) _reverseArc[next[graph.To[a]]++] = a;
        }

        /// <summary>
        /// Breadth-first levels over the residual graph. Forward arcs: each layer's unvisited tokens are found through
        /// _alive (free after the first phase), so a row is not scanned past tokens visited already; only arcs that are
        /// full are passed one by one.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private bool Levels()
        {
            BuildReverse();
            Array.Fill(_level, -1);
            var n = graph.Tokens;
            for (var b = 0; b < _alive.Length; b += n + 1)
                for (var i = 0; i <= n; i++) _alive[b + i] = i;
            var (head, tail) = (0, 0);
            _queue[tail++] = graph.Source;
            _level[graph.Source] = 0;
            var (from, residual, capacity) = (graph.From, _residual, graph.Capacity);
            void Visit(int u, int level)
            {
                _level[u] = level;
                _queue[tail++] = u;
                if (u != graph.Sink) _alive[(u - 1) / n * (n + 1) + (u - 1) % n] = (u - 1) % n + 1;
            }
            while (head < tail)
            {
                var v = _queue[head++];
                if (v == graph.Sink) continue;
                var depth = v == graph.Source ? 0 : 1 + (v - 1) / n;
                if (depth == graph.Layers - 1)
                {
                    if (_level[graph.Sink] < 0 && residual[graph.Start[v]] > Epsilon) Visit(graph.Sink, _level[v] + 1);
                }
                else
                {
                    int row = graph.Start[v] - graph.Low[v], end = graph.Start[v + 1], block = depth * (n + 1), down = 1 + depth * n;
                    for (var t = Alive(block, graph.Low[v]); row + t < end; t = Alive(block, t + 1))
                        if (residual[row + t] > Epsilon) Visit(down + t, _level[v] + 1);
                }
                for (var k = _reverseStart[v]; k < _reverseStart[v + 1]; k++)
                {
                    var a = _reverseArc[k];
                    var u = from[a];
                    if (_level[u] >= 0 || capacity[a] - residual[a] <= Epsilon) continue;
                    Visit(u, _level[v] + 1);
                }
            }
            return _level[graph.Sink] >= 0;
        }

        /// <summary>The first token ≥ t still alive in a layer's block of _alive (n if none): union-find with path halving.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private int Alive(int block, int t)
        {
            while (_alive[block + t] != t) t = _alive[block + t] = _alive[block + _alive[block + t]];
            return t;
        }

        /// <summary>
        /// The first phase's blocking flow: every forward arc goes one level down. A node that cannot take more stays
        /// so for the whole phase (a dead end, or for layer 1 a full sink arc); _alive skips such tokens in near-constant
        /// time, so a node's arcs are not passed one by one on every visit. Layer-1 tokens are handled inline: their
        /// one arc goes to the sink.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private double PushLayered(int v, double limit)
        {
            double total = 0;
            var residual = _residual;
            var n = graph.Tokens;
            int depth = _level[v], block = depth * (n + 1), row = graph.Start[v] - graph.Low[v], end = graph.Start[v + 1];
            var a = _next[v];
            if (depth == graph.Layers - 2)
            {
                var sinkArcs = graph.SinkArcs;
                while (true)
                {
                    var i = Alive(block, a - row);
                    a = row + i;
                    if (a >= end) break;
                    var rs = residual[sinkArcs + i];
                    if (rs <= Epsilon) { _alive[block + i] = i + 1; continue; }
                    var r = residual[a];
                    if (r <= Epsilon) { a++; continue; }
                    var pushed = Math.Min(limit - total, Math.Min(r, rs));
                    if (r == graph.Capacity[a]) _changed.Add(a);                       // first touch; sink arcs are reset per input

                    residual[a] = r - pushed;
                    residual[sinkArcs + i] = rs - pushed;
                    total += pushed;
                    if (limit - total <= Epsilon) { _next[v] = a; return total; }
                }
            }
            else
            {
                var down = 1 + depth * n;                                              // node of token 0 one layer down
                while (true)
                {
                    var t = Alive(block, a - row);
                    a = row + t;
                    if (a >= end) break;
                    var r = residual[a];
                    if (r <= Epsilon) { a++; continue; }
                    var pushed = PushLayered(down + t, Math.Min(limit - total, r));
                    if (pushed > 0)
                    {
                        if (r == graph.Capacity[a]) _changed.Add(a);
                        residual[a] = r - pushed;
                        total += pushed;
                        if (limit - total <= Epsilon) { _next[v] = a; return total; }
                    }
                    // Not limited by v: the arc is full or the token below is now dead (and skipped).
                    if (residual[a] <= Epsilon) a++;
                }
            }
            _next[v] = end;
            _level[v] = -1;                                                            // dead end for this phase
            if (depth > 0) _alive[block - (n + 1) + v - (1 + (depth - 1) * n)] = v - (1 + (depth - 1) * n) + 1;
            return total;
        }

        /// <summary>Pushes up to <paramref name="limit"/> from v along the level graph (blocking flow with current arcs).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private double Push(int v, double limit)
        {
            if (v == graph.Sink) return limit;
            double total = 0;
            int start = graph.Start[v], forward = graph.Start[v + 1] - start, end = forward + _reverseStart[v + 1] - _reverseStart[v];
            for (; _next[v] < end; _next[v]++)
            {
                var k = _next[v];
                // Forward arc a = start + k, or the reverse of the k−forward'th arc into v (its flow is its residual).
                var reverse = k >= forward;
                var a = reverse ? _reverseArc[_reverseStart[v] + k - forward] : start + k;
                var u = reverse ? graph.From[a] : graph.To[a];
                var r = reverse ? graph.Capacity[a] - _residual[a] : _residual[a];
                if (r <= Epsilon || _level[u] != _level[v] + 1) continue;
                var pushed = Push(u, Math.Min(limit - total, r));
                if (pushed <= 0) continue;
                if (!reverse && r == graph.Capacity[a]) _changed.Add(a);              // a reverse arc is listed already
                _residual[a] += reverse ? pushed : -pushed;
                total += pushed;
                if (limit - total <= Epsilon) return total;
            }
            _level[v] = -1;                                                            // dead end for this phase
            return total;
        }
    }
}
