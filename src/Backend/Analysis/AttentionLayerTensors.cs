using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// One layer of an <see cref="IAttentionSource"/> as a torch tensor, for the analyses that compute with torch (head
/// metrics, rollout, histograms). Kept apart so that the source interface needs no libtorch.
/// </summary>
public static class AttentionLayerTensors
{
    /// <summary>One layer's heads as a (H, n, n) float64 tensor (a copy; dispose it, or let a dispose scope).</summary>
    public static Tensor LayerTensor(this IAttentionSource attention, int layer)
    {
        using var single = attention.LayerTensor32(layer);
        return single.to(float64);
    }

    /// <summary>One layer's heads as a (H, n, n) float32 tensor (a copy).</summary>
    public static Tensor LayerTensor32(this IAttentionSource attention, int layer)
    {
        var (h, n) = (attention.Heads, attention.Tokens);
        var t = empty([h, n, n], float32);                                            // (H, n, n)
        attention.Layer(layer, MemoryMarshal.Cast<byte, float>(t.bytes));
        return t;
    }
}
