using System.Text.Json.Nodes;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tests.Support;
using static AttentionViz.Backend.Tests.Models.ModelTestSupport;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>
/// Phi-3's longrope (HF's _compute_longrope_parameters): inverse frequencies 1 / (ext_i · base^(2i/dim)) with ext the
/// short factors for inputs up to original_max_position_embeddings and the long ones beyond, and cos/sin multiplied by
/// the attention factor √(1 + ln(max/original) / ln original) (or rope_scaling's attention_factor). The expected tables
/// are computed here from the formula in double; the forward's switch is checked against the phi3-tiny fixture.
/// </summary>
[TestClass]
public sealed class LongRopeTests
{
    private const int Dim = 12, Original = 32, Max = 128;
    private const double Theta = 10_000;
    private static readonly double[] Short = [1.0, 1.05, 1.2, 1.5, 2.0, 3.0];
    private static readonly double[] Long = [1.0, 1.3, 2.5, 4.0, 8.0, 16.0];

    [TestInitialize]
    public void Init() => TorchSetup.EnsureInitialized();

    private static RopeScaling LongRope(double? attentionFactor = null, double? factor = null, int? original = null) => new()
    {
        LegacyType = "longrope", ShortFactor = Short, LongFactor = Long, AttentionFactor = attentionFactor, Factor = factor,
        OriginalMaxPositionEmbeddings = original,
    };

    /// <summary>cos and sin (T, Dim) straight from the formula, in double.</summary>
    private static (double[,] Cos, double[,] Sin) Formula(int tokens, double[] ext, double attention)
    {
        var (cos, sin) = (new double[tokens, Dim], new double[tokens, Dim]);
        for (var t = 0; t < tokens; t++)
            for (var i = 0; i < Dim / 2; i++)
            {
                var angle = t / (ext[i] * Math.Pow(Theta, 2.0 * i / Dim));
                cos[t, i] = cos[t, i + Dim / 2] = Math.Cos(angle) * attention;
                sin[t, i] = sin[t, i + Dim / 2] = Math.Sin(angle) * attention;
            }
        return (cos, sin);
    }

    private static double MaxDiff(double[,] expected, Tensor actual)
    {
        var values = actual[0].to(float64).data<double>().ToArray();
        var worst = 0.0;
        for (var t = 0; t < expected.GetLength(0); t++)
            for (var j = 0; j < Dim; j++) worst = Math.Max(worst, Math.Abs(expected[t, j] - values[t * Dim + j]));
        return worst;
    }

    [TestMethod]
    [DataRow(1, DisplayName = "1 token: short")]
    [DataRow(31, DisplayName = "31 tokens: short")]
    [DataRow(32, DisplayName = "32 tokens = original: still short")]
    [DataRow(33, DisplayName = "33 tokens: long")]
    [DataRow(128, DisplayName = "128 tokens = max: long")]
    public void TablesFollowTheFormulaOnBothSidesOfTheOriginalWindow(int tokens)
    {
        // Phi-3's layout: original_max_position_embeddings beside rope_scaling, so the factor is max / original = 4.
        var rotary = new RotaryEmbedding(Dim, Theta, LongRope(), Max, originalMaxPositions: Original);
        var attention = Math.Sqrt(1 + Math.Log((double)Max / Original) / Math.Log(Original));
        Assert.AreEqual(attention, rotary.AttentionScaling, 1e-12);
        var (cos, sin) = rotary.CosSin(arange(tokens, dtype: int64).unsqueeze(0));
        var (expectedCos, expectedSin) = Formula(tokens, tokens > Original ? Long : Short, attention);
        // float32 tables (as HF's): angles up to 128 rad round to ~1e-5.
        Assert.IsLessThanOrEqualTo(5e-5, MaxDiff(expectedCos, cos), "cos");
        Assert.IsLessThanOrEqualTo(5e-5, MaxDiff(expectedSin, sin), "sin");
        if (tokens > 1)
        {
            var (otherCos, _) = Formula(tokens, tokens > Original ? Short : Long, attention);
            Assert.IsGreaterThan(1e-2, MaxDiff(otherCos, cos), "the other factor set gives other tables");
        }
    }

    [TestMethod]
    public void AttentionFactorFromRopeScalingsFactorOrGivenOutright()
    {
        // Without the top-level original: rope_scaling's factor and original_max_position_embeddings (HF's other branch).
        var fromFactor = new RotaryEmbedding(Dim, Theta, LongRope(factor: 8, original: Original), Max);
        Assert.AreEqual(Math.Sqrt(1 + Math.Log(8) / Math.Log(Original)), fromFactor.AttentionScaling, 1e-12);
        var (cos, _) = fromFactor.CosSin(arange(40, dtype: int64).unsqueeze(0));
        Assert.IsLessThanOrEqualTo(5e-5, MaxDiff(Formula(40, Long, fromFactor.AttentionScaling).Cos, cos), "40 > 32: long");
        // attention_factor given: taken as it is; a factor ≤ 1 gives 1.
        var given = new RotaryEmbedding(Dim, Theta, LongRope(attentionFactor: 1.25), Max, originalMaxPositions: Original);
        Assert.AreEqual(1.25, given.AttentionScaling);
        (cos, _) = given.CosSin(arange(20, dtype: int64).unsqueeze(0));
        Assert.IsLessThanOrEqualTo(5e-5, MaxDiff(Formula(20, Short, 1.25).Cos, cos));
        Assert.AreEqual(1.0, new RotaryEmbedding(Dim, Theta, LongRope(), Original, originalMaxPositions: Original).AttentionScaling);
    }

    /// <summary>phi3-tiny with longrope and original 32: one factor set is all ones (plain RoPE, the fixture's), the other not.</summary>
    private static string Phi3WithLongRope(double shortFactor, double longFactor)
    {
        var weights = Weights("phi3-tiny").Select(w => (w.Key, w.Value));
        return Folder("longrope", "phi3-tiny", config =>
        {
            config["original_max_position_embeddings"] = Original;
            config["rope_scaling"] = new JsonObject
            {
                ["type"] = "longrope", ["attention_factor"] = 1.0,
                ["short_factor"] = new JsonArray([.. Enumerable.Range(0, 6).Select(_ => (JsonNode?)shortFactor)]),
                ["long_factor"] = new JsonArray([.. Enumerable.Range(0, 6).Select(_ => (JsonNode?)longFactor)]),
            };
        }, weights);
    }

    private static float AttentionError(string folder, string sequence)
    {
        var expected = Fixtures.Expected("phi3-tiny");
        using var loaded = ModelFolder.Load(folder, null);
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected[$"{sequence}.input_ids"])]));
        return ModelTestSupport.MaxDiff(expected[$"{sequence}.attentions"], Attentions(result));
    }

    [TestMethod]
    public void TheForwardSwitchesFromShortToLongFactorsBeyondTheOriginalWindow()
    {
        // s0 has 16 ids (≤ 32: short factors), s1 50 (> 32: long factors). Ones reproduce the fixture's plain RoPE.
        var shortIsPlain = Phi3WithLongRope(shortFactor: 1.0, longFactor: 4.0);
        Assert.IsLessThanOrEqualTo(1e-4f, AttentionError(shortIsPlain, "s0"), "16 ids use the short factors (ones)");
        Assert.IsGreaterThan(1e-3f, AttentionError(shortIsPlain, "s1"), "50 ids use the long factors (fours)");
        var longIsPlain = Phi3WithLongRope(shortFactor: 4.0, longFactor: 1.0);
        Assert.IsGreaterThan(1e-3f, AttentionError(longIsPlain, "s0"), "16 ids use the short factors (fours)");
        Assert.IsLessThanOrEqualTo(1e-4f, AttentionError(longIsPlain, "s1"), "50 ids use the long factors (ones)");
    }

    [TestMethod]
    public async Task APrefixIsNotReusedAcrossTheOriginalWindow()
    {
        // Keys of a 100-token forward (short factors, original 128) are not those of a 140-token one (long factors).
        var folder = Folder("longrope-reuse", "phi3-tiny", config =>
        {
            config["original_max_position_embeddings"] = 128;
            config["rope_scaling"] = new JsonObject
            {
                ["type"] = "longrope",
                ["short_factor"] = new JsonArray([.. Short.Select(f => (JsonNode?)f)]),
                ["long_factor"] = new JsonArray([.. Long.Select(f => (JsonNode?)f)]),
            };
        }, Weights("phi3-tiny").Select(w => (w.Key, w.Value)));
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var service = new AttentionService(registry, new AnalysisCache(1L << 30), thread) { KeepProbabilitiesBytes = 0 };
        var ids = Enumerable.Range(0, 200).Select(i => (long)(i * 37 % 400)).ToArray();
        var first = await service.AnalyzeIdsAsync(ids[..100], folder, CancellationToken.None);
        var across = await service.AnalyzeIdsAsync(ids[..140], folder, CancellationToken.None);
        Assert.AreEqual((0, 0), (first.ReusedTokens, across.ReusedTokens), "100 → 140 tokens crosses 128: run in full");
        var beyond = await service.AnalyzeIdsAsync(ids, folder, CancellationToken.None);
        Assert.AreEqual(128, beyond.ReusedTokens, "140 → 200 tokens, both beyond 128: the prefix is reused");
        var fresh = await new AttentionService(registry, new AnalysisCache(1L << 30), thread) { KeepProbabilitiesBytes = 0 }
            .AnalyzeIdsAsync(ids, folder, CancellationToken.None);
        for (var l = 0; l < 2; l++)
            for (var h = 0; h < 4; h++)
            {
                var (a, b) = (fresh.Attention.Head(l, h), beyond.Attention.Head(l, h));
                Assert.IsLessThanOrEqualTo(1e-5f, a.Zip(b, (x, y) => Math.Abs(x - y)).Max(), $"L{l} H{h}: reused equals fresh");
            }
    }
}
