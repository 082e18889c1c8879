using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Tests.Support;
using AttentionViz.Backend.Tokenization;
using static AttentionViz.Backend.Tests.Analysis.AnalysisTestData;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// attention/sections: masses by section against values worked out by hand, against a direct sum over a fixture's
/// reference attention (llama-tiny, computed independently), and over JSON-RPC with the embedded model.
/// </summary>
[TestClass]
public sealed class SectionAttentionTests
{
    private const double Tolerance = 1e-7;                                        // the matrices hold float32

    // "<s>" (special, no characters), then "Hello"[0, 5) "world"[6, 11) "again"[12, 17).
    private static readonly List<Token> FourTokens =
        Spans(("<s>", 0, 0, true), ("Hello", 0, 5, false), ("world", 6, 11, false), ("again", 12, 17, false));

    private static readonly TextSection[] TwoSections = [new("greeting", 0, 6), new("rest", 6, 17)];

    [TestMethod]
    public void UniformAttentionByHand()
    {
        using var attention = Heads(4, Uniform(4));
        var r = SectionAttention.Compute(attention, FourTokens, TwoSections, null, 0, 0, excludeSpecial: false);
        Assert.AreEqual((3, 3, 1), (r.Query.FirstToken, r.Query.LastToken, r.Query.TokenCount), "the last token by default");
        Assert.AreEqual(("greeting", 1, 1, 1), (r.Sections[0].Name, r.Sections[0].FirstToken, r.Sections[0].LastToken, r.Sections[0].TokenCount));
        Assert.AreEqual((2, 3, 2), (r.Sections[1].FirstToken, r.Sections[1].LastToken, r.Sections[1].TokenCount));
        Assert.AreEqual(0.25, r.Sections[0].Mass, Tolerance);
        Assert.AreEqual(0.5, r.Sections[1].Mass, Tolerance);
        Assert.AreEqual(0.25, r.Sections[1].MassPerToken!.Value, Tolerance);
        Assert.AreEqual(0.25, r.Sink, Tolerance, "the BOS token is in no section");
        CollectionAssert.AreEqual(new[] { 0.25, 0.5 }, r.Matrix[0]);
        // Without special tokens each row is renormalised over the three others.
        var e = SectionAttention.Compute(attention, FourTokens, TwoSections, null, 0, 0, excludeSpecial: true);
        Assert.AreEqual(1 / 3.0, e.Sections[0].Mass, Tolerance);
        Assert.AreEqual(2 / 3.0, e.Sections[1].Mass, Tolerance);
        Assert.AreEqual(0.0, e.Sink, Tolerance);
    }

    [TestMethod]
    public void RowsAreQueriesAndColumnsKeys()
    {
        // Causal: row i uniform over keys 0..i. The query range holds tokens 2 and 3 ("world", "again").
        using var attention = Heads(4, CausalUniform);
        var r = SectionAttention.Compute(attention, FourTokens, TwoSections, (6, 17), 0, 0, excludeSpecial: false);
        Assert.AreEqual((2, 3, 2), (r.Query.FirstToken, r.Query.LastToken, r.Query.TokenCount));
        // greeting: (1/3 + 1/4) / 2; rest: (1/3 + 2/4) / 2; sink: (1/3 + 1/4) / 2.
        Assert.AreEqual((1 / 3.0 + 0.25) / 2, r.Sections[0].Mass, Tolerance);
        Assert.AreEqual((1 / 3.0 + 0.5) / 2, r.Sections[1].Mass, Tolerance);
        Assert.AreEqual((1 / 3.0 + 0.25) / 2, r.Sink, Tolerance);
        // From greeting (row 1: keys 0, 1 at 1/2) to greeting 1/2 and to rest 0; a column reading would give 0 and 7/12.
        CollectionAssert.AreEqual(new[] { 0.5, 0.0 }, r.Matrix[0]);
        Assert.AreEqual((1 / 3.0 + 0.25) / 2, r.Matrix[1][0], Tolerance);
        Assert.AreEqual((1 / 3.0 + 0.5) / 2, r.Matrix[1][1], Tolerance);
    }

    [TestMethod]
    public void TheMeanOverHeadsIsTheMeanOfTheHeadsMasses()
    {
        using var attention = Heads(4, Uniform(4), CausalUniform);
        double Mass(int head) => SectionAttention.Compute(attention, FourTokens, TwoSections, (6, 17), 0, head, false).Sections[1].Mass;
        Assert.AreEqual((Mass(0) + Mass(1)) / 2, Mass(-1), 1e-7);
    }

    [TestMethod]
    public void AgainstADirectSumOverTheFixtureReference()
    {
        // llama-tiny's reference attention (float64 HF modeling code), each token given one character of a made-up text.
        var expected = Fixtures.Expected("llama-tiny")["s0.attentions"];          // (L, H, n, n)
        var (layers, heads, n) = ((int)expected.shape[0], (int)expected.shape[1], (int)expected.shape[2]);
        var reference = expected.to(TorchSharp.torch.float64);
        using var attention = Build(layers, heads, n, (l, h, i, j) => reference[l, h, i, j].item<double>());
        var tokens = Enumerable.Range(0, n).Select(i => new Token(i, "t", i, i + 1, i == 0)).ToList();
        TextSection[] sections = [new("a", 1, n / 3), new("b", n / 3, 2 * n / 3), new("c", 2 * n / 3, n)];
        var query = (2 * n / 3, n);
        var r = SectionAttention.Compute(attention, tokens, sections, query, 1, 2, excludeSpecial: false);
        var rows = Enumerable.Range(query.Item1, n - query.Item1).ToArray();
        for (var s = 0; s < sections.Length; s++)
        {
            var keys = Enumerable.Range(sections[s].Start, sections[s].End - sections[s].Start);
            var direct = rows.Average(i => keys.Sum(j => reference[1, 2, i, j].item<double>()));
            Assert.AreEqual(direct, r.Sections[s].Mass, 1e-6, sections[s].Name);
        }
        Assert.AreEqual(rows.Average(i => reference[1, 2, i, 0].item<double>()), r.Sink, 1e-6, "token 0 is in no section");
        Assert.AreEqual(1.0, r.Sections.Sum(s => s.Mass) + r.Sink, 1e-5, "each row sums to 1");
    }

    [TestMethod]
    public void BadSectionsAreRefusedInWords()
    {
        using var attention = Heads(4, Uniform(4));
        var overlap = Assert.ThrowsExactly<InvalidRequestException>(() =>
            SectionAttention.Compute(attention, FourTokens, [new("a", 0, 7), new("b", 6, 17)], null, 0, 0, false));
        StringAssert.Contains(overlap.Message, "Sections 'a' and 'b' overlap");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidRequestException>(() =>
            SectionAttention.Compute(attention, FourTokens, [new("a", 5, 2)], null, 0, 0, false)).Message, "give 0 ≤ start ≤ end");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidRequestException>(() =>
            SectionAttention.Compute(attention, FourTokens, TwoSections, (30, 40), 0, 0, false)).Message, "holds no token");
        var many = Enumerable.Range(0, SectionAttention.MaxSections + 1).Select(i => new TextSection($"s{i}", i, i + 1)).ToArray();
        StringAssert.Contains(Assert.ThrowsExactly<InvalidRequestException>(() =>
            SectionAttention.Compute(attention, FourTokens, many, null, 0, 0, false)).Message, "too many");
        var empty = SectionAttention.Compute(attention, FourTokens, [new("nothing", 5, 6), new("rest", 6, 17)], null, 0, 0, false);
        Assert.AreEqual((-1, 0, 0.0), (empty.Sections[0].FirstToken, empty.Sections[0].TokenCount, empty.Sections[0].Mass));
        Assert.IsNull(empty.Sections[0].MassPerToken);
    }

    [TestMethod]
    public async Task OverJsonRpcWithTheEmbeddedModel()
    {
        using var backend = new InMemoryBackend();
        const string text = "You are a careful assistant. Here is the context. What is the answer?";
        var analysis = await backend.Call("attention/analyze", new { text });
        var id = analysis.GetProperty("analysisId").GetString();
        var sections = new[] { new { name = "system", start = 0, end = 28 }, new { name = "context", start = 29, end = 49 },
            new { name = "question", start = 50, end = text.Length } };
        var r = await backend.Call("attention/sections", new { analysisId = id, sections });
        var masses = r.GetProperty("sections").EnumerateArray().Select(s => s.GetProperty("mass").GetDouble()).ToArray();
        Assert.HasCount(3, masses);
        Assert.AreEqual(1.0, masses.Sum() + r.GetProperty("sink").GetDouble(), 1e-5, "the last token's row sums to 1");
        Assert.AreEqual((-1, -1), (r.GetProperty("layer").GetInt32(), r.GetProperty("head").GetInt32()), "the mean by default");
        Assert.AreEqual(JsonValueKind.Array, r.GetProperty("matrix")[2].ValueKind);
        Assert.AreEqual(-32602, await backend.ErrorCode("attention/sections", new { analysisId = id }), "sections missing");
        Assert.AreEqual(-32602, await backend.ErrorCode("attention/sections",
            new { analysisId = id, sections = new[] { new { name = "a", start = 0, end = 10 }, new { name = "b", start = 5, end = 20 } } }));
        Assert.AreEqual(-32602, await backend.ErrorCode("attention/sections", new { analysisId = id, sections, layer = 6 }));
    }
}
