using System.Globalization;
using System.Text;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Rendering;

namespace AttentionViz.Backend.Export;

/// <summary>
/// One attention matrix (a layer and head, -1 = the mean) as CSV or JSON. CSV follows RFC 4180: CRLF line ends, and a
/// field holding a comma, quote, CR or LF is quoted with its quotes doubled, so any token text survives. The first row
/// is <c>query \ key</c> followed by the key tokens; each further row is a query token followed by its attention
/// weights, written in the shortest form that reads back as the same float32.
/// </summary>
public static class MatrixExport
{
    public const string Corner = "query \\ key";

    public static void WriteCsv(StoredAnalysis analysis, int layer, int head, string path)
    {
        var (matrix, n) = Matrix(analysis, layer, head);
        using var writer = new StreamWriter(path, false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        WriteCsv(writer, matrix, analysis.Tokens.Select(t => t.Text).ToArray(), n);
    }

    public static void WriteCsv(TextWriter writer, ReadOnlySpan<float> matrix, IReadOnlyList<string> labels, int n)
    {
        writer.Write(Field(Corner));
        foreach (var label in labels)
        {
            writer.Write(',');
            writer.Write(Field(label));
        }
        writer.Write("\r\n");
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
    }

    /// <summary>An RFC 4180 field: quoted (quotes doubled) when it holds a comma, quote, CR or LF.</summary>
    public static string Field(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"") + "\"";

    public static void WriteJson(StoredAnalysis analysis, int layer, int head, string path)
    {
        var (matrix, n) = Matrix(analysis, layer, head);
        var rows = new float[n][];
        for (var row = 0; row < n; row++) rows[row] = matrix.AsSpan(row * n, n).ToArray();
        using var stream = File.Create(path);
        JsonSerializer.Serialize(stream, new
        {
            model = analysis.Model,
            layer,
            head,
            tokens = analysis.Tokens.Select(t => new { id = t.Id, text = t.Text, start = t.Start, end = t.End, special = t.Special }),
            matrix = rows,
        }, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
    }

    private static (float[] Matrix, int N) Matrix(StoredAnalysis analysis, int layer, int head)
    {
        RequestChecks.LayerHead(analysis.Model.Layers, analysis.Model.Heads, layer, head, RequestChecks.MinusOneIsMean);
        var n = analysis.Tokens.Count;
        var matrix = new float[n * n];
        analysis.Attention.Matrix(layer, head, matrix);
        return (matrix, n);
    }

    /// <summary>
    /// A path a client asked us to write: absolute, in a folder that exists, not a folder itself. Relative paths would
    /// land wherever the backend happens to run.
    /// </summary>
    public static string CheckOutputPath(string? path, string? requiredExtension = null)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new InvalidRequestException("Missing parameter 'path'.");
        if (path.IndexOf('\0') >= 0 || !Path.IsPathFullyQualified(path)) throw new InvalidRequestException($"path must be absolute: \"{path}\".");
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new InvalidRequestException($"path is a folder, not a file: {full}");
        var parent = Path.GetDirectoryName(full);
        if (parent is null || !Directory.Exists(parent)) throw new InvalidRequestException($"The folder of path does not exist: {parent ?? full}");
        if (requiredExtension is not null && !string.Equals(Path.GetExtension(full), requiredExtension, StringComparison.OrdinalIgnoreCase))
            throw new InvalidRequestException($"path must end in {requiredExtension}: {full}");
        return full;
    }
}
