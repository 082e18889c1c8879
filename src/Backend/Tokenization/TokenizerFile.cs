using System.Text.Json;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Tokenization;

/// <summary>
/// Reading one tokenizer file (tokenizer.json, tokenizer_config.json, vocab.txt, vocab.json, merges.txt,
/// tokenizer.model): whatever is wrong with its content becomes a <see cref="ModelFormatException"/> that names the
/// file, so users see which file to fix rather than "Internal error" or a stack trace.
/// </summary>
internal static class TokenizerFile
{
    /// <summary>
    /// Runs <paramref name="parse"/> on <paramref name="path"/>'s content. The parsers' own errors (unsupported
    /// component types, inconsistent vocabularies) say what is wrong without a file; they get it here, and so do the
    /// JSON reader's errors (a missing key, a wrong kind of value, bad JSON).
    /// </summary>
    public static T Read<T>(string path, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (ModelFormatException e) when (e.FilePath is null)
        {
            throw ModelFormatException.For(path, null, e.Message, e);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException
                                      or JsonException or IndexOutOfRangeException or ArgumentException)
        {
            throw ModelFormatException.For(path, null, $"malformed tokenizer file ({e.Message}).", e);
        }
    }
}
