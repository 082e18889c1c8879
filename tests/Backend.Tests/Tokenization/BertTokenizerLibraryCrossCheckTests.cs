using AttentionViz.Backend.Storage;
using Microsoft.ML.Tokenizers;

namespace AttentionViz.Backend.Tests.Tokenization;

/// <summary>
/// Microsoft.ML.Tokenizers' BertTokenizer is not faithful for code (see BertTokenizer's remarks), but its WordPiece
/// model is: fed one already-normalized word, it must cut it into the same pieces as ours.
/// </summary>
[TestClass]
public sealed class BertTokenizerLibraryCrossCheckTests
{
    [TestMethod]
    public void WordPieceAgreesWithMicrosoftMlTokenizers()
    {
        using var vocab = EmbeddedModelPackage.OpenResource(EmbeddedModelPackage.VocabResource);
        var library = WordPieceTokenizer.Create(vocab, new WordPieceOptions { PreTokenizer = null, Normalizer = null });
        var tokenizer = MiniLm.Tokenizer;
        int words = 0;
        foreach (var reference in BertReference.File.Cases)
        {
            var tokens = tokenizer.Tokenize(reference.Text);
            for (int k = 0; k < tokens.Count;)
            {
                int end = k + 1;
                while (end < tokens.Count && tokens[end].Text.StartsWith("##", StringComparison.Ordinal)
                    && tokens[end].Id != tokenizer.UnknownTokenId) end++;
                var word = tokens.Skip(k).Take(end - k).ToArray();
                k = end;
                if (word[0].Id == tokenizer.UnknownTokenId || tokenizer.IsSpecial(word[0].Id)) continue;
                string text = string.Concat(word.Select((t, i) => i == 0 ? t.Text : t.Text[2..]));
                CollectionAssert.AreEqual(word.Select(t => t.Id).ToArray(), library.EncodeToIds(text).ToArray(), $"{reference.Name}: '{text}'");
                words++;
            }
        }
        Assert.IsGreaterThan(300, words);
    }
}
