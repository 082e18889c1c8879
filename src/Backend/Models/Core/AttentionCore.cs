using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Models.Core;

/// <summary>
/// Scaled dot-product attention that keeps its probabilities. Fused kernels never materialise them, so every
/// architecture computes softmax(QKᵀ/√d + mask) here, explicitly and in float32.
/// </summary>
public static class AttentionCore
{
    /// <param name="q">(B, H, T, D)</param>
    /// <param name="k">(B, H, S, D)</param>
    /// <param name="v">(B, H, S, D)</param>
    /// <param name="additiveMask">broadcastable to (B, H, T, S): 0 where allowed, a large negative value where masked; or null</param>
    /// <returns>context (B, H, T, D) and probabilities (B, H, T, S)</returns>
    public static (Tensor Context, Tensor Probabilities) Attend(Tensor q, Tensor k, Tensor v, Tensor? additiveMask)
    {
        var scale = 1.0 / Math.Sqrt(q.shape[^1]);
        using var rawScores = q.matmul(k.transpose(-2, -1));                      // (B, H, T, S)
        using var scores = additiveMask is null ? rawScores.mul(scale) : rawScores.mul(scale).add_(additiveMask);
        var probabilities = scores.softmax(-1);                                    // (B, H, T, S)
        var context = probabilities.matmul(v);                                     // (B, H, T, D)
        return (context, probabilities);
    }

    /// <summary>Padding mask (B, S) of 1 = keep, 0 = pad → additive (B, 1, 1, S), as Hugging Face builds it.</summary>
    public static Tensor PaddingToAdditive(Tensor attentionMask) =>
        (1 - attentionMask.to(float32)).mul(float.MinValue).unsqueeze(1).unsqueeze(1);
}
