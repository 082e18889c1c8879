using System.Runtime.InteropServices;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Export;

/// <summary>
/// Writes an analysis as safetensors (the CLI's format) or JSON, with the same names: input_ids I64[n],
/// offsets I64[n,2], special_tokens_mask I64[n], attentions F32[layers,heads,n,n], last_hidden_state F32[n,hidden].
/// </summary>
public static class AnalysisExport
{
    /// <summary>The CLI's <c>analyze --out</c>: the whole analysis, or one matrix seen through <paramref name="view"/> as CSV.</summary>
    public static void Write(StoredAnalysis analysis, string path, int layer = -1, int head = -1, ViewOptions? view = null)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension != ".csv" && (layer, head) != (-1, -1))
            throw new InvalidRequestException("--layer and --head select the matrix of a .csv export; " +
                ".safetensors and .json hold every layer and head.");
        if (extension != ".csv" && view is { HideSpecial: true } or { WordLevel: true })
            throw new InvalidRequestException("--hide-special and --word-level shape the matrix of a .csv export; " +
                ".safetensors and .json hold the analysis as it is.");
        switch (extension)
        {
            case ".csv": MatrixExport.WriteCsv(analysis, layer, head, path, view); break;
            case ".safetensors": WriteSafetensors(analysis, path); break;
            case ".json": WriteJson(analysis, path); break;
            default: throw new InvalidRequestException($"--out must end in .safetensors, .json or .csv: {path}");
        }
    }

    private static Dictionary<string, string> Metadata(StoredAnalysis analysis) => new()
    {
        ["tokens"] = JsonSerializer.Serialize(analysis.Tokens.Select(t => t.Text)),
        ["model"] = analysis.Model.Id,
        ["architecture"] = analysis.Model.Architecture,
    };

    public static void WriteSafetensors(StoredAnalysis analysis, string path)
    {
        var tokens = analysis.Tokens;
        var n = tokens.Count;
        var ids = tokens.Select(t => (long)t.Id).ToArray();
        var offsets = tokens.SelectMany(t => new long[] { t.Start, t.End }).ToArray();
        var special = tokens.Select(t => t.Special ? 1L : 0L).ToArray();
        var a = analysis.Attention;
        SafetensorsWriter.Write(path,
        [
            ("input_ids", "I64", [n], Bytes(ids)),
            ("offsets", "I64", [n, 2], Bytes(offsets)),
            ("special_tokens_mask", "I64", [n], Bytes(special)),
            ("attentions", "F32", [a.Layers, a.Heads, n, n], Bytes(AllLayers(a))),
            ("last_hidden_state", "F32", [n, analysis.HiddenSize], Bytes(analysis.LastHiddenState)),
        ], Metadata(analysis));
    }

    private static float[] AllLayers(IAttentionSource a)
    {
        var layerSize = a.Heads * a.Tokens * a.Tokens;
        var all = new float[(long)a.Layers * layerSize];
        for (var l = 0; l < a.Layers; l++) a.Layer(l, all.AsSpan(l * layerSize, layerSize));
        return all;
    }

    private static ReadOnlyMemory<byte> Bytes<T>(T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    public static void WriteJson(StoredAnalysis analysis, string path)
    {
        var a = analysis.Attention;
        var n = a.Tokens;
        var attentions = new float[a.Layers][][][];
        for (var l = 0; l < a.Layers; l++)
        {
            attentions[l] = new float[a.Heads][][];
            for (var h = 0; h < a.Heads; h++)
            {
                attentions[l][h] = new float[n][];
                for (var row = 0; row < n; row++)
                {
                    attentions[l][h][row] = new float[n];
                    a.Tile(l, h, row, row + 1, 0, n, attentions[l][h][row]);
                }
            }
        }
        var hidden = Enumerable.Range(0, n).Select(row => analysis.LastHiddenState.AsSpan(row * analysis.HiddenSize, analysis.HiddenSize).ToArray())
            .ToArray();
        using var stream = File.Create(path);
        JsonSerializer.Serialize(stream, new
        {
            input_ids = analysis.Tokens.Select(t => t.Id),
            offsets = analysis.Tokens.Select(t => new[] { t.Start, t.End }),
            special_tokens_mask = analysis.Tokens.Select(t => t.Special ? 1 : 0),
            attentions,
            last_hidden_state = hidden,
            __metadata__ = Metadata(analysis),
        });
    }
}
