using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Models;

/// <summary>How a model folder may be loaded.</summary>
/// <param name="AllowPickle">
/// Also load PyTorch pickle checkpoints (pytorch_model.bin) when the folder has no safetensors. Off by default: the
/// restricted unpickler accepts only what a state dict needs, but users must opt in (setting/flag) all the same.
/// </param>
public sealed record ModelLoadOptions(bool AllowPickle = false)
{
    public static ModelLoadOptions Default { get; } = new();
}

/// <summary>What models/list shows about a folder, read from config.json and the weight files' headers only.</summary>
/// <param name="Family">the family's name for people (Gemma 3, Phi-3, …)</param>
/// <param name="Note">how the checkpoint is read when that is not obvious (a multimodal model's images are not), or null</param>
public sealed record ModelDescription(
    string Folder, string Architecture, int Layers, int Heads, int KeyValueHeads, int HiddenSize, int VocabularySize,
    int MaxPositions, bool Causal, int? SlidingWindow, long? ParameterCount, long WeightBytes, string WeightFormat,
    string Family = "", string? Note = null);

/// <summary>Loads a Hugging Face model folder: config.json, weights (safetensors, sharded safetensors, or opted-in pickle) and tokenizer.</summary>
public static class ModelFolder
{
    public static readonly string[] SupportedArchitectures =
        ["bert", "roberta", "distilbert", "gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3", "phi3"];

    /// <summary>The family's name for people, by model_type.</summary>
    public static string Family(string architecture) => architecture switch
    {
        "bert" => "BERT",
        "roberta" => "RoBERTa",
        "distilbert" => "DistilBERT",
        "gpt2" => "GPT-2",
        "llama" => "Llama",
        "mistral" => "Mistral",
        "qwen2" => "Qwen2",
        "qwen3" => "Qwen3",
        "gemma2" => "Gemma 2",
        "gemma3_text" => "Gemma 3",
        "gemma3" => "Gemma 3 (multimodal, text only)",
        "phi3" => "Phi-3",
        _ => architecture,
    };

    public const string SafetensorsFileName = "model.safetensors";
    public const string PickleFileName = "pytorch_model.bin";

    /// <summary>HF class names, for configs without model_type.</summary>
    private static readonly Dictionary<string, string> ByClassName = new(StringComparer.Ordinal)
    {
        ["BertModel"] = "bert", ["BertForMaskedLM"] = "bert", ["BertForPreTraining"] = "bert", ["BertForSequenceClassification"] = "bert",
        ["RobertaModel"] = "roberta", ["RobertaForMaskedLM"] = "roberta", ["RobertaForSequenceClassification"] = "roberta",
        ["DistilBertModel"] = "distilbert", ["DistilBertForMaskedLM"] = "distilbert", ["DistilBertForSequenceClassification"] = "distilbert",
        ["GPT2Model"] = "gpt2", ["GPT2LMHeadModel"] = "gpt2",
        ["LlamaModel"] = "llama", ["LlamaForCausalLM"] = "llama",
        ["MistralModel"] = "mistral", ["MistralForCausalLM"] = "mistral",
        ["Qwen2Model"] = "qwen2", ["Qwen2ForCausalLM"] = "qwen2",
        ["Qwen3Model"] = "qwen3", ["Qwen3ForCausalLM"] = "qwen3",
        ["Gemma2Model"] = "gemma2", ["Gemma2ForCausalLM"] = "gemma2",
        ["Gemma3TextModel"] = "gemma3_text", ["Gemma3ForCausalLM"] = "gemma3_text", ["Gemma3ForConditionalGeneration"] = "gemma3",
        ["Phi3Model"] = "phi3", ["Phi3ForCausalLM"] = "phi3",
    };

    private static string ConfigPath(string folder)
    {
        if (!Directory.Exists(folder)) throw new ModelLoadException($"Model folder not found: {folder}");
        var configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new ModelLoadException($"{folder} has no config.json: it is not a Hugging Face model folder.");
        return configPath;
    }

    /// <summary>The folder's architecture (config.json model_type, else its architectures), checked against the supported ones.</summary>
    public static string ReadArchitecture(string folder)
    {
        var configPath = ConfigPath(folder);
        var header = ConfigJson.Load<ConfigHeader>(configPath);
        var architecture = header.ModelType
            ?? header.Architectures?.Select(a => a is null ? null : ByClassName.GetValueOrDefault(a)).FirstOrDefault(a => a is not null);
        if (architecture is null || !SupportedArchitectures.Contains(architecture))
        {
            var named = architecture
                ?? (header.Architectures is { Length: > 0 } a ? string.Join("/", a.Select(n => n ?? "null")) : "(no model_type)");
            throw new ModelLoadException($"{folder}: architecture '{named}' is not supported. Supported: " +
                $"{string.Join(", ", SupportedArchitectures)}.");
        }
        return architecture;
    }

    /// <summary>Reads and validates the family config (before anything is allocated).</summary>
    public static IModelConfig ReadConfig(string folder)
    {
        var architecture = ReadArchitecture(folder);
        var configPath = ConfigPath(folder);
        ConfigChecks.Header(configPath, ConfigJson.Load<ConfigHeader>(configPath));
        IModelConfig config = architecture switch
        {
            "bert" or "roberta" => ConfigJson.Load<BertConfig>(configPath) with { ModelType = architecture },
            "distilbert" => ConfigJson.Load<DistilBertConfig>(configPath),
            "gpt2" => ConfigJson.Load<Gpt2Config>(configPath),
            "qwen3" => ConfigJson.Load<Qwen3Config>(configPath),
            "gemma2" => ConfigJson.Load<Gemma2Config>(configPath),
            "gemma3_text" => ConfigJson.Load<Gemma3TextConfig>(configPath) with { ModelType = architecture },
            "gemma3" => ConfigJson.Load<Gemma3MultimodalConfig>(configPath).Text(configPath),
            "phi3" => ConfigJson.Load<Phi3Config>(configPath),
            _ => ConfigJson.Load<LlamaConfig>(configPath) with { ModelType = architecture },
        };
        config.Validate(configPath);
        // The decoder's options are checked too (longrope's factor lists against the rotated dims), before any weight.
        if (config is DecoderConfig decoder) _ = decoder.Decoder(configPath);
        return config;
    }

    /// <summary>Architecture, size and window of a model folder without loading its weights (for models/list).</summary>
    public static ModelDescription Describe(string folder)
    {
        var config = ReadConfig(folder);
        var shape = config.Shape;
        var (format, files) = FindWeights(folder);
        long? parameters = null;
        long bytes = files.Sum(FileLength.Of);
        if (format == "safetensors")
        {
            using var file = SafetensorsFile.Open(files[0]);
            parameters = file.Tensors.Sum(t => t.ElementCount);
        }
        else if (format == "sharded safetensors")
            parameters = ShardedWeightSource.CountSafetensorsParameters(files[0]);
        return new ModelDescription(Path.GetFullPath(folder), shape.Architecture, shape.Layers, shape.Heads, shape.KeyValueHeads,
            shape.HiddenSize, shape.VocabularySize, shape.MaxPositions, shape.Causal, shape.SlidingWindow, parameters, bytes, format,
            Family(shape.Architecture), config.Note);
    }

    /// <summary>
    /// The weight format present, in order of preference ("safetensors", "sharded safetensors", "pytorch pickle",
    /// "sharded pytorch pickle", or "none"), and its files (an index first).
    /// </summary>
    private static (string Format, IReadOnlyList<string> Files) FindWeights(string folder)
    {
        var single = Path.Combine(folder, SafetensorsFileName);
        if (File.Exists(single)) return ("safetensors", [single]);
        var index = Path.Combine(folder, ShardedWeightSource.SafetensorsIndexFileName);
        if (File.Exists(index)) return ("sharded safetensors", [index, .. Shards(index, ".safetensors")]);
        var pickle = Path.Combine(folder, PickleFileName);
        if (File.Exists(pickle)) return ("pytorch pickle", [pickle]);
        var pickleIndex = Path.Combine(folder, ShardedWeightSource.PickleIndexFileName);
        if (File.Exists(pickleIndex)) return ("sharded pytorch pickle", [pickleIndex, .. Shards(pickleIndex, ".bin")]);
        return ("none", []);

        IEnumerable<string> Shards(string indexPath, string extension) =>
            ShardedWeightSource.ReadIndex(indexPath, extension).Values.Distinct().Select(s => Path.Combine(folder, s)).Where(File.Exists);
    }

    /// <summary>Opens the folder's checkpoint: model.safetensors, else the sharded index, else (only when allowed) pytorch_model.bin or its sharded
    /// index.</summary>
    public static IWeightSource OpenWeights(string folder, ModelLoadOptions? options = null)
    {
        options ??= ModelLoadOptions.Default;
        var (format, files) = FindWeights(folder);
        switch (format)
        {
            case "safetensors":
                return new SafetensorsWeightSource(files[0]);
            case "sharded safetensors":
                return ShardedWeightSource.OpenSafetensors(files[0]);
            case "pytorch pickle" or "sharded pytorch pickle" when !options.AllowPickle:
                throw new ModelLoadException($"{folder} has only {Path.GetFileName(files[0])}, a PyTorch pickle checkpoint, " +
                    $"which is not loaded by default "
                    + "because pickle files can run code. Convert it to model.safetensors, or opt in to loading pickle checkpoints "
                    + "with --allow-pickle (CLI) or the attentionViz.allowPickle setting.");
            case "pytorch pickle":
                Log.Warn($"{files[0]}: loading a PyTorch pickle checkpoint because pickle loading was allowed; " +
                    $"only state-dict contents are accepted.");
                return TorchPickleWeightSource.Open(files[0]);
            case "sharded pytorch pickle":
                Log.Warn($"{files[0]}: loading sharded PyTorch pickle checkpoints because pickle loading was allowed; " +
                    $"only state-dict contents are accepted.");
                return ShardedWeightSource.OpenPickle(files[0]);
            default:
                throw new ModelLoadException($"{folder} has no weights: " +
                    $"expected {SafetensorsFileName}, {ShardedWeightSource.SafetensorsIndexFileName} "
                    + $"with its shards, or (with pickle loading allowed) {PickleFileName} or {ShardedWeightSource.PickleIndexFileName}.");
        }
    }

    /// <summary>Builds the model the config describes (after validating it).</summary>
    public static ICheckpointModel Create(IModelConfig config, string source = "config.json") => config switch
    {
        BertConfig bert => new BertModel(bert, source),
        DistilBertConfig distil => new DistilBertModel(distil, source),
        Gpt2Config gpt2 => new Gpt2Model(gpt2, source),
        DecoderConfig decoder => new LlamaModel(decoder, source),
        _ => throw new ModelLoadException($"{source}: no model for {config.GetType().Name}."),
    };

    /// <summary>Loads config, weights and tokenizer.</summary>
    /// <exception cref="ModelLoadException">Not a supported model folder, a bad config, or weights that do not match the model.</exception>
    /// <exception cref="ModelFormatException">A weight file or index is malformed or hostile (including refused pickle contents).</exception>
    public static LoadedModel Load(string folder, ModelCatalogEntry? info, ModelLoadOptions? options = null)
    {
        var config = ReadConfig(folder);
        var shape = config.Shape;
        var needed = shape.EstimatedParameters * sizeof(float);
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (available > 0 && needed > available)
            throw new ModelLoadException($"{folder}: the model needs about {needed / (1 << 20):N0} MiB as float32, more than the "
                + $"{available / (1 << 20):N0} MiB of memory available.");

        if (config.Note is { } note) Log.Warn($"{folder}: {note}");
        var tokenizer = TokenizerLoader.TryLoad(folder);
        using var weights = OpenWeights(folder, options);
        var model = Create(config, Path.Combine(folder, "config.json"));
        try
        {
            var unused = model.LoadWeights(weights);
            if (unused.Count > 0) Log.Info($"{weights.Description}: {WeightLoader.DescribeUnused(unused)}.");
            var packing = System.Diagnostics.Stopwatch.StartNew();
            if (model is TorchSharp.torch.nn.Module module) Dense.PackAll(module, LinearKernel.Selected);
            Log.Info($"{folder}: weights loaded, linear layers packed for {LinearKernel.Selected} in {packing.ElapsedMilliseconds} ms");
        }
        catch
        {
            model.Dispose();
            throw;
        }
        info ??= new ModelCatalogEntry(folder, Path.GetFileName(folder.TrimEnd('/')), shape.Architecture, shape.Layers, shape.Heads, "path", folder)
        {
            Family = Family(shape.Architecture), KeyValueHeads = shape.KeyValueHeads, SlidingWindow = shape.SlidingWindow, Note = config.Note,
        };
        return new LoadedModel(info, model, tokenizer);
    }

    public static IModelTokenizer LoadTokenizer(string folder)
    {
        if (!Directory.Exists(folder)) throw new ModelLoadException($"Model folder not found: {folder}");
        return TokenizerLoader.TryLoad(folder) ?? throw new ModelLoadException($"{folder} has no tokenizer files (vocab.txt).");
    }
}
