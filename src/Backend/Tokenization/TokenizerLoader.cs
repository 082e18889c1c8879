namespace AttentionViz.Backend.Tokenization;

/// <summary>Finds and loads the tokenizer files of a model folder. Needs no weights and no config.json.</summary>
public static class TokenizerLoader
{
    /// <summary>The folder's tokenizer, or null when it ships no tokenizer files.</summary>
    public static IModelTokenizer? TryLoad(string folder)
    {
        var vocab = Path.Combine(folder, "vocab.txt");
        return File.Exists(vocab) ? BertTokenizer.FromVocabFile(vocab) : null;
    }
}
