using System.IO.Compression;
using System.Text;
using AttentionViz.Backend.Storage;
using static AttentionViz.Backend.Tests.Models.ModelTestSupport;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Storage;

/// <summary>
/// torch.save checkpoints whose tensors are views of a storage: only the elements a view covers are read, and a storage
/// far larger than its views or than the file is refused before anything is allocated.
/// </summary>
[TestClass]
[DoNotParallelize]                                                                 // ReadChunkBytes is process-wide
public sealed class PickleStorageTests
{
    private sealed record View(string Name, string StorageKey, long StorageElements, long Offset, long[] Size, long[] Stride);

    private static byte[] Long(long v) => [0x8a, 8, .. BitConverter.GetBytes(v)];

    private static byte[] Unicode(string s)
    {
        var utf8 = Encoding.UTF8.GetBytes(s);
        return [(byte)'X', .. BitConverter.GetBytes(utf8.Length), .. utf8];
    }

    private static byte[] Tuple(long[] values) => [(byte)'(', .. values.SelectMany(Long), (byte)'t'];

    /// <summary>A state dict of <c>_rebuild_tensor_v2</c> views, protocol 2, as torch.save writes it.</summary>
    private static byte[] StateDict(IEnumerable<View> views)
    {
        var orderedDict = "ccollections\nOrderedDict\n)R"u8.ToArray();
        var bytes = new List<byte> { 0x80, 2 };
        bytes.AddRange(orderedDict);
        foreach (var v in views)
        {
            bytes.AddRange(Unicode(v.Name));
            bytes.AddRange("ctorch._utils\n_rebuild_tensor_v2\n("u8.ToArray());
            bytes.AddRange([(byte)'(', .. Unicode("storage"), .. "ctorch\nFloatStorage\n"u8.ToArray(), .. Unicode(v.StorageKey),
                .. Unicode("cpu"), .. Long(v.StorageElements), (byte)'t', (byte)'Q']);
            bytes.AddRange([.. Long(v.Offset), .. Tuple(v.Size), .. Tuple(v.Stride), 0x89, .. orderedDict, (byte)'t', (byte)'R', (byte)'s']);
        }
        bytes.Add((byte)'.');
        return [.. bytes];
    }

    private static string Checkpoint(string tag, IEnumerable<View> views, Dictionary<string, float[]> storages, bool deflate = false)
    {
        var path = Path.Combine(TempFolder(tag), "pytorch_model.bin");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var s = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open()) s.Write(StateDict(views));
        foreach (var (key, values) in storages)
        {
            using var s = zip.CreateEntry($"archive/data/{key}", deflate ? CompressionLevel.Fastest : CompressionLevel.NoCompression).Open();
            s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        }
        return path;
    }

    private static float[] Arange(int n) => Enumerable.Range(0, n).Select(i => (float)i).ToArray();

    [TestMethod]
    [DataRow(1 << 30, DisplayName = "one read")]
    [DataRow(100, DisplayName = "reads of 100 bytes")]
    public void ViewsIntoAStorageReadTheirOwnElements(int chunkBytes)
    {
        var path = Checkpoint("pickle-views", [
            new("middle", "0", 3 * 4096, 4096, [64, 64], [64, 1]),
            new("transposed", "0", 3 * 4096, 8192, [64, 64], [1, 64]),
            new("first", "0", 3 * 4096, 0, [10], [1]),
        ], new() { ["0"] = Arange(3 * 4096) });
        var previous = TorchPickleWeightSource.ReadChunkBytes;
        TorchPickleWeightSource.ReadChunkBytes = chunkBytes;
        try
        {
            using var source = TorchPickleWeightSource.Open(path);
            using var all = arange(3 * 4096, dtype: ScalarType.Float32);
            using var middle = source.ReadFloat32("middle");
            Assert.IsTrue(middle.allclose(all.narrow(0, 4096, 4096).reshape(64, 64), rtol: 0, atol: 0), "offset view");
            using var transposed = source.ReadFloat32("transposed");
            Assert.IsTrue(transposed.allclose(all.narrow(0, 8192, 4096).reshape(64, 64).t(), rtol: 0, atol: 0), "strided view");
            using var first = source.ReadFloat32("first");
            Assert.IsTrue(first.allclose(all.narrow(0, 0, 10), rtol: 0, atol: 0), "leading view");
        }
        finally
        {
            TorchPickleWeightSource.ReadChunkBytes = previous;
        }
    }

    [TestMethod]
    public void AStorageFarLargerThanItsViewsIsRefused()
    {
        // A [64, 64] view over 200,000 elements: the 1.9 GB case in small.
        var path = Checkpoint("pickle-huge-storage", [new("w", "0", 200_000, 0, [64, 64], [64, 1])], new() { ["0"] = new float[200_000] });
        var error = Assert.ThrowsExactly<ModelFormatException>(() => TorchPickleWeightSource.Open(path));
        StringAssert.Contains(error.Message, "storage '0' holds 200,000 elements");
        StringAssert.Contains(error.Message, "use 4,096");
        StringAssert.Contains(error.Message, path);
    }

    [TestMethod]
    public void AStorageFarLargerThanTheFileIsRefused()
    {
        // 4M zeros deflate to a few KB: reading them would allocate 16 MB from a tiny file.
        const int n = 4 << 20;
        var path = Checkpoint("pickle-bomb", [new("w", "0", n, 0, [n], [1])], new() { ["0"] = new float[n] }, deflate: true);
        Assert.IsLessThan(1 << 20, new FileInfo(path).Length);
        var error = Assert.ThrowsExactly<ModelFormatException>(() => TorchPickleWeightSource.Open(path));
        StringAssert.Contains(error.Message, "unpacks to 16,777,216 bytes");
    }

    [TestMethod]
    public void TwoTensorsSharingOneStorageCountTogether()
    {
        // Fused q/k halves of one storage: together they cover it, so it is not "far larger" than either view.
        var path = Checkpoint("pickle-shared", [
            new("q", "0", 2 * 40_000, 0, [200, 200], [200, 1]),
            new("k", "0", 2 * 40_000, 40_000, [200, 200], [200, 1]),
        ], new() { ["0"] = Arange(80_000) });
        using var source = TorchPickleWeightSource.Open(path);
        using var k = source.ReadFloat32("k");
        Assert.AreEqual(40_000f, k[0, 0].item<float>());
        Assert.AreEqual(79_999f, k[199, 199].item<float>());
    }
}
