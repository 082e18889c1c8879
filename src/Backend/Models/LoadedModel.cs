using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Models;

/// <summary>What models/list reports about a model, known without loading its weights.</summary>
/// <param name="Source">"embedded", "path" (a folder the client named) or "hf-cache"</param>
/// <param name="Error">why the model cannot be loaded (unsupported architecture, unreadable config), or null</param>
/// <param name="KeyValueHeads">heads of keys and values (fewer than <paramref name="Heads"/> with grouped-query attention); 0 unknown</param>
/// <param name="Window">the most tokens the model takes (its positions); 0 unknown</param>
public sealed record ModelCatalogEntry(string Id, string Name, string Architecture, int Layers, int Heads, string Source, string? Path,
    long? SizeBytes = null, string? Error = null, int KeyValueHeads = 0, int Window = 0);

/// <summary>A model ready to run, with its tokenizer.</summary>
/// <remarks>The tokenizer is null for a folder that ships none: such a model still runs raw ids.</remarks>
public sealed class LoadedModel(ModelCatalogEntry info, ITransformerModel model, IModelTokenizer? tokenizer) : IDisposable
{
    public ModelCatalogEntry Info { get; } = info;
    public ITransformerModel Model { get; } = model;
    public IModelTokenizer? Tokenizer { get; } = tokenizer;

    public IModelTokenizer RequireTokenizer() =>
        Tokenizer ?? throw new ModelLoadException($"{Info.Path ?? Info.Id} has no tokenizer files: only raw token ids can be analyzed.");

    public void Dispose() => Model.Dispose();
}
