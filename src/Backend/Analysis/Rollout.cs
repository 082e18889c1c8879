using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// Attention rollout (Abnar &amp; Zuidema 2020; flow is in AttentionFlow.cs) on the residual-adjusted layer matrices
/// Âˡ = rownorm(0.5·Āˡ + 0.5·I), Āˡ = mean over heads of layer l (1-based here, as in anchors.md).
/// </summary>
public static class Rollout
{
    /// <summary>Âˡ for layers 1 … <paramref name="layers"/>: (layers, n, n) float64.</summary>
    public static Tensor ResidualAdjusted(IAttentionSource attention, int layers)
    {
        var n = attention.Tokens;
        using var scope = NewDisposeScope();
        var identity = eye(n, dtype: float64);
        var result = new List<Tensor>(layers);
        for (var l = 0; l < layers; l++)
        {
            var mean = attention.LayerTensor(l).mean([0]);               // (n, n)
            var adjusted = mean * 0.5 + identity * 0.5;
            result.Add(adjusted / adjusted.sum(-1, keepdim: true));
        }
        return stack(result, 0).MoveToOuterDisposeScope();                           // (L, n, n)
    }

    /// <summary>
    /// R¹ = Â¹, Rˡ = Âˡ · R^{l−1}, up to layer <paramref name="layer"/> (0-based: 0 is the first layer): row i is how
    /// much token i's representation after that layer draws on each input token. n×n float32, row-major.
    /// </summary>
    public static float[] Compute(IAttentionSource attention, int layer)
    {
        using var scope = NewDisposeScope();
        var adjusted = ResidualAdjusted(attention, layer + 1);                        // (l+1, n, n)
        var rollout = adjusted[0];
        for (var l = 1; l <= layer; l++) rollout = adjusted[l].matmul(rollout);
        return rollout.to(float32).contiguous().data<float>().ToArray();
    }
}
