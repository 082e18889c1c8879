using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Tests.Models;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// Issue #12 point 9: a NaN weight loaded silently, and then metrics, rows, flow and histograms failed with "An error
/// occured during serialization". The analysis now says the model produced NaN/Inf and from which layer, for stored and
/// recomputed attention alike, and keeps nothing.
/// </summary>
[TestClass]
public sealed class NonFiniteModelTests
{
    private static string Poisoned(string fixture, string tensor, float value)
    {
        var weights = ModelTestSupport.Weights(fixture);
        using (no_grad()) weights[tensor].view(-1)[3] = value;
        return ModelTestSupport.Folder("nan", fixture, null, weights.Select(w => (w.Key, w.Value)));
    }

    [TestMethod]
    [DataRow("llama-tiny", "model.layers.1.self_attn.q_proj.weight", float.NaN, 1, 0L)]
    [DataRow("llama-tiny", "model.layers.1.self_attn.q_proj.weight", float.NaN, 1, 1L << 30)]
    [DataRow("llama-tiny", "model.layers.0.self_attn.k_proj.weight", float.PositiveInfinity, 0, 0L)]
    [DataRow("llama-tiny", "model.layers.0.self_attn.k_proj.weight", float.PositiveInfinity, 0, 1L << 30)]
    // An encoder's attention runs on the kernel, which checks each row as it writes it (the stored path then reads no
    // layer it found finite): layer 0 spoilt must be named, not the last layer from the hidden state.
    [DataRow("bert-tiny", "encoder.layer.0.attention.self.key.weight", float.NaN, 0, 1L << 30)]
    [DataRow("bert-tiny", "encoder.layer.1.attention.self.query.weight", float.PositiveInfinity, 1, 1L << 30)]
    public async Task ANonFiniteWeightIsNamedByTheFirstLayerItSpoils(string fixture, string tensor, float value, int layer, long keep)
    {
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var cache = new AnalysisCache(1L << 30);
        var service = new AttentionService(registry, cache, thread) { KeepProbabilitiesBytes = keep };
        var folder = Poisoned(fixture, tensor, value);
        var e = await Assert.ThrowsExactlyAsync<ModelFormatException>(() =>
            service.AnalyzeIdsAsync([1, 5, 9, 14, 3, 7, 2, 11], folder, CancellationToken.None));
        StringAssert.Contains(e.Message, $"the model produced NaN or infinite values from layer {layer} on");
        StringAssert.Contains(e.Message, folder);
        Assert.AreEqual(0, cache.Count, "nothing kept");
        // The same model unpoisoned analyses as usual.
        var clean = ModelTestSupport.Folder("clean", fixture, null, ModelTestSupport.Weights(fixture).Select(w => (w.Key, w.Value)));
        var ok = await service.AnalyzeIdsAsync([1, 5, 9, 14, 3, 7, 2, 11], clean, CancellationToken.None);
        Assert.AreEqual(8, ok.Tokens.Count);
    }
}
