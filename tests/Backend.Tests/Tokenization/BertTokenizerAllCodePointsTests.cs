using System.Globalization;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>
/// Opt-in exhaustive check against @lenml/tokenizers over every code point (data made by
/// tests/reference/tokenizer/make-all-code-points.mjs, too large to check in; set BERT_ALL_CODE_POINTS to its path).
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
        if (string.IsNullOrEmpty(path)) Assert.Inconclusive("Set BERT_ALL_CODE_POINTS (see tests/reference/tokenizer/make-all-code-points.mjs).");
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
}
