using System.Text.Json.Nodes;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// An analysis whose probabilities would not fit the budget is refused before anything is allocated, with the sizes
/// and the way out (-32004, CLI exit 2), never an unhandled exception or a native abort.
/// </summary>
[TestClass]
public sealed class AttentionBudgetTests
{
    [TestMethod]
    public void SmolLm2ShapeAt1024TokensIsRefusedWithTheNumbers()
    {
        // 30 layers × 9 heads × 1024² × 4 bytes = 1,132,462,080 bytes = 1080 MB, over the 1024 MB budget.
        var e = Assert.ThrowsExactly<MemoryBudgetException>(() => AttentionTensor.EnsureFits(30, 9, 1024));
        Assert.AreEqual(30L * 9 * 1024 * 1024 * 4, e.NeededBytes);
        Assert.AreEqual(AppErrorCode.MemoryBudgetExceeded, e.Code);
        StringAssert.Contains(e.Message, "needs 1080 MB");
        StringAssert.Contains(e.Message, "the budget is 1024 MB");
        StringAssert.Contains(e.Message, "at most 997 tokens");
        AttentionTensor.EnsureFits(30, 9, 997); // the advice holds: 997 tokens fit
        Assert.ThrowsExactly<MemoryBudgetException>(() => AttentionTensor.EnsureFits(30, 9, 998));
    }

    [TestMethod]
    [DataRow(46_341)] // n² > int.MaxValue: the old int32 guard overflowed and let the allocation through
    [DataRow(65_536)]
    [DataRow(int.MaxValue)]
    public void SizesPastInt32AreRefusedNotOverflowed(int tokens)
    {
        var e = Assert.ThrowsExactly<MemoryBudgetException>(() => new AttentionTensor(30, 9, tokens));
        var expected = 30.0 * 9 * tokens * tokens * 4;
        Assert.AreEqual(expected >= long.MaxValue ? long.MaxValue : (long)expected, e.NeededBytes);
    }

    [TestMethod]
    public void TheOneMappingGivesMinus32004AndExitCode2()
    {
        var failure = ErrorMapping.Describe(new MemoryBudgetException(2L << 30, 1L << 30, "analyze fewer tokens"));
        Assert.AreEqual(-32004, (int)failure.Code);
        Assert.AreEqual(2, ErrorMapping.ExitCode(failure.Code));
        StringAssert.StartsWith(failure.Message, "This analysis needs 2048 MB; the budget is 1024 MB: analyze fewer tokens.");
    }

    /// <summary>llama-tiny (2 layers × 4 heads) with a window of 60,000, in a temporary folder.</summary>
    private static string LongWindowLlama()
    {
        var folder = Directory.CreateTempSubdirectory("avz-budget").FullName;
        foreach (var file in Directory.GetFiles(Fixtures.Folder("llama-tiny")))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        config["max_position_embeddings"] = 60_000;
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        return folder;
    }

    private static string Ids(int count) => string.Join(',', Enumerable.Range(0, count).Select(i => 3 + i % 900));

    [TestMethod]
    public void SixThousandTokensThatOnceExceededTheAttentionCapNowRun()
    {
        // 8 × 6000² × 4 bytes = 1099 MB of probabilities: refused before attention became recomputable.
        var (code, stdout, stderr) = BackendCli.Run("analyze", "--model", LongWindowLlama(), "--ids", Ids(6000));
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "tokens     6000, analyzed in");
        StringAssert.Contains(stdout, "mean entropy");
    }

    [TestMethod]
    public void MoreThan32768TokensAreRefusedWhateverTheWindowSo46341NeverWrapsAnInt()
    {
        // A window of 60,000 allowed 46,341 tokens, whose n² wraps int32 (the SIGABRT of issue #12); refused up front.
        var folder = LongWindowLlama();
        // Single-digit ids: 46,341 of them fit one command-line argument (128 KB).
        var ids = string.Join(',', Enumerable.Repeat("5", 46_341));
        var (code, stdout, stderr) = BackendCli.Run("analyze", "--model", folder, "--ids", ids);
        Assert.AreEqual(2, code, stderr); // a bad request's exit code
        Assert.AreEqual("", stdout);
        StringAssert.Contains(stderr, "ids: an analysis holds at most 32,768 tokens; got 46,341.");
        var text = Path.Combine(folder, "long.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("word ", 50_000)));
        var byText = BackendCli.Run("analyze", "--model", folder, "--text-file", text, "--max-tokens", "46341");
        Assert.AreEqual(2, byText.ExitCode, byText.Stderr);
        StringAssert.Contains(byText.Stderr, "maxTokens: an analysis holds at most 32,768 tokens; got 46,341.");
        Assert.DoesNotContain("   at ", byText.Stderr, "no stack trace");
    }

    [TestMethod]
    public void TheCliRefusesAnAnalysisTooBigForTheBudgetInOneLineAndItsAdviceHolds()
    {
        var folder = LongWindowLlama();
        var budget = new Dictionary<string, string> { ["ATTENTIONVIZ_CACHE_MB"] = "64" };
        var (code, stdout, stderr) = BackendCli.RunWith(budget, "analyze", "--model", folder, "--ids", Ids(6000));

        Assert.AreEqual(2, code, stderr);
        Assert.AreEqual("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error:")).ToArray();
        Assert.HasCount(1, lines, stderr);
        StringAssert.Contains(lines[0], "; the budget is 64 MB: raise attentionViz.memoryBudgetMB (ATTENTIONVIZ_CACHE_MB) or analyze at most ");
        Assert.DoesNotContain("   at ", stderr, "no stack trace");
        var most = int.Parse(System.Text.RegularExpressions.Regex.Match(lines[0], @"at most (\d+) tokens").Groups[1].Value);
        Assert.IsTrue(most is > 100 and < 6000, lines[0]);
        Assert.AreEqual(0, BackendCli.RunWith(budget, "analyze", "--model", folder, "--ids", Ids(most)).ExitCode, "the advice holds");
        Assert.AreEqual(2, BackendCli.RunWith(budget, "analyze", "--model", folder, "--ids", Ids(most + 1)).ExitCode);
    }
}
