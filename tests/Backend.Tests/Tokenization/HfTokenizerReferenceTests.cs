using System.Text;
using AttentionViz.Backend.Tokenization;
using AttentionViz.Backend.Tokenization.HuggingFace;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>
/// The Llama-2 and Gemma 3 (byte-fallback BPE, SentencePiece-style normalizer), Llama-3 and Qwen3 (byte-level BPE with
/// their split regexes) tokenizer.json files, against ids from an independent implementation (@lenml/tokenizers 3.7.2)
/// on 211 strings and 3 sentence pairs each; offsets are checked to round-trip through the tokens' bytes.
/// </summary>
[TestClass]
public sealed class HfTokenizerReferenceTests
{
    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void IdsWithSpecialTokens(string tokenizer, string name)
    {
        var c = HfReference.File.Tokenizers[tokenizer].Cases.Single(x => x.Name == name);
        var t = HfReference.Tokenizer(tokenizer);
        var ids = t.AddSpecialTokens(t.Tokenize(c.Text)).Select(x => x.Id).ToArray();
        AssertIds(c.Ids, ids, t, c.Text);
    }

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void ContentIdsAndOffsets(string tokenizer, string name)
    {
        var c = HfReference.File.Tokenizers[tokenizer].Cases.Single(x => x.Name == name);
        var expected = HfReference.File.Tokenizers[tokenizer].Content.Single(x => x.Name == name).Ids;
        var t = HfReference.Tokenizer(tokenizer);
        var tokens = t.Tokenize(c.Text);
        AssertIds(expected, tokens.Select(x => x.Id).ToArray(), t, c.Text);
        // Qwen3's normalizer is NFC: a decomposed "e\u0301" comes back as "é".
        AssertOffsetsRoundTrip(t, c.Text, tokens, byteLevel: tokenizer is not ("llama2" or "gemma3"),
            normalize: tokenizer == "qwen3" ? s => s.Normalize(NormalizationForm.FormC) : s => s);
    }

    [TestMethod]
    [DynamicData(nameof(Pairs))]
    public void SentencePairs(string tokenizer, string name)
    {
        var p = HfReference.File.Tokenizers[tokenizer].Pairs.Single(x => x.Name == name);
        var t = HfReference.Tokenizer(tokenizer);
        var tokens = t.AddSpecialTokens(t.Tokenize(p.Text), t.Tokenize(p.Text_pair));
        AssertIds(p.Ids, tokens.Select(x => x.Id).ToArray(), t, p.Text + " | " + p.Text_pair);
        if (p.Token_type_ids is not null) CollectionAssert.AreEqual(p.Token_type_ids, tokens.Select(x => x.TypeId).ToArray());
        Assert.AreEqual(t.PairSpecialTokenCount, tokens.Count(x => x.Special));
    }

    public static IEnumerable<object[]> Cases => HfReference.CaseNames;
    public static IEnumerable<object[]> Pairs => HfReference.PairNames;

    internal static void AssertIds(int[] expected, int[] actual, HfTokenizer t, string text)
    {
        if (expected.SequenceEqual(actual)) return;
        string Show(int[] ids) => string.Join(" ", ids.Select(i => $"{i}:{t.IdToToken(i)}"));
        Assert.Fail($"Text {System.Text.Json.JsonSerializer.Serialize(text)}\nexpected {Show(expected)}\nactual   {Show(actual)}");
    }

    /// <summary>Tokens in order; tokens whose spans overlap form a cluster (e.g. the byte tokens of one character, or a
    /// token ending with a character's first byte and the next token holding its rest). Each cluster's bytes decode to
    /// exactly its (normalized) text, allowing a leading space the tokenizer prepended at the start of a segment; and clusters and
    /// added tokens together cover the whole text.</summary>
    internal static void AssertOffsetsRoundTrip(HfTokenizer t, string text, IReadOnlyList<Token> tokens, bool byteLevel,
        Func<string, string> normalize, bool trimmed = false)
    {
        int covered = 0, segmentStart = 0;
        for (int i = 0; i < tokens.Count;)
        {
            var first = tokens[i];
            Assert.IsTrue(first.Start >= covered && first.End <= text.Length && first.Start <= first.End,
                $"token {i} {first} out of order in {text.Length} units; covered {covered}");
            if (t.TokenToId(first.Text) is int aid && IsAdded(t, first))
            {
                Assert.AreEqual(first.Text, text[first.Start..first.End].Trim() == first.Text ? first.Text : text[first.Start..first.End]);
                covered = segmentStart = first.End;
                i++;
                continue;
            }
            int end = first.End, j = i;
            var bytes = new List<byte>();
            while (j < tokens.Count && (j == i || tokens[j].Start < end) && !IsAdded(t, tokens[j]))
            {
                bytes.AddRange(HfReference.TokenBytes(tokens[j].Text, byteLevel));
                end = Math.Max(end, tokens[j].End);
                j++;
            }
            string decoded = Encoding.UTF8.GetString([.. bytes]);
            string span = normalize(text[first.Start..end]);
            // A prefix space the pre-tokenizer added, or (trim_offsets) spaces left out of the span, are not in the text.
            bool ok = decoded == span || (first.Start == segmentStart && decoded == " " + span)
                || (trimmed && decoded.Trim(' ') == span.Trim(' ') && text[covered..first.Start].Trim(' ').Length == 0);
            Assert.IsTrue(ok, $"tokens {i}..{j - 1} decode to {Quote(decoded)} but span [{first.Start},{end}) is {Quote(span)} in {Quote(text)}");
            if (!trimmed || text[covered..first.Start].Trim(' ').Length > 0)
                Assert.AreEqual(covered, first.Start, $"text [{covered},{first.Start}) = {Quote(text[covered..first.Start])} is covered by no token");
            covered = end;
            i = j;
        }
        if (!trimmed || text[covered..].Trim(' ').Length > 0)
            Assert.AreEqual(text.Length, covered, $"text from {covered} is covered by no token");
    }

    private static bool IsAdded(HfTokenizer t, Token token) =>
        t.IsSpecial(token.Id) && token.Text == t.IdToToken(token.Id) && token.Text.Length > 1 && token.Text.StartsWith('<');

    private static string Quote(string s) => System.Text.Json.JsonSerializer.Serialize(s);
}
