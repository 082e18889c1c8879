using System.Text.Json;
using System.Text.RegularExpressions;
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
        catch (Exception e) when (MeansABadFile(e))
        {
            throw ModelFormatException.For(path, null, $"malformed tokenizer file ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Bad JSON; the JSON reader's complaints about the content (a missing key, a value of the wrong kind, a number
    /// out of range, an array too short); or a bad regex in a pattern. The same exception types thrown by our own code
    /// are bugs, and stay "Internal error" with their stack in the log.
    /// </summary>
    private static bool MeansABadFile(Exception e) =>
        e is JsonException or RegexParseException
        || (e is KeyNotFoundException or InvalidOperationException or FormatException or IndexOutOfRangeException
            && e.TargetSite?.Module.Assembly == typeof(JsonElement).Assembly);
}
