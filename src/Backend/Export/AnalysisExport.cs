using System.Globalization;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Export;

/// <summary>
/// Which attention heads an export holds: every head (<c>attentions</c> F32[layers, heads, n, n]), the listed
/// (layer, head) pairs in their order (<c>attentions</c> F32[k, n, n] and <c>attention_heads</c> I64[k, 2]), or none.
/// </summary>
public sealed class AttentionSelection
{
    private AttentionSelection(IReadOnlyList<(int Layer, int Head)>? listed, bool included) => (Listed, Included) = (listed, included);

    public static AttentionSelection Every { get; } = new(null, true);
    public static AttentionSelection None { get; } = new([], false);

    /// <summary>The listed heads: at least one, each once, layer and head ≥ 0 (the model's ranges are checked on export).</summary>
    public static AttentionSelection Of(IReadOnlyList<(int Layer, int Head)> heads)
    {
        if (heads.Count == 0) throw new InvalidRequestException("--heads lists no head: give layer:head pairs such as 0:1,3:2.");
        foreach (var (layer, head) in heads)
            if (layer < 0 || head < 0) throw new InvalidRequestException($"--heads {layer}:{head}: layers and heads count from 0.");
        if (heads.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new InvalidRequestException($"--heads names {twice.Key.Layer}:{twice.Key.Head} twice.");
        return new(heads, true);
    }

    /// <summary>The listed heads, or null for every head (layer by layer, heads in order).</summary>
    public IReadOnlyList<(int Layer, int Head)>? Listed { get; }

    public bool Included { get; }

    /// <summary>The heads written, in file order, checked against the model's <paramref name="layers"/> × <paramref name="heads"/>.</summary>
    public IReadOnlyList<(int Layer, int Head)> Resolve(int layers, int heads)
    {
        if (Listed is null)
            return [.. Enumerable.Range(0, layers).SelectMany(l => Enumerable.Range(0, heads).Select(h => (l, h)))];
        foreach (var (layer, head) in Listed)
            if (layer >= layers || head >= heads)
                throw new InvalidRequestException($"--heads {layer}:{head} is not a head of this model: " +
                    $"it has {layers} layers (0..{layers - 1}) of {heads} heads (0..{heads - 1}).");
        return Listed;
    }
}

/// <summary>What <c>analyze --out</c> writes: one matrix for a .csv (layer, head, view), the attention heads for the others.</summary>
public sealed record ExportOptions(int Layer = -1, int Head = -1, ViewOptions? View = null, AttentionSelection? Attentions = null)
{
    public AttentionSelection Selection => Attentions ?? AttentionSelection.Every;
}

/// <summary>
/// Writes an analysis as safetensors (the CLI's format) or JSON, with the same names: input_ids I64[n],
/// offsets I64[n,2], special_tokens_mask I64[n], attentions F32[layers,heads,n,n] (or the selected heads' F32[k,n,n]
/// with attention_heads I64[k,2]), last_hidden_state F32[n,hidden]. Attention is streamed into the file a block of
/// rows at a time (<see cref="BlockBytes"/>), so L·H·n² floats never exist in memory at once, and a file's attention
/// is limited to <see cref="MaxAttentionBytes"/>.
/// </summary>
public static class AnalysisExport
{
    /// <summary>The most attention one .safetensors or .json export holds: 4 GB (GiB) of float32 values.</summary>
    public const long MaxAttentionBytes = 4L << 30;

    /// <summary>About this much of one head's matrix is read and written at a time: a few MB whatever n is.</summary>
    public const int BlockBytes = 4 << 20;

    /// <summary>A JSON export hands its buffered text to the file beyond this much.</summary>
    private const int JsonFlushBytes = 1 << 20;

    /// <summary>The CLI's <c>analyze --out</c>: the whole analysis (or the selected heads), or one matrix seen through the view as CSV.</summary>
    public static void Write(StoredAnalysis analysis, string path, ExportOptions options, CancellationToken cancellationToken = default)
    {
        Check(path, options, analysis.Model.Layers, analysis.Model.Heads, analysis.Tokens.Count);
        switch (Path.GetExtension(path).ToLowerInvariant())
        {
            case ".csv": MatrixExport.WriteCsv(analysis, options.Layer, options.Head, path, options.View); break;
            case ".safetensors": WriteSafetensors(analysis, path, options.Selection, cancellationToken); break;
            default: WriteJson(analysis, path, options.Selection, cancellationToken); break;
        }
    }

    /// <summary>
    /// Refuses what <see cref="Write"/> could not write, before the model runs when called with the model's shape: the
    /// format, the options that do not go with it, heads the model lacks, and (when <paramref name="tokens"/> is known)
    /// attention over <see cref="MaxAttentionBytes"/>.
    /// </summary>
    public static void Check(string path, ExportOptions options, int layers, int heads, int? tokens)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not (".csv" or ".safetensors" or ".json"))
            throw new InvalidRequestException($"--out must end in .safetensors, .json or .csv: {path}");
        if (extension == ".csv")
        {
            if (options.Attentions is not null)
                throw new InvalidRequestException("--heads and --no-attentions choose what a .safetensors or .json export holds; " +
                    "a .csv holds one matrix (--layer/--head).");
            return;
        }
        if ((options.Layer, options.Head) != (-1, -1))
            throw new InvalidRequestException("--layer and --head select the matrix of a .csv export; " +
                ".safetensors and .json hold every layer and head (or those of --heads).");
        if (options.View is { HideSpecial: true } or { WordLevel: true })
            throw new InvalidRequestException("--hide-special and --word-level shape the matrix of a .csv export; " +
                ".safetensors and .json hold the analysis as it is.");
        var written = options.Selection.Included ? options.Selection.Resolve(layers, heads).Count : 0;
        if (tokens is { } n) CheckSize(path, written, n);
    }

    private static void CheckSize(string path, int headCount, int tokens)
    {
        var perHead = (long)tokens * tokens * sizeof(float);
        var bytes = headCount * perHead;
        if (bytes <= MaxAttentionBytes) return;
        throw new InvalidRequestException(
            $"The attention of {headCount} heads over {tokens} tokens would take {Size(bytes)} in {Path.GetFileName(path)}, " +
            $"over the {Size(MaxAttentionBytes)} one export holds: choose heads with --heads layer:head,… (each takes {Size(perHead)}, " +
            $"so at most {MaxAttentionBytes / perHead} fit) or leave attention out with --no-attentions.");
    }

    private static string Size(long bytes) => bytes >= 1L << 30
        ? (bytes / (double)(1L << 30)).ToString("0.#", CultureInfo.InvariantCulture) + " GB"
        : (bytes / (double)(1L << 20)).ToString("0.#", CultureInfo.InvariantCulture) + " MB";

    private static Dictionary<string, string> Metadata(StoredAnalysis analysis) => new()
    {
        ["tokens"] = JsonSerializer.Serialize(analysis.Tokens.Select(t => t.Text)),
        ["model"] = analysis.Model.Id,
        ["architecture"] = analysis.Model.Architecture,
    };

    /// <summary>The heads written, checked against the analysis (its shape and the size limit).</summary>
    private static IReadOnlyList<(int Layer, int Head)> HeadsToWrite(StoredAnalysis analysis, string path, AttentionSelection selection)
    {
        var heads = selection.Included ? selection.Resolve(analysis.Model.Layers, analysis.Model.Heads) : [];
        CheckSize(path, heads.Count, analysis.Tokens.Count);
        return heads;
    }

    public static void WriteSafetensors(StoredAnalysis analysis, string path, AttentionSelection? selection = null,
        CancellationToken cancellationToken = default)
    {
        selection ??= AttentionSelection.Every;
        var heads = HeadsToWrite(analysis, path, selection);
        var tokens = analysis.Tokens;
        var n = tokens.Count;
        var a = analysis.Attention;
        List<StreamedTensor> tensors =
        [
            Values("input_ids", "I64", [n], tokens.Select(t => (long)t.Id).ToArray()),
            Values("offsets", "I64", [n, 2], tokens.SelectMany(t => new long[] { t.Start, t.End }).ToArray()),
            Values("special_tokens_mask", "I64", [n], tokens.Select(t => t.Special ? 1L : 0L).ToArray()),
        ];
        if (selection.Included)
        {
            long[] shape = selection.Listed is null ? [a.Layers, a.Heads, n, n] : [heads.Count, n, n];
            tensors.Add(new StreamedTensor("attentions", "F32", shape, writer =>
            {
                var block = new float[BlockRows(n) * n];
                foreach (var (layer, head) in heads)
                    ForEachRow(a, layer, head, analysis.Model.Causal, block, cancellationToken, (values, zeros) =>
                    {
                        writer.Write(values);
                        writer.WriteZeros((long)zeros * sizeof(float));
                    });
            }));
            if (selection.Listed is not null)
                tensors.Add(Values("attention_heads", "I64", [heads.Count, 2], heads.SelectMany(h => new long[] { h.Layer, h.Head }).ToArray()));
        }
        tensors.Add(Values("last_hidden_state", "F32", [n, analysis.HiddenSize], analysis.LastHiddenState));
        SafetensorsWriter.Write(path, tensors, Metadata(analysis));
    }

    private static StreamedTensor Values<T>(string name, string dtype, long[] shape, T[] values) where T : unmanaged =>
        new(name, dtype, shape, writer => writer.Write<T>(values));

    /// <summary>One row of a head's matrix: its values read, then this many zeros (keys no query of the block sees).</summary>
    private delegate void RowSink(ReadOnlySpan<float> values, int trailingZeros);

    /// <summary>Rows per block: <see cref="BlockBytes"/> of one head's n-wide rows, at least one.</summary>
    public static int BlockRows(int tokens) => Math.Max(1, BlockBytes / (tokens * sizeof(float)));

    /// <summary>
    /// Every row of head (layer, head) in order, read a block of rows at a time into <paramref name="block"/>. In a
    /// causal model no query of rows [r0, r1) sees a key at or after r1, so those columns are written as zeros, not
    /// read (half the work of a recomputed source).
    /// </summary>
    private static void ForEachRow(IAttentionSource source, int layer, int head, bool causal, float[] block,
        CancellationToken cancellationToken, RowSink sink)
    {
        var n = source.Tokens;
        var step = block.Length / n;
        for (var r0 = 0; r0 < n; r0 += step)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var r1 = Math.Min(n, r0 + step);
            var width = causal ? r1 : n;
            var tile = block.AsSpan(0, (r1 - r0) * width);
            source.Tile(layer, head, r0, r1, 0, width, tile);
            for (var row = 0; row < r1 - r0; row++) sink(tile.Slice(row * width, width), n - width);
        }
    }

    /// <summary>The same content as <see cref="WriteSafetensors"/> as one JSON object, written row by row.</summary>
    public static void WriteJson(StoredAnalysis analysis, string path, AttentionSelection? selection = null,
        CancellationToken cancellationToken = default)
    {
        selection ??= AttentionSelection.Every;
        var heads = HeadsToWrite(analysis, path, selection);
        var tokens = analysis.Tokens;
        AtomicFile.Write(path, stream =>
        {
            using var json = new Utf8JsonWriter(stream);
            json.WriteStartObject();
            WriteNumbers(json, "input_ids", tokens.Select(t => (long)t.Id));
            json.WriteStartArray("offsets");
            foreach (var t in tokens) WriteNumbers(json, null, [t.Start, t.End]);
            json.WriteEndArray();
            WriteNumbers(json, "special_tokens_mask", tokens.Select(t => t.Special ? 1L : 0L));
            if (selection.Included)
            {
                WriteAttentionsJson(json, analysis, heads, grouped: selection.Listed is null, cancellationToken);
                if (selection.Listed is not null)
                {
                    json.WriteStartArray("attention_heads");
                    foreach (var (layer, head) in heads) WriteNumbers(json, null, [layer, head]);
                    json.WriteEndArray();
                }
            }
            json.WriteStartArray("last_hidden_state");
            for (var row = 0; row < tokens.Count; row++)
                WriteRow(json, analysis.LastHiddenState.AsSpan(row * analysis.HiddenSize, analysis.HiddenSize), 0);
            json.WriteEndArray();
            json.WriteStartObject("__metadata__");
            foreach (var (key, value) in Metadata(analysis)) json.WriteString(key, value);
            json.WriteEndObject();
            json.WriteEndObject();
        });
    }

    /// <summary>"attentions": [layer][head][query][key] for every head (grouped), else [selected head][query][key].</summary>
    private static void WriteAttentionsJson(Utf8JsonWriter json, StoredAnalysis analysis, IReadOnlyList<(int Layer, int Head)> heads,
        bool grouped, CancellationToken cancellationToken)
    {
        var a = analysis.Attention;
        var block = new float[BlockRows(a.Tokens) * a.Tokens];
        json.WriteStartArray("attentions");
        foreach (var (layer, head) in heads)
        {
            if (grouped && head == 0) json.WriteStartArray();
            json.WriteStartArray();
            ForEachRow(a, layer, head, analysis.Model.Causal, block, cancellationToken, (values, zeros) => WriteRow(json, values, zeros));
            json.WriteEndArray();
            if (grouped && head == a.Heads - 1) json.WriteEndArray();
        }
        json.WriteEndArray();
    }

    private static void WriteRow(Utf8JsonWriter json, ReadOnlySpan<float> values, int trailingZeros)
    {
        json.WriteStartArray();
        foreach (var v in values) json.WriteNumberValue(v);
        for (var z = 0; z < trailingZeros; z++) json.WriteNumberValue(0);
        json.WriteEndArray();
        if (json.BytesPending > JsonFlushBytes) json.Flush();
    }

    private static void WriteNumbers(Utf8JsonWriter json, string? name, IEnumerable<long> values)
    {
        if (name is null) json.WriteStartArray();
        else json.WriteStartArray(name);
        foreach (var v in values) json.WriteNumberValue(v);
        json.WriteEndArray();
    }
}
