using System.Globalization;
using System.Text;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Export;

/// <summary>
/// One attention matrix (a layer and head, -1 = the mean) as CSV or JSON, read through the view path
/// (<see cref="AttentionViews.View"/>: special tokens hidden, words merged, as the panel and render/png show it) and
/// labelled with the view units' display text. CSV follows RFC 4180: CRLF line ends, and a field holding a comma,
/// quote, CR or LF is quoted with its quotes doubled, so any label survives. The first row is <c>query \ key</c>
/// followed by the key labels as the panel reads them (<c>every</c>, not the vocabulary's <c>Ġevery</c>); the second
/// row is <c>vocabulary</c> followed by each unit's vocabulary strings as the tokenizer has them (a word's pieces
/// joined by spaces: <c>un ##believ ##able</c>); each further row is a query label followed by its attention weights,
/// written in the shortest form that reads back as the same float32.
/// </summary>
public static class MatrixExport
{
    public const string Corner = "query \\ key";
    public const string VocabularyRow = "vocabulary";

    public static void WriteCsv(StoredAnalysis analysis, int layer, int head, string path, ViewOptions? view = null)
    {
        var viewed = View(analysis, layer, head, view);
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 1 << 16, leaveOpen: true);
            WriteCsv(writer, viewed.Data, viewed.Units.Select(u => u.Display).ToArray(), viewed.Rows,
                viewed.Units.Select(u => Vocabulary(analysis, u)).ToArray());
        });
    }

    /// <summary>The vocabulary strings of a unit's tokens, as the tokenizer has them (<c>Ġevery</c>), joined by spaces.</summary>
    public static string Vocabulary(StoredAnalysis analysis, ViewUnit unit) =>
        string.Join(' ', Enumerable.Range(unit.FirstToken, unit.LastToken - unit.FirstToken + 1).Select(i => analysis.Tokens[i].Text));

    public static void WriteCsv(TextWriter writer, ReadOnlySpan<float> matrix, IReadOnlyList<string> labels, int n,
        IReadOnlyList<string>? vocabulary = null)
    {
        WriteHeader(Corner, labels);
        if (vocabulary is not null) WriteHeader(VocabularyRow, vocabulary);
        for (var row = 0; row < n; row++)
        {
            writer.Write(Field(labels[row]));
            foreach (var value in matrix.Slice(row * n, n))
            {
                writer.Write(',');
                writer.Write(value.ToString("R", CultureInfo.InvariantCulture));
            }
            writer.Write("\r\n");
        }

        void WriteHeader(string corner, IReadOnlyList<string> fields)
        {
            writer.Write(Field(corner));
            foreach (var field in fields)
            {
                writer.Write(',');
                writer.Write(Field(field));
            }
            writer.Write("\r\n");
        }
    }

    /// <summary>An RFC 4180 field: quoted (quotes doubled) when it holds a comma, quote, CR or LF.</summary>
    public static string Field(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"") + "\"";

    /// <summary>
    /// The matrix with the analysis's tokens (as analyzed) and the view's units, which label its rows and columns
    /// (<c>firstToken</c>/<c>lastToken</c> index the tokens): each unit's <c>display</c> is the text the panel shows,
    /// its <c>vocabulary</c> the tokenizer's strings (as the CSV's second row).
    /// </summary>
    public static void WriteJson(StoredAnalysis analysis, int layer, int head, string path, ViewOptions? view = null)
    {
        var options = view ?? new ViewOptions();
        var viewed = View(analysis, layer, head, options);
        var n = viewed.Rows;
        var rows = new float[n][];
        for (var row = 0; row < n; row++) rows[row] = viewed.Data.AsSpan(row * n, n).ToArray();
        AtomicFile.Write(path, stream => JsonSerializer.Serialize(stream, new
        {
            model = analysis.Model,
            layer,
            head,
            options.HideSpecial,
            options.WordLevel,
            tokens = analysis.Tokens.Select(t => new { id = t.Id, text = t.Text, start = t.Start, end = t.End, special = t.Special }),
            units = viewed.Units.Select(u => new
            {
                u.Text, u.Display, Vocabulary = Vocabulary(analysis, u), u.Start, u.End, u.FirstToken, u.LastToken, u.Special,
            }),
            matrix = rows,
        }, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
    }

    /// <summary>
    /// The one path (attention/view's): every row of the matrix, never pooled. A view with no token left is refused
    /// before the file is opened, as render/png refuses it, rather than written as an empty matrix.
    /// </summary>
    private static ViewResult View(StoredAnalysis analysis, int layer, int head, ViewOptions? view)
    {
        var viewed = AttentionViews.View(analysis, new ViewRequest(layer, head, view ?? new ViewOptions()));
        if (viewed.Units.Length == 0)
            throw new InvalidRequestException("Every token is a special token: with hideSpecial there is nothing left to export.");
        return viewed;
    }

    /// <summary>A path a client asked us to write, by the rule of <see cref="OutputPath"/>.</summary>
    public static string CheckOutputPath(string? path, string? requiredExtension = null) => OutputPath.Check(path, requiredExtension);
}
