using AttentionViz.Backend.Models.Core;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>A safetensors checkpoint as the models' weight source.</summary>
public sealed class SafetensorsWeightSource : IWeightSource, IDisposable
{
    private readonly SafetensorsFile _file;

    public SafetensorsWeightSource(string path)
    {
        _file = SafetensorsFile.Open(path);
        Names = _file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
    }

    public IReadOnlyCollection<string> Names { get; }
    public long[] Shape(string name) => _file.GetInfo(name).Shape;
    public torch.Tensor ReadFloat32(string name) => _file.ReadFloat32(name);
    public void Dispose() => _file.Dispose();
}
