using System.Text.Json;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>One item of a template: special tokens, or the content of sequence A (0) or B (1); each with its type id.</summary>
internal readonly record struct TemplatePiece(int Sequence, int[] Ids, int TypeId)
{
    public bool IsSequence => Sequence >= 0;
}

/// <summary>
/// A tokenizer.json "post_processor" reduced to what it does to ids: a single and a pair template (TemplateProcessing,
/// BertProcessing and RobertaProcessing are all templates; ByteLevel adds nothing but may trim offsets).
/// </summary>
internal sealed class PostProcessor
{
    public TemplatePiece[] Single { get; }
    public TemplatePiece[] Pair { get; }
    /// <summary>ByteLevel/RobertaProcessing trim_offsets: leading/trailing spaces are left out of byte-level tokens' offsets.</summary>
    public bool TrimOffsets { get; }
    public bool AddPrefixSpace { get; }

    public PostProcessor(TemplatePiece[] single, TemplatePiece[] pair, bool trimOffsets, bool addPrefixSpace)
    {
        Single = single;
        Pair = pair;
        TrimOffsets = trimOffsets;
        AddPrefixSpace = addPrefixSpace;
    }

    public static readonly PostProcessor None = new([new(0, [], 0)], [new(0, [], 0), new(1, [], 1)], false, false);

    public IEnumerable<int> SpecialIds => Single.Concat(Pair).SelectMany(p => p.Ids);

    public int Count(bool pair) => (pair ? Pair : Single).Where(p => !p.IsSequence).Sum(p => p.Ids.Length);

    public static PostProcessor Parse(JsonElement json, Func<string, int> idOf)
    {
        if (json.ValueKind == JsonValueKind.Null) return None;
        string type = Json.Type(json, "post_processor");
        switch (type)
        {
            case "TemplateProcessing":
                {
                    var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
                    if (json.TryGetProperty("special_tokens", out var st))
                        foreach (var p in st.EnumerateObject())
                            specials[p.Name] = [.. p.Value.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32())];
                    return new PostProcessor(Template(json.GetProperty("single"), specials), Template(json.GetProperty("pair"), specials), false,
                        false);
                }
            case "BertProcessing":
                {
                    int sep = json.GetProperty("sep")[1].GetInt32(), cls = json.GetProperty("cls")[1].GetInt32();
                    return new PostProcessor(
                        [new(-1, [cls], 0), new(0, [], 0), new(-1, [sep], 0)],
                        [new(-1, [cls], 0), new(0, [], 0), new(-1, [sep], 0), new(1, [], 1), new(-1, [sep], 1)], false, false);
                }
            case "RobertaProcessing":
                {
                    int sep = json.GetProperty("sep")[1].GetInt32(), cls = json.GetProperty("cls")[1].GetInt32();
                    // As tokenizers' roberta.rs: the pair part "</s> B </s>" has type id 1.
                    return new PostProcessor(
                        [new(-1, [cls], 0), new(0, [], 0), new(-1, [sep], 0)],
                        [new(-1, [cls], 0), new(0, [], 0), new(-1, [sep], 0), new(-1, [sep], 1), new(1, [], 1), new(-1, [sep], 1)],
                        Json.Bool(json, "trim_offsets", true), Json.Bool(json, "add_prefix_space", true));
                }
            case "ByteLevel":
                return new PostProcessor(None.Single, None.Pair, Json.Bool(json, "trim_offsets", true), Json.Bool(json, "add_prefix_space", true));
            case "Sequence":
                {
                    var items = json.GetProperty("processors").EnumerateArray().Select(p => Parse(p, idOf)).ToList();
                    var template = items.LastOrDefault(p => p.Single.Length != 1 || p.Pair.Length != 2) ?? None;
                    var trimming = items.LastOrDefault(p => p.TrimOffsets);
                    return new PostProcessor(template.Single, template.Pair, trimming is not null, trimming?.AddPrefixSpace ?? false);
                }
            default:
                throw new ModelFormatException($"Unsupported tokenizer.json post_processor type \"{type}\".");
        }
    }

    private static TemplatePiece[] Template(JsonElement items, Dictionary<string, int[]> specials)
    {
        var result = new List<TemplatePiece>();
        foreach (var item in items.EnumerateArray())
        {
            if (item.TryGetProperty("Sequence", out var seq))
            {
                string id = seq.GetProperty("id").GetString()!;
                result.Add(new(id == "A" ? 0 : id == "B" ? 1 : throw new ModelFormatException($"Template sequence \"{id}\"."),
                    [], seq.GetProperty("type_id").GetInt32()));
            }
            else if (item.TryGetProperty("SpecialToken", out var sp))
            {
                string id = sp.GetProperty("id").GetString()!;
                if (!specials.TryGetValue(id, out var ids))
                    throw new ModelFormatException($"Template special token \"{id}\" is missing from special_tokens.");
                result.Add(new(-1, ids, sp.GetProperty("type_id").GetInt32()));
            }
            else throw new ModelFormatException($"Unsupported template item {item.GetRawText()}.");
        }
        return [.. result];
    }

    /// <summary>HF's template of LlamaTokenizerFast.update_post_processor from tokenizer_config.json's add_bos/add_eos.</summary>
    public static PostProcessor LlamaStyle(int? bos, int? eos)
    {
        var single = new List<TemplatePiece>();
        if (bos is int b) single.Add(new(-1, [b], 0));
        single.Add(new(0, [], 0));
        if (eos is int e) single.Add(new(-1, [e], 0));
        var pair = new List<TemplatePiece>(single);
        if (bos is int b1) pair.Add(new(-1, [b1], 1));
        pair.Add(new(1, [], 1));
        if (eos is int e1) pair.Add(new(-1, [e1], 1));
        return new PostProcessor([.. single], [.. pair], false, false);
    }
}
