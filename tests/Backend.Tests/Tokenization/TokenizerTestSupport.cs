using System.Globalization;
using System.Text;
using System.Text.Json;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Tests.Tokenization;

internal static class MiniLm
{
    private static readonly Lazy<BertTokenizer> Shared = new(() => BertTokenizer.FromVocabulary(EmbeddedModelPackage.ReadVocabulary()));

    /// <summary>The all-MiniLM-L6-v2 tokenizer over the embedded package's vocab.txt.</summary>
    public static BertTokenizer Tokenizer => Shared.Value;

    public static int[] EncodeIds(string text) =>
        [.. Tokenizer.AddSpecialTokens(Tokenizer.Tokenize(text)).Select(t => t.Id)];
}

internal sealed record ReferenceCase(string Name, string Text, int[] Ids, string[] Tokens);

internal sealed record ReferenceFile(string Generator, string Implementation, string Unicode, string Vocab_sha256, ReferenceCase[] Cases);

/// <summary>bert-reference.json: ids from @lenml/tokenizers (see tests/reference/tokenizer/make-bert-reference.mjs).</summary>
internal static class BertReference
{
    private static readonly Lazy<ReferenceFile> Shared = new(() =>
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Tokenization", "bert-reference.json");
        var options = new JsonSerializerOptions { PropertyNameCaseInsensitive = true };
        return JsonSerializer.Deserialize<ReferenceFile>(System.IO.File.ReadAllText(path), options)
            ?? throw new InvalidDataException($"Empty reference file {path}.");
    });

    public static ReferenceFile File => Shared.Value;

    public static ReferenceCase Case(string name) => File.Cases.Single(c => c.Name == name);

    public static IEnumerable<object[]> CaseNames => File.Cases.Select(c => new object[] { c.Name });
}

/// <summary>
/// The normalization a token's source text must round-trip through: HF's clean_text, lower-casing (Python's 'İ' → "i̇"),
/// NFD and dropping Mn. Sigma is folded (ς → σ) on both sides, since its form depends on context outside a slice.
/// </summary>
internal static class TestNormalizer
{
    public static string Normalize(string s)
    {
        var sb = new StringBuilder(s.Length);
        Span<int> decomposed = stackalloc int[CanonicalDecomposition.MaxLength];
        foreach (var rune in s.EnumerateRunes())
        {
            var cat = Rune.GetUnicodeCategory(rune);
            if (rune.Value is 0 or 0xFFFD) continue;
            if (rune.Value is not ('\t' or '\n' or '\r') && cat is UnicodeCategory.Control or UnicodeCategory.Format
                    or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.Surrogate) continue;
            string lower = rune.Value == 0x130 ? "i\u0307" : Rune.ToLowerInvariant(rune).ToString();
            foreach (var l in lower.EnumerateRunes())
            {
                int n = CanonicalDecomposition.Decompose(l.Value, decomposed);
                for (int k = 0; k < n; k++)
                {
                    var d = new Rune(decomposed[k]);
                    if (Rune.GetUnicodeCategory(d) == UnicodeCategory.NonSpacingMark) continue;
                    sb.Append(d.Value == 0x3C2 ? "σ" : d.ToString());
                }
            }
        }
        return sb.ToString();
    }

    public static string FoldSigma(string s) => s.Replace('ς', 'σ');
}
