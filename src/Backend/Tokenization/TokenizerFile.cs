using System.Text.Json;
using System.Text.RegularExpressions;
using AttentionViz.Backend.Platform;
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
    /// The most one tokenizer file may take: 128 MB, about four times the largest published ones (Gemma 3's
    /// tokenizer.json is 33 MB), so that a huge file or a device such as /dev/zero is refused before it is read.
    /// </summary>
    public const long MaxBytes = 128L << 20;

    /// <summary>The file's bytes, through <see cref="UserFile"/>: a regular file of at most <see cref="MaxBytes"/>.</summary>
    public static byte[] ReadBytes(string path) => UserFile.ReadAllBytes(path, MaxBytes, "tokenizer file", Refusal(path));

    /// <summary>The file's text (UTF-8 unless a byte order mark says otherwise), bounded as <see cref="ReadBytes"/>.</summary>
    public static string ReadText(string path) => UserFile.ReadAllText(path, MaxBytes, "tokenizer file", Refusal(path));

    /// <summary>The file's lines (LF, CRLF or CR endings), bounded as <see cref="ReadBytes"/>.</summary>
    public static List<string> ReadLines(string path)
    {
        var lines = new List<string>();
        using var reader = new StringReader(ReadText(path));
        while (reader.ReadLine() is { } line) lines.Add(line);
        return lines;
    }

    /// <summary>The file opened for reading, bounded as <see cref="ReadBytes"/>.</summary>
    public static Stream Open(string path) => UserFile.OpenRead(path, MaxBytes, "tokenizer file", Refusal(path));

    private static Func<string, Exception> Refusal(string path) => what => ModelFormatException.For(path, null, what);

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
