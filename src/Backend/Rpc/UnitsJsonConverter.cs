using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using AttentionViz.Backend.Analysis;

namespace AttentionViz.Backend.Rpc;

/// <summary>
/// Writes a units array's JSON once per array: every view of an analysis shares its layout's units (StoredAnalysis
/// caches the layout), and serialising 91 thumbnails' units one by one, each token's text escaped again, was a third of
/// the model view's time in the backend (issue #15). The bytes are what the default serialisation writes.
/// </summary>
internal sealed class UnitsJsonConverter : JsonConverter<ViewUnit[]>
{
    private readonly ConditionalWeakTable<ViewUnit[], byte[]> _written = new();
    private JsonSerializerOptions? _plain;

    public override ViewUnit[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        JsonSerializer.Deserialize<ViewUnit[]>(ref reader, Plain(options))!;

    public override void Write(Utf8JsonWriter writer, ViewUnit[] value, JsonSerializerOptions options)
    {
        var bytes = _written.GetValue(value, units => JsonSerializer.SerializeToUtf8Bytes(units, Plain(options)));
        writer.WriteRawValue(bytes, skipInputValidation: true);
    }

    /// <summary>The same options without this converter.</summary>
    private JsonSerializerOptions Plain(JsonSerializerOptions options)
    {
        if (_plain is { } plain) return plain;
        plain = new JsonSerializerOptions(options);
        plain.Converters.Remove(this);
        return _plain = plain;
    }
}
