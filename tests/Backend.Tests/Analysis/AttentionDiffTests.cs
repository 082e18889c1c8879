using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Tests.Support;
using AttentionViz.Backend.Tokenization;
using static AttentionViz.Backend.Tests.Analysis.AnalysisTestData;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>attention/diff: the token alignment, change scores worked out by hand, identical texts at 0, and over JSON-RPC.</summary>
[TestClass]
public sealed class AttentionDiffTests
{
    private static List<Token> Ids(params int[] ids) => ids.Select((id, i) => new Token(id, $"t{id}", i, i + 1, false)).ToList();

    private static string Pairs(int[][] alignment) => string.Join(" ", alignment.Select(p => $"{p[0]}-{p[1]}"));

    [TestMethod]
    public void AlignmentKeepsTheCommonTokensInOrder()
    {
        Assert.AreEqual("0-0 1-1 3-3 4-4", Pairs(AttentionDiff.Align(Ids(1, 2, 3, 4, 5), Ids(1, 2, 9, 4, 5))), "a replaced word");
        Assert.AreEqual("0-0 1-3 2-4", Pairs(AttentionDiff.Align(Ids(1, 2, 3), Ids(1, 7, 8, 2, 3))), "an insertion");
        Assert.AreEqual("0-0 2-1", Pairs(AttentionDiff.Align(Ids(1, 5, 3), Ids(1, 3))), "a deletion");
        Assert.AreEqual("0-0 1-2 3-3", Pairs(AttentionDiff.Align(Ids(4, 5, 6, 7), Ids(4, 9, 5, 7))), "both");
        Assert.AreEqual("", Pairs(AttentionDiff.Align(Ids(1, 2), Ids(3, 4))));
    }

    [TestMethod]
    public void IdenticalAnalysesScoreZero()
    {
        using var a = Heads(4, Uniform(4), CausalUniform);
        using var b = Heads(4, Uniform(4), CausalUniform);
        var r = AttentionDiff.Compute(a, Ids(1, 2, 3, 4), b, Ids(1, 2, 3, 4));
        Assert.AreEqual("0-0 1-1 2-2 3-3", Pairs(r.Alignment));
        Assert.IsTrue(r.Heads.All(h => h.Score == 0), string.Join(", ", r.Heads.Select(h => h.Score)));
    }

    [TestMethod]
    public void AOneWordEditByHand()
    {
        // Token 1 replaced: rows 0 and 2 are aligned, and so are keys 0 and 2. Row 2 restricted to them and renormalised:
        // A (0.5, 0.25)/0.75 = (2/3, 1/3), B (0.25, 0.25)/0.5 = (1/2, 1/2): TV 1/6. Row 0 is the same: the score is 1/12.
        double[][] rowsA = [[1, 0, 0], [0.5, 0.5, 0], [0.5, 0.25, 0.25]];
        double[][] rowsB = [[1, 0, 0], [0.2, 0.8, 0], [0.25, 0.5, 0.25]];
        using var a = Heads(3, (i, j) => rowsA[i][j], (i, j) => rowsA[i][j]);
        using var b = Heads(3, (i, j) => rowsB[i][j], (i, j) => rowsA[i][j]);
        var r = AttentionDiff.Compute(a, Ids(1, 2, 3), b, Ids(1, 9, 3));
        Assert.AreEqual("0-0 2-2", Pairs(r.Alignment));
        Assert.AreEqual(1 / 12.0, r.Heads[0].Score, 1e-7, "without renormalising it would be 1/16");
        Assert.AreEqual(0.0, r.Heads[1].Score, "head 1 is the same in both");
        Assert.AreEqual((0, 1), (r.Heads[1].Layer, r.Heads[1].Head));
    }

    [TestMethod]
    public void DifferentModelShapesAreRefused()
    {
        using var a = Heads(2, Uniform(2));
        using var b = Heads(2, Uniform(2), Uniform(2));
        var e = Assert.ThrowsExactly<InvalidRequestException>(() => AttentionDiff.Compute(a, Ids(1, 2), b, Ids(1, 2)));
        StringAssert.Contains(e.Message, "models of different shapes");
    }

    [TestMethod]
    public async Task OverJsonRpcWithTheEmbeddedModel()
    {
        using var backend = new InMemoryBackend();
        async Task<string> Analyze(string text) => (await backend.Call("attention/analyze", new { text })).GetProperty("analysisId").GetString()!;
        var before = await Analyze("The system prompt asks for short answers about the weather.");
        var after = await Analyze("The system prompt asks for long answers about the weather.");
        var same = await Analyze("The system prompt asks for short answers about the weather.");
        var diff = await backend.Call("attention/diff", new { analysisIdA = before, analysisIdB = after });
        var alignment = diff.GetProperty("alignment").EnumerateArray().Select(p => (p[0].GetInt32(), p[1].GetInt32())).ToList();
        var heads = diff.GetProperty("heads").EnumerateArray().Select(h => h.GetProperty("score").GetDouble()).ToList();
        Assert.HasCount(6 * 12, heads);
        Assert.IsTrue(heads.All(s => s is >= 0 and <= 1));
        Assert.IsTrue(heads.Any(s => s > 1e-4), "an edited word changes some head");
        Assert.IsFalse(alignment.Any(p => p.Item1 == 6), "the edited token (\"short\", token 6 after [CLS]) is not aligned");
        var identical = await backend.Call("attention/diff", new { analysisIdA = before, analysisIdB = same });
        Assert.IsTrue(identical.GetProperty("heads").EnumerateArray().All(h => h.GetProperty("score").GetDouble() == 0));
        Assert.AreEqual(-32602, await backend.ErrorCode("attention/diff", new { analysisIdA = before }));
        Assert.AreEqual(-32602, await backend.ErrorCode("attention/diff", new { analysisIdA = before, analysisIdB = "a999" }), "an unknown analysis");
    }
}
