using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Runtime;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Models;

/// <summary>Loads a Hugging Face model folder: config.json, model.safetensors and the tokenizer files.</summary>
public static class ModelFolder
{
    public static readonly string[] SupportedArchitectures = ["bert"];

    public static ModelConfig ReadConfig(string folder)
    {
        if (!Directory.Exists(folder)) throw new ModelLoadException($"Model folder not found: {folder}");
        var configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new ModelLoadException($"{folder} has no config.json: it is not a Hugging Face model folder.");
        return ModelConfig.Load(configPath);
    }

    /// <summary>What models/list shows, from config.json and file sizes only: no weights are read.</summary>
    public static ModelInfo Describe(string folder)
    {
        var config = ReadConfig(folder);
        var architecture = config.ModelType ?? "(missing model_type)";
        var weights = Path.Combine(folder, "model.safetensors");
        long? size = File.Exists(weights) ? new FileInfo(weights).Length : null;
        var error = SupportedArchitectures.Contains(architecture)
            ? null
            : $"architecture '{architecture}' is not supported. Supported: {string.Join(", ", SupportedArchitectures)}.";
        return new ModelInfo(folder, Path.GetFileName(folder.TrimEnd('/')), architecture, config.NumLayers, config.NumHeads, "path", folder, size, error);
    }

    public static LoadedModel Load(string folder, ModelInfo? info)
    {
        var config = ReadConfig(folder);
        var architecture = config.ModelType ?? "(missing model_type)";
        if (!SupportedArchitectures.Contains(architecture))
            throw new ModelLoadException($"{folder}: architecture '{architecture}' is not supported. Supported: {string.Join(", ", SupportedArchitectures)}.");
        config.Validate(Path.Combine(folder, "config.json"));

        var tokenizer = TryLoadTokenizer(folder);
        var weightsPath = Path.Combine(folder, "model.safetensors");
        if (!File.Exists(weightsPath))
            throw new ModelLoadException($"{folder} has no model.safetensors.");

        var model = new BertModel(config);
        try
        {
            using var weights = new SafetensorsWeightSource(weightsPath);
            var unused = WeightLoader.Load(model, weights, weightsPath, BertModel.CheckpointPrefixes);
            if (unused.Count > 0)
                Console.Error.WriteLine($"{weightsPath}: ignoring {unused.Count} tensors the attention view does not need ({string.Join(", ", unused.Take(4))}{(unused.Count > 4 ? ", …" : "")}).");
        }
        catch
        {
            model.Dispose();
            throw;
        }
        info ??= new ModelInfo(folder, Path.GetFileName(folder.TrimEnd('/')), architecture, config.NumLayers, config.NumHeads, "path", folder);
        return new LoadedModel(info, model, tokenizer);
    }

    public static IModelTokenizer LoadTokenizer(string folder)
    {
        if (!Directory.Exists(folder)) throw new ModelLoadException($"Model folder not found: {folder}");
        return TryLoadTokenizer(folder) ?? throw new ModelLoadException($"{folder} has no tokenizer files (vocab.txt).");
    }

    private static IModelTokenizer? TryLoadTokenizer(string folder) => TokenizerLoader.TryLoad(folder);
}
