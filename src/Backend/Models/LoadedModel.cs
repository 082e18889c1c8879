using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Models;

/// <summary>What models/list reports about a model, known without loading its weights.</summary>
/// <param name="Source">"embedded", "path" (a folder the client named) or "hf-cache"</param>
/// <param name="Error">why the model cannot be loaded (unsupported architecture, unreadable config), or null</param>
public sealed record ModelCatalogEntry(string Id, string Name, string Architecture, int Layers, int Heads, string Source, string? Path,
    long? SizeBytes = null, string? Error = null)
{
    /// <summary>The family's name for people (Gemma 3, Phi-3, …); empty when the folder could not be read.</summary>
    public string Family { get; init; } = "";
    public int KeyValueHeads { get; init; }

    /// <summary>The most tokens the model takes (its positions); 0 unknown.</summary>
    public int Window { get; init; }

    /// <summary>The first sliding window of the model's layers, or null when every layer sees all earlier tokens.</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>How the checkpoint is read when that is not obvious (a multimodal model's images are not analysed), or null.</summary>
    public string? Note { get; init; }
}

/// <summary>A model ready to run, with its tokenizer.</summary>
/// <remarks>The tokenizer is null for a folder that ships none: such a model still runs raw ids.</remarks>
public sealed class LoadedModel(ModelCatalogEntry info, ITransformerModel model, IModelTokenizer? tokenizer) : IDisposable
{
    public ModelCatalogEntry Info { get; } = info;
    public ITransformerModel Model { get; } = model;
    public IModelTokenizer? Tokenizer { get; } = tokenizer;

    public IModelTokenizer RequireTokenizer() =>
        Tokenizer ?? throw new ModelLoadException($"{Info.Path ?? Info.Id} has no tokenizer files: only raw token ids can be analyzed.");

    /// <summary>True once unloaded: its weights are freed.</summary>
    public bool Disposed { get; private set; }

    public void Dispose()
    {
        Disposed = true;
        Model.Dispose();
    }
}
