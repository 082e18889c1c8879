using System.Text.Json;
using System.Text.Json.Serialization;

namespace AttentionViz.Backend.Models.Core;

/// <summary>The keys of a Hugging Face config.json that the supported architectures read. Unknown keys are ignored.</summary>
public sealed record ModelConfig
{
    [JsonPropertyName("model_type")] public string? ModelType { get; init; }
    [JsonPropertyName("architectures")] public string[]? Architectures { get; init; }
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int NumLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public int NumHeads { get; init; }
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "gelu";
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; }
    [JsonPropertyName("type_vocab_size")] public int TypeVocabSize { get; init; } = 2;
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-12;
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; }
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; init; } = "absolute";

    private static readonly JsonSerializerOptions Options = new() { ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    public static ModelConfig Load(string path)
    {
        ModelConfig? config;
        try
        {
            using var stream = File.OpenRead(path);
            config = JsonSerializer.Deserialize<ModelConfig>(stream, Options);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{path} is not valid JSON: {e.Message}", e);
        }
        return config ?? throw new ModelLoadException($"{path} is empty.");
    }

    /// <summary>Rejects configs that would build a nonsensical or absurdly large model before any allocation.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new ModelLoadException($"{source}: {what}");
        }
        Require(HiddenSize is > 0 and <= 65_536, $"hidden_size {HiddenSize} is out of range.");
        Require(NumLayers is > 0 and <= 1_024, $"num_hidden_layers {NumLayers} is out of range.");
        Require(NumHeads > 0 && HiddenSize % NumHeads == 0, $"hidden_size {HiddenSize} is not divisible by num_attention_heads {NumHeads}.");
        Require(IntermediateSize is > 0 and <= 1 << 20, $"intermediate_size {IntermediateSize} is out of range.");
        Require(VocabSize is > 0 and <= 1 << 24, $"vocab_size {VocabSize} is out of range.");
        Require(MaxPositionEmbeddings is > 0 and <= 1 << 20, $"max_position_embeddings {MaxPositionEmbeddings} is out of range.");
    }
}

/// <summary>A model folder that cannot be loaded: the message names the path and the reason.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null) : Exception(message, inner);
