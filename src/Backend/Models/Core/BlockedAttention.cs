using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AttentionViz.Backend.Platform;
using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace AttentionViz.Backend.Models.Core;

/// <summary>
/// How a layer turns queries and keys into probabilities: p(i, j) = exp(s(i, j) − lse_i) where key j is visible from
/// query i (causal: j ≤ i; with a window also i − j &lt; Window), 0 elsewhere; the score s = q_i·k_j·Scale, or with a
/// SoftCap c (Gemma 2) s = c·tanh(q_i·k_j·Scale / c). Enough to recompute any value later.
/// </summary>
public sealed record AttentionRule(double Scale, bool Causal, int? Window, double? SoftCap = null)
{
    /// <summary>The score of a query·key dot product.</summary>
    public float Score(float dot) => SoftCap is { } cap ? SoftCapping.Apply(dot * (float)Scale, (float)cap) : dot * (float)Scale;

    /// <summary>In place: dot products (any shape) become scores, in the float32 steps of <see cref="Score"/>.</summary>
    public Tensor Scores(Tensor dots)
    {
        dots.mul_((float)Scale);
        if (SoftCap is { } cap) dots.mul_(1f / (float)cap).tanh_().mul_((float)cap);
        return dots;
    }

    /// <summary>The first key query <paramref name="row"/> can see.</summary>
    public int FirstKey(int row) => Window is { } w ? Math.Max(0, row - w + 1) : 0;

    /// <summary>One past the last key query <paramref name="row"/> can see, of <paramref name="tokens"/>.</summary>
    public int EndKey(int row, int tokens) => Causal ? row + 1 : tokens;
}

/// <summary>
/// What a decoder's forward hands out as it goes, for batch row 0: each block of probabilities and each layer's
/// recomputable state. The analysis decides what to keep; the model never holds more than one block.
/// </summary>
public interface IAttentionObserver
{
    /// <param name="probabilities">(H, rows, cols): rows from <paramref name="rowStart"/>, keys from
    /// <paramref name="colStart"/>; keys outside [colStart, colStart + cols) are 0 for these rows</param>
    void Block(int layer, int rowStart, int colStart, Tensor probabilities);

    /// <param name="queries">(H, T − queryStart, D) after RoPE, as the scores use them (the rows the forward ran)</param>
    /// <param name="keys">(KV, T, D) after RoPE; query head h uses kv head h / (H / KV)</param>
    /// <param name="logSumExp">(H, T − queryStart): each query's softmax normaliser</param>
    void Layer(int layer, Tensor queries, Tensor keys, Tensor logSumExp, AttentionRule rule);
}

/// <summary>
/// Attention over blocks of queries, so that a layer never holds H×T×T: each block of rows sees only the keys its rule
/// allows (a causal block skips the keys after it, a windowed one those before its window), computed as
/// exp(score − logsumexp) in float32. Grouped-query heads share their kv head without copying it.
/// </summary>
public static class BlockedAttention
{
    /// <summary>
    /// The score block's size the forward aims for, rows × keys × heads floats: 8 MB, under malloc's mmap threshold
    /// (<see cref="Platform.HeapSettings.MapFromBytes"/>), so that each layer's block buffer comes back from the heap the
    /// last one went back to, and a block's probabilities are still in L3 when the capture reads them. At 32 MB every
    /// layer mapped and first-touched a fresh one (SmolLM2 shape at 4,096 tokens: 30 × 19 MB).
    /// </summary>
    private const long BlockElements = (8L << 20) / sizeof(float);

    /// <summary>
    /// At least heads × <see cref="BlockRows"/> × tokens, and unlike it never smaller for more tokens (the block's rows
    /// halve where the product would pass <see cref="BlockElements"/>): what a memory budget can count on.
    /// </summary>
    public static long BlockFloatsBound(int heads, int tokens) =>
        Math.Max(Math.Min(BlockElements, 512L * heads * tokens), 16L * heads * tokens);

    /// <summary>Query rows per block: a power of two (so blocks nest with power-of-two pooling), 16 to 512.</summary>
    public static int BlockRows(int heads, int tokens)
    {
        var rows = BlockElements / Math.Max(1L, (long)heads * tokens);
        var power = 16;
        while (power * 2 <= Math.Min(rows, 512)) power *= 2;
        return power;
    }

    /// <param name="q">(B, H, T, D)</param>
    /// <param name="k">(B, KV, T, D)</param>
    /// <param name="v">(B, KV, T, D)</param>
    /// <param name="padding">(B, T) 1 = token, 0 = padding, or null</param>
    /// <param name="probabilities">when given, (B, H, T, T) to fill with every probability (small inputs, tests)</param>
    /// <param name="queryStart">the position of q's first row: a forward that reuses a prefix's keys and values passes
    /// only the suffix's queries (q is then (B, H, T − queryStart, D)); rows reported to the observer are positions</param>
    /// <returns>the context, (B, H, T − queryStart, D)</returns>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, AttentionRule rule, Tensor? padding, int layer,
        IAttentionObserver? observer, Tensor? probabilities, CancellationToken cancellationToken, int queryStart = 0)
    {
        if (queryStart + q.shape[2] != k.shape[2]) throw new ArgumentException($"{q.shape[2]} queries from {queryStart} for {k.shape[2]} keys");
        if (AttentionKernel.Runs && padding is null)
            return AttendOnKernel(q, k, v, rule, layer, observer, probabilities, cancellationToken, queryStart);
        using var scope = NewDisposeScope();
        long batch = q.shape[0], heads = q.shape[1], t = q.shape[2], d = q.shape[3], kvHeads = k.shape[1];
        var repeats = heads / kvHeads;
        var tokens = (int)k.shape[2];
        q = q.to(float32);
        k = k.to(float32);
        v = v.to(float32);
        var context = zeros(batch, heads, t, d, dtype: float32);
        var logSumExp = empty(batch, heads, t, dtype: float32);
        var blockRows = BlockRows((int)heads, tokens);
        // One buffer for every block's scores, the largest block's size: a new tensor per block was a new allocation each
        // time, first-touched again when it was mapped (HeapSettings).
        var buffer = empty(batch * heads * Math.Min(blockRows, tokens) * (long)tokens, dtype: float32);
        // Blocks fall where a forward over all T queries puts them, and take the same keys: the suffix's rows then
        // round as that forward's would (a block starting at queryStart would sum over other keys).
        for (var b0 = queryStart / blockRows * blockRows; b0 < tokens; b0 += blockRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var blockScope = NewDisposeScope();
            var (r0, r1) = (Math.Max(b0, queryStart), Math.Min(tokens, b0 + blockRows));
            var (c0, c1) = (rule.FirstKey(b0), rule.EndKey(r1 - 1, tokens));
            long rows = r1 - r0, cols = c1 - c0;
            // (B, KV, repeats·rows, D) against (B, KV, D, cols): query head h = kv·repeats + r uses kv head kv.
            var qBlock = q.narrow(2, r0 - queryStart, rows).reshape(batch, kvHeads, repeats * rows, d);
            var kBlock = k.narrow(2, c0, cols);
            var started = PhaseTimers.Start();
            var grouped = buffer.narrow(0, 0, batch * heads * rows * cols).view(batch, kvHeads, repeats * rows, cols);
            for (var b = 0; b < batch; b++)
                for (var g = 0; g < kvHeads; g++)
                    grouped[b, g].addmm_(qBlock[b, g], kBlock[b, g].t(), beta: 0, alpha: 1);      // β = 0: the buffer's old values are not read
            var scores = grouped.view(batch, heads, rows, cols);
            PhaseTimers.Stop("attention.qk", started);
            started = PhaseTimers.Start();
            Tensor lse, p;
            if (padding is null) (lse, p) = (Softmax(scores, rule, r0, c0, tokens), scores);  // every row sees a key
            else
            {
                rule.Scores(scores);
                if (Visible(rule, r0, r1, c0, c1, padding) is { } visible) scores.masked_fill_(visible.logical_not(), float.NegativeInfinity);
                lse = scores.logsumexp(-1);                                           // (B, H, rows)
                lse.masked_fill_(lse.isinf(), 0f);                                    // a row that sees no key stays all 0
                p = scores.sub_(lse.unsqueeze(-1)).exp_();                            // (B, H, rows, cols)
            }
            PhaseTimers.Stop("attention.softmax", started);
            started = PhaseTimers.Start();
            var pv = p.view(batch, kvHeads, repeats * rows, cols).matmul(v.narrow(2, c0, cols));
            context.narrow(2, r0 - queryStart, rows).copy_(pv.view(batch, heads, rows, d));
            logSumExp.narrow(2, r0 - queryStart, rows).copy_(lse);
            PhaseTimers.Stop("attention.pv", started);
            HandOutBlock(observer, probabilities, layer, r0, c0, queryStart, p);
        }
        HandOutLayer(observer, layer, q, k, logSumExp, rule);
        return context.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Attend"/> on <see cref="AttentionKernel"/> (no padding): each block's rows go in runs of at most
    /// <see cref="RunRows"/> per head, spread over the threads; a run's scores are computed, normalised and multiplied by
    /// the values while they are in cache. A block's keys start at a multiple of the key panel (a windowed rule's
    /// first visible key rounded down) and end at the next one (or the last key); the softmax zeroes what the rule hides.
    /// A suffix after a reused prefix starts its runs at queryStart, so its rows' dot products may be summed in another
    /// order than a full forward's (tiles against strips): equal to float32 rounding, as the tests check.
    /// </summary>
    private static unsafe Tensor AttendOnKernel(Tensor q, Tensor k, Tensor v, AttentionRule rule, int layer,
        IAttentionObserver? observer, Tensor? probabilities, CancellationToken cancellationToken, int queryStart)
    {
        using var scope = NewDisposeScope();
        var path = LinearKernel.Selected;
        long batch = q.shape[0], heads = q.shape[1], t = q.shape[2], d = q.shape[3], kvHeads = k.shape[1];
        var repeats = heads / kvHeads;
        var tokens = (int)k.shape[2];
        q = q.to(float32).contiguous();
        k = k.to(float32).contiguous();
        v = v.to(float32).contiguous();
        // (B, T, H, D), handed out as its (B, H, T, D) transpose: the heads then merge back without a copy.
        var context = empty(batch, t, heads, d, dtype: float32);
        var logSumExp = empty(batch, heads, t, dtype: float32);
        var packed = empty(2 * batch * kvHeads * tokens * d, dtype: float32);
        float* qData = AttentionKernel.Data(q), kData = AttentionKernel.Data(k), vData = AttentionKernel.Data(v);
        float* contextData = AttentionKernel.Data(context), lseData = AttentionKernel.Data(logSumExp);
        float* keysPacked = AttentionKernel.Data(packed), valuesPacked = keysPacked + batch * kvHeads * tokens * d;
        var started = PhaseTimers.Start();
        KernelTeam.For(batch * kvHeads, g =>
        {
            LinearKernel.PackRows(kData + g * tokens * d, d, tokens, (int)d, keysPacked + g * tokens * d);
            LinearKernel.PackColumns(vData + g * tokens * d, d, tokens, (int)d, valuesPacked + g * tokens * d);
        });
        PhaseTimers.Stop("attention.pack", started);
        var blockRows = BlockRows((int)heads, tokens);
        // A buffer per layer, as libtorch's path: kept from layer to layer, the 32 MB blocks of before saved their first
        // touch but added to the peak of every layer's RoPE and MLP (8,160 tokens: +45–90 MB). Blocks are under 8 MB now,
        // and each layer's comes back from the heap.
        var buffer = empty(batch * heads * Math.Min(blockRows, tokens) * (long)tokens, dtype: float32);
        var scoresData = AttentionKernel.Data(buffer);
        var scale = (float)rule.Scale;
        var cap = (float?)rule.SoftCap;
        for (var b0 = queryStart / blockRows * blockRows; b0 < tokens; b0 += blockRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var blockScope = NewDisposeScope();
            var (r0, r1) = (Math.Max(b0, queryStart), Math.Min(tokens, b0 + blockRows));
            const int panel = AttentionKernel.KeyPanel;
            var c0 = rule.FirstKey(b0) / panel * panel;
            var c1 = Math.Min(tokens, (rule.EndKey(r1 - 1, tokens) + panel - 1) / panel * panel);
            int rows = r1 - r0, cols = c1 - c0;
            var runs = (rows + RunRows - 1) / RunRows;
            started = PhaseTimers.Start();
            KernelTeam.For(batch * heads * runs, index =>
            {
                long plane = index / runs, b = plane / heads, h = plane % heads, g = b * kvHeads + h / repeats;
                var runStart = (int)(index % runs) * RunRows;
                var count = Math.Min(RunRows, rows - runStart);
                var scores = scoresData + (plane * rows + runStart) * cols;
                var row = r0 - queryStart + runStart;                             // the run's first row of q's
                var firstQuery = plane * t + row;                                 // … in q and lse
                LinearKernel.MultiplyPacked(path, qData + firstQuery * d, d, keysPacked + (g * tokens + c0) * d, d, 0,
                    scores, cols, count, cols, (int)d);
                for (var r = 0; r < count; r++)
                {
                    var scoresRow = new Span<float>(scores + (long)r * cols, cols);
                    lseData[firstQuery + r] = SoftmaxRow(scoresRow, rule, scale, cap, r0 + runStart + r, c0, tokens);
                }
                LinearKernel.MultiplyPacked(path, scores, cols, valuesPacked + g * tokens * d, tokens, c0,
                    contextData + ((b * t + row) * heads + h) * d, heads * d, count, (int)d, cols);
            });
            PhaseTimers.Stop("attention.kernel", started);
            var p = buffer.narrow(0, 0, batch * heads * rows * cols).view(batch, heads, rows, cols);
            HandOutBlock(observer, probabilities, layer, r0, c0, queryStart, p);
        }
        HandOutLayer(observer, layer, q, k, logSumExp, rule);
        GC.KeepAlive(v);
        return context.transpose(1, 2).MoveToOuterDisposeScope();
    }

    /// <summary>A block's probabilities (B, H, rows, cols) to the observer (batch row 0) and into the full ones, if asked.</summary>
    private static void HandOutBlock(IAttentionObserver? observer, Tensor? probabilities, int layer, int r0, int c0, int queryStart, Tensor p)
    {
        var started = PhaseTimers.Start();
        observer?.Block(layer, r0, c0, p[0]);
        PhaseTimers.Stop("capture.block", started);
        probabilities?.narrow(2, r0 - queryStart, p.shape[2]).narrow(3, c0, p.shape[3]).copy_(p);
    }

    /// <summary>The layer's recomputable state (batch row 0) to the observer.</summary>
    private static void HandOutLayer(IAttentionObserver? observer, int layer, Tensor q, Tensor k, Tensor logSumExp, AttentionRule rule)
    {
        var started = PhaseTimers.Start();
        observer?.Layer(layer, q[0].contiguous(), k[0].contiguous(), logSumExp[0], rule);
        PhaseTimers.Stop("capture.layer", started);
    }

    /// <summary>Query rows per run on the kernel path: a multiple of the 8-row tile, small enough that a run's scores
    /// over thousands of keys stay in L2, enough runs per block for two threads.</summary>
    private const int RunRows = 16;

    /// <summary>
    /// In place: one row of unscaled q·k over keys from <paramref name="c0"/> becomes exp(rule's score − lse) on the
    /// keys the rule lets query <paramref name="position"/> see and 0 on the others; returns lse.
    /// </summary>
    private static float SoftmaxRow(Span<float> row, AttentionRule rule, float scale, float? cap, int position, int c0, int tokens)
    {
        // The visible keys [first, end) of this query; with causal or windowed rules the block's other keys are masked.
        var first = Math.Max(rule.FirstKey(position), c0) - c0;
        var end = Math.Min(rule.EndKey(position, tokens), c0 + row.Length) - c0;
        row[..first].Clear();
        row[end..].Clear();
        var visible = row[first..end];
        if (cap is { } c)
        {
            TensorPrimitives.Multiply(visible, scale, visible);
            SoftCapping.Apply(visible, c);
        }
        var (shift, sum) = FastExp.Softmax(visible, cap is null ? scale : 1f);
        return shift + MathF.Log(sum);
    }

    /// <summary>
    /// In place, each row of <paramref name="scores"/> (B, H, rows, cols; rows from <paramref name="r0"/>, keys from
    /// <paramref name="c0"/>, unscaled q·k) becomes exp(rule's score − lse) on the keys the rule lets it see and 0 on the
    /// others; returns lse (B, H, rows). One fused pass per row instead of libtorch's mask, logsumexp, subtract and exp
    /// over the whole block (each a pass through memory, and exp twice): measured 2.4× cheaper at 2,048 tokens.
    /// </summary>
    private static unsafe Tensor Softmax(Tensor scores, AttentionRule rule, int r0, int c0, int tokens)
    {
        long planes = scores.shape[0] * scores.shape[1];
        int rows = (int)scores.shape[2], cols = (int)scores.shape[3];
        var lse = empty(scores.shape[0], scores.shape[1], rows, dtype: float32);
        if (!scores.is_contiguous()) throw new ArgumentException("the scores must be contiguous", nameof(scores));
        var data = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(scores.bytes));
        var normalisers = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(lse.bytes));
        var scale = (float)rule.Scale;
        var cap = (float?)rule.SoftCap;
        Parallel.For(0L, planes * rows, index =>
        {
            var row = new Span<float>((float*)data + index * cols, cols);
            ((float*)normalisers)[index] = SoftmaxRow(row, rule, scale, cap, r0 + (int)(index % rows), c0, tokens);
        });
        return lse;
    }

    /// <summary>bool (B or 1, 1, rows, cols) of the visible keys of rows [r0, r1) over keys [c0, c1), or null when all are.</summary>
    private static Tensor? Visible(AttentionRule rule, int r0, int r1, int c0, int c1, Tensor? padding)
    {
        Tensor? visible = null;
        var blockIsFull = (!rule.Causal || c1 <= r0 + 1) && (rule.Window is not { } w || r1 - 1 - c0 < w);
        if (!blockIsFull)
        {
            var i = arange(r0, r1, dtype: int64).unsqueeze(1);                        // (rows, 1)
            var j = arange(c0, c1, dtype: int64).unsqueeze(0);                        // (1, cols)
            visible = rule.Causal ? j <= i : ones(r1 - r0, c1 - c0, dtype: @bool);
            if (rule.Window is { } window) visible = visible.logical_and(j > i - window);
            visible = visible.unsqueeze(0).unsqueeze(0);                              // (1, 1, rows, cols)
        }
        if (padding is not null)
        {
            var keys = padding.narrow(1, c0, c1 - c0).ne(0).unsqueeze(1).unsqueeze(1); // (B, 1, 1, cols)
            visible = visible is null ? keys : visible.logical_and(keys);
        }
        return visible;
    }
}
