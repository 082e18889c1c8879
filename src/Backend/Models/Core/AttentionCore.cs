using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Models.Core;

/// <summary>
/// Scaled dot-product attention that keeps its probabilities. Fused kernels never materialise them, so every
/// architecture computes softmax(QKᵀ·scale, masked) here, explicitly and in float32.
/// </summary>
public static class AttentionCore
{
    /// <param name="q">(B, H, T, D)</param>
    /// <param name="k">(B, H, S, D)</param>
    /// <param name="v">(B, H, S, D)</param>
    /// <param name="allowed">bool, broadcastable to (B, H, T, S): true where a query may see a key; null = all</param>
    /// <param name="scale">defaults to 1/√D</param>
    /// <returns>context (B, H, T, D) and probabilities (B, H, T, S); masked entries are exactly 0</returns>
    public static (Tensor Context, Tensor Probabilities) Attend(Tensor q, Tensor k, Tensor v, Tensor? allowed, double? scale = null)
    {
        // Every call takes its layer's slot of the arena, whichever path runs, so layer i always lands in slot i.
        var (destination, slot) = NextDestination(q.shape[0], q.shape[1], q.shape[2], k.shape[2]);
        // The kernel's shapes: k and v alike, with q's batch, heads and head size; a mask over keys or (query, key).
        var kernelRuns = AttentionKernel.Runs && q.numel() > 0 && k.numel() > 0 && v.shape.SequenceEqual(k.shape)
            && k.shape[0] == q.shape[0] && k.shape[1] == q.shape[1] && k.shape[3] == q.shape[3]
            && (allowed is null || allowed.dtype == ScalarType.Bool && allowed.Dimensions == 4 && allowed.shape[1] == 1);
        if (kernelRuns)
        {
            var (kernelContext, kernelProbabilities, finite) =
                AttentionKernel.Attend(q, k, v, allowed, scale ?? 1.0 / Math.Sqrt(q.shape[^1]), destination);
            if (finite && destination is not null) _arena!.Finite[slot] = true;
            return (kernelContext, kernelProbabilities);
        }
        var (context, probabilities) = AttendInTorch(q, k, v, allowed, scale);
        if (destination is null) return (context, probabilities);
        destination.copy_(probabilities);
        probabilities.Dispose();
        return (context, destination);
    }

    private static (Tensor Context, Tensor Probabilities) AttendInTorch(Tensor q, Tensor k, Tensor v, Tensor? allowed, double? scale)
    {
        using var scope = NewDisposeScope();
        var scores = q.to(float32).matmul(k.to(float32).transpose(-2, -1)).mul_(scale ?? 1.0 / Math.Sqrt(q.shape[^1]));  // (B, H, T, S)
        Tensor probabilities;
        if (allowed is null)
            probabilities = scores.softmax(-1);
        else
        {
            var blocked = allowed.logical_not();
            // Masked keys get float.MinValue (as HF's additive masks); the explicit zero afterwards also covers a
            // query that sees no key at all (it then attends to nothing instead of uniformly to masked keys).
            probabilities = scores.masked_fill_(blocked, float.MinValue).softmax(-1).masked_fill_(blocked, 0f);
        }
        var context = probabilities.matmul(v.to(float32));                          // (B, H, T, D)
        return (context.MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope());
    }

    [ThreadStatic] private static ProbabilityArena? _arena;

    /// <summary>
    /// Until disposed, the attention of this thread's forward writes layer i's probabilities straight into
    /// <paramref name="buffer"/> at i·<paramref name="layerFloats"/> (the stored analysis's array) instead of a new tensor
    /// that the caller then copies: at 512 tokens a copy of 75 MB and the page faults of six 12.6 MB tensors. The i-th
    /// call of <see cref="Attend"/> is layer i; the caller still copies any layer whose tensor does not share the buffer
    /// (<see cref="WritesInto"/>: a shape that is not the slot's).
    /// </summary>
    public static ProbabilityArena WriteProbabilitiesInto(float[] buffer, int layers, long layerFloats) =>
        _arena = new ProbabilityArena(buffer, layers, layerFloats);

    /// <summary>Whether <paramref name="probabilities"/> is the view of <paramref name="destination"/>'s memory.</summary>
    public static unsafe bool WritesInto(Tensor probabilities, Span<float> destination)
    {
        if (!probabilities.is_contiguous() || probabilities.numel() != destination.Length || destination.IsEmpty) return false;
        fixed (float* target = destination) return AttentionKernel.Data(probabilities) == target;
    }

    /// <summary>The next layer's slot of the arena as a (1, H, T, S) tensor over its memory, or null (no arena, a
    /// shape that is not the slot's, or more calls than layers); the slot is taken either way.</summary>
    private static (Tensor? Destination, int Slot) NextDestination(long b, long h, long t, long s)
    {
        if (_arena is not { } arena || arena.Next >= arena.Layers) return (null, -1);
        var slot = arena.Next++;
        if (b != 1 || h * t * s != arena.LayerFloats) return (null, slot);
        return (frombuffer(arena.Buffer, float32, arena.LayerFloats, slot * arena.LayerFloats).view(b, h, t, s), slot);
    }

    /// <summary>A forward's probabilities in one array, layer by layer (<see cref="WriteProbabilitiesInto"/>).</summary>
    public sealed class ProbabilityArena(float[] buffer, int layers, long layerFloats) : IDisposable
    {
        public float[] Buffer { get; } = buffer;
        public int Layers { get; } = layers;
        public long LayerFloats { get; } = layerFloats;
        internal int Next { get; set; }

        /// <summary>Layers whose slot the attention kernel filled and found finite, row by row.</summary>
        public bool[] Finite { get; } = new bool[layers];

        public void Dispose()
        {
            if (_arena == this) _arena = null;
        }
    }

    /// <summary>Grouped-query attention: (B, KV, S, D) → (B, KV·repeats, S, D), so that query head h uses kv head h / repeats.</summary>
    public static Tensor RepeatKeyValueHeads(Tensor kv, int repeats)
    {
        if (repeats == 1) return kv.alias();
        long b = kv.shape[0], heads = kv.shape[1], s = kv.shape[2], d = kv.shape[3];
        return kv.unsqueeze(2).expand(b, heads, repeats, s, d).reshape(b, heads * repeats, s, d);
    }
}

/// <summary>Which keys each query may see: causal, sliding window, padding. Built once per forward as a bool mask.</summary>
public static class AttentionMasks
{
    /// <param name="queries">T</param>
    /// <param name="causal">key j is visible from query i only if j ≤ i</param>
    /// <param name="slidingWindow">if set (causal models), also only if i − j &lt; window, as HF's sliding_window_overlay</param>
    /// <param name="padding">(B, S) 1 = token, 0 = padding (HF attention_mask), or null</param>
    /// <returns>bool (B or 1, 1, T, S), or null when everything is visible</returns>
    public static Tensor? Build(long queries, bool causal, int? slidingWindow, Tensor? padding)
    {
        using var scope = NewDisposeScope();
        Tensor? allowed = null;
        if (causal || slidingWindow is not null)
        {
            var i = arange(queries, dtype: int64).unsqueeze(1);                     // (T, 1)
            var j = arange(queries, dtype: int64).unsqueeze(0);                     // (1, S)
            allowed = causal ? j <= i : ones(queries, queries, dtype: @bool);
            if (slidingWindow is { } window) allowed = allowed.logical_and(j > i - window);
            allowed = allowed.unsqueeze(0).unsqueeze(0);                            // (1, 1, T, S)
        }
        if (padding is not null)
        {
            var keys = padding.ne(0).unsqueeze(1).unsqueeze(1);                     // (B, 1, 1, S)
            allowed = allowed is null ? keys : allowed.logical_and(keys);           // (B, 1, T, S)
        }
        return allowed?.MoveToOuterDisposeScope();
    }
}
