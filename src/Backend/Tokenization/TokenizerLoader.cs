using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization.HuggingFace;

namespace AttentionViz.Backend.Tokenization;

/// <summary>Finds and loads the tokenizer files of a model folder. Needs no weights and no config.json.</summary>
/// <remarks>Preference, as transformers' AutoTokenizer (fast first): tokenizer.json (+ tokenizer_config.json), then
/// GPT-2 style vocab.json + merges.txt, then SentencePiece tokenizer.model, then BERT vocab.txt.</remarks>
public static class TokenizerLoader
{
    /// <summary>The folder's tokenizer, or null when it ships no tokenizer files. A file that is present but unsupported
    /// or malformed throws a <see cref="ModelFormatException"/> naming the file (and the unsupported type or field).
    /// </summary>
    public static IModelTokenizer? TryLoad(string folder)
    {
        string json = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(json)) return HfTokenizer.FromTokenizerJson(json, Path.Combine(folder, "tokenizer_config.json"));
        string vocabJson = Path.Combine(folder, "vocab.json"), merges = Path.Combine(folder, "merges.txt");
        if (File.Exists(vocabJson) && File.Exists(merges)) return HfTokenizer.FromVocabAndMerges(vocabJson, merges);
        string spm = Path.Combine(folder, "tokenizer.model");
        if (File.Exists(spm)) return SentencePieceModelTokenizer.FromFile(spm, Path.Combine(folder, "tokenizer_config.json"));
        var vocab = Path.Combine(folder, "vocab.txt");
        return File.Exists(vocab) ? BertTokenizer.FromVocabFile(vocab) : null;
    }
}
