using System.Text.Json.Nodes;

namespace AttentionViz.Backend.Tests.Support;

/// <summary>
/// Seeded mutations of a JSON document for the config.json and tokenizer.json fuzzers: a value replaced by an edge
/// value of another type, a key removed, an array entry dropped or doubled. Deterministic for a seed.
/// </summary>
internal sealed class JsonMutator(int seed, Func<string, bool>? descendInto = null)
{
    private readonly Random _random = new(seed);

    private static readonly Func<Random, JsonNode?>[] Values =
    [
        _ => null,
        r => JsonValue.Create(r.Next(2) == 0),
        r => JsonValue.Create(new long[] { -1, 0, 1, 2, 3, 7, 64, 65_536, int.MaxValue, long.MaxValue, int.MinValue }[r.Next(11)]),
        r => JsonValue.Create(new[] { 0.0, -0.0, 1e-300, 1e308, -1e308, 0.5, 1e-12, 3.7 }[r.Next(8)]),
        r => JsonValue.Create(new[] { "", "llama", "qwen2", "gpt2", "bert", new string('x', 5000), "\u0000", "(", "float16", "BPE" }[r.Next(10)]),
        _ => new JsonArray(),
        r => new JsonArray(JsonValue.Create(r.Next(-2, 5)), JsonValue.Create("sliding_attention"), null),
        _ => new JsonObject(),
        r => new JsonObject { ["type"] = new[] { "linear", "dynamic", "yarn", "longrope", "Sequence", "Split", "ByteLevel" }[r.Next(7)],
            ["factor"] = new[] { 0.0, 2.0, 1e308 }[r.Next(3)] },
    ];

    public JsonNode Mutate(JsonNode document, int mutations)
    {
        var copy = document.DeepClone();
        for (var i = 0; i < mutations; i++)
        {
            var nodes = new List<(JsonNode Parent, string? Key, int Index)>();
            Collect(copy, nodes);
            if (nodes.Count == 0) break;
            var (parent, key, index) = nodes[_random.Next(nodes.Count)];
            var operation = _random.Next(4);
            if (parent is JsonObject obj && key is not null)
            {
                if (operation == 0) obj.Remove(key);
                else obj[key] = Values[_random.Next(Values.Length)](_random);
            }
            else if (parent is JsonArray array)
            {
                if (operation == 0) array.RemoveAt(index);
                else if (operation == 1) array.Insert(index, array[index]?.DeepClone());
                else array[index] = Values[_random.Next(Values.Length)](_random);
            }
        }
        return copy;
    }

    private void Collect(JsonNode node, List<(JsonNode, string?, int)> into)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    into.Add((obj, key, -1));
                    if (value is not null && (descendInto?.Invoke(key) ?? true)) Collect(value, into);
                }
                break;
            case JsonArray array:
                // Long arrays (merges, vocabularies) get a few entries sampled, not thousands of candidates.
                for (var i = 0; i < array.Count; i += Math.Max(1, array.Count / 16))
                {
                    into.Add((array, null, i));
                    if (array[i] is { } item) Collect(item, into);
                }
                break;
        }
    }
}
