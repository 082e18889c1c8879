using System.Globalization;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>
/// Exhaustive check against @lenml/tokenizers over every code point. The data (~7 MB, too large to check in) is made at
/// test time by tests/reference/tokenizer/make-all-code-points.mjs (test.sh runs `npm ci` there first), or read from
/// the file BERT_ALL_CODE_POINTS names.
/// Two documented classes of code points are skipped, where the reference departs from HF's algorithm:
/// unassigned ones (HF's clean_text drops category Cn; transformers.js' _is_control forgets Cn, and Node's Unicode 17
/// also knows newer characters than .NET 10), and CJK ideographs outside the BMP (transformers.js walks UTF-16 units).
/// </summary>
[TestClass]
public sealed class BertTokenizerAllCodePointsTests
{
    internal static string TextFor(int cp)
    {
        string c = char.ConvertFromUtf32(cp);
        return $"x{c}y {c} ΑΣ{c} Α{c}Σ {c}Σ";
    }

    [TestMethod]
    public void EveryAssignedCodePointMatchesTheReference()
    {
        string? path = Environment.GetEnvironmentVariable("BERT_ALL_CODE_POINTS");
        if (string.IsNullOrEmpty(path)) path = GenerateReference();
        var tokenizer = MiniLm.Tokenizer;
        int compared = 0;
        var mismatches = new List<string>();
        foreach (string line in File.ReadLines(path))
        {
            if (line.Length == 0) continue;
            int colon = line.IndexOf(':');
            int cp = int.Parse(line[..colon], CultureInfo.InvariantCulture);
            if (CharUnicodeInfo.GetUnicodeCategory(cp) == UnicodeCategory.OtherNotAssigned) continue;
            if (cp is (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2CEAF) or (>= 0x2F800 and <= 0x2FA1F)) continue;
            string mine = string.Join(",", tokenizer.Tokenize(TextFor(cp)).Select(t => t.Id));
            if (mine != line[(colon + 1)..] && mismatches.Count < 20) mismatches.Add($"U+{cp:X4}: {mine} vs {line[(colon + 1)..]}");
            compared++;
        }
        Assert.IsEmpty(mismatches, string.Join("\n", mismatches));
        Assert.IsGreaterThan(100_000, compared);

    }

    private static string GenerateReference()
    {
        var folder = Path.Combine(Support.Fixtures.RepoRoot, "tests", "reference", "tokenizer");
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "@lenml")))
            Assert.Fail($"Run `npm ci` in {folder} first (test.sh does): the reference tokenizer is not installed.");
        var output = Path.Combine(Path.GetTempPath(), $"bert-all-code-points-{Environment.ProcessId}.txt");
        var start = new System.Diagnostics.ProcessStartInfo("node")
        {
            WorkingDirectory = folder, RedirectStandardOutput = true,
            RedirectStandardError = true
        };
        start.ArgumentList.Add("make-all-code-points.mjs");
        start.ArgumentList.Add(AttentionViz.Backend.Storage.EmbeddedModelPackage.AssemblyPath);
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        using (var file = File.Create(output)) process.StandardOutput.BaseStream.CopyTo(file);
        process.WaitForExit();
        Assert.AreEqual(0, process.ExitCode, $"make-all-code-points.mjs failed: {stderr.Result}");
        return output;
    }
}
