using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Runtime;

/// <summary>What models/list reports about a model, known without loading its weights.</summary>
public sealed record ModelInfo(string Id, string Name, string Architecture, int Layers, int Heads, string Source, string? Path);

/// <summary>A model ready to run, with its tokenizer.</summary>
/// <remarks>The tokenizer is null for a folder that ships none: such a model still runs raw ids.</remarks>
public sealed class LoadedModel(ModelInfo info, ITransformerModel model, IModelTokenizer? tokenizer) : IDisposable
{
    public ModelInfo Info { get; } = info;
    public ITransformerModel Model { get; } = model;
    public IModelTokenizer? Tokenizer { get; } = tokenizer;

    public IModelTokenizer RequireTokenizer() =>
        Tokenizer ?? throw new ModelLoadException($"{Info.Path ?? Info.Id} has no tokenizer files: only raw token ids can be analyzed.");

    public void Dispose() => Model.Dispose();
}
