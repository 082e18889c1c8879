using System.Runtime.InteropServices;
using AttentionViz.Backend.Models.Core;
using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// A safetensors checkpoint (one memory-mapped file) as the models' weight source. After a tensor has been converted,
/// its pages are handed back to the kernel (madvise DONTNEED on the read-only mapping: a later read faults them in
/// again from the file), so loading holds the model plus one tensor, not the model plus the whole mapped file.
/// </summary>
public sealed partial class SafetensorsWeightSource : IWeightSource
{
    private readonly SafetensorsFile _file;

    public SafetensorsWeightSource(string path)
    {
        _file = SafetensorsFile.Open(path);
        Names = _file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
    }

    public string Description => _file.Path;
    public IReadOnlyCollection<string> Names { get; }
    public long[] Shape(string name) => _file.GetInfo(name).Shape;

    public torch.Tensor ReadFloat32(string name)
    {
        var tensor = _file.ReadFloat32(name);
        ReleasePages(_file.GetSpan(name));
        return tensor;
    }

    public void Dispose() => _file.Dispose();

    /// <summary>Drops the mapped pages of a span that has been read (Linux only; elsewhere the OS reclaims them under pressure).</summary>
    private static unsafe void ReleasePages(ReadOnlySpan<byte> span)
    {
        if (!OperatingSystem.IsLinux() || span.Length == 0) return;
        var page = (nuint)Environment.SystemPageSize;
        fixed (byte* start = span)
        {
            var first = (nuint)start & ~(page - 1);
            var end = ((nuint)start + (nuint)span.Length + page - 1) & ~(page - 1);
            _ = Madvise(first, end - first, MadviseDontNeed);            // advisory: a failure only means the pages stay
        }
    }

    private const int MadviseDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nuint address, nuint length, int advice);
}
