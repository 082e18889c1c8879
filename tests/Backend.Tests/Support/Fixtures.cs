using AttentionViz.Backend.Storage;
using TorchSharp;

namespace AttentionViz.Backend.Tests.Support;

/// <summary>../shared/fixtures: expectations computed by independent implementations (ONNX Runtime, nanoGPT, llama2.c, torch.nn).</summary>
public static class Fixtures
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Root =>
        Environment.GetEnvironmentVariable("ATTENTIONVIZ_FIXTURES") ?? Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));

    public static string Folder(string name) => Path.Combine(Root, name);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AttentionViz.sln"))) return dir.FullName;
        throw new InvalidOperationException("AttentionViz.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The expected tensors of one fixture, read with the project's validating safetensors reader.</summary>
    public static Dictionary<string, torch.Tensor> Expected(string fixture)
    {
        using var file = SafetensorsFile.Open(Path.Combine(Folder(fixture), "expected.safetensors"));
        return file.Tensors.ToDictionary(t => t.Name, t => file.Read(t.Name).clone());
    }

    public static long[] Longs(torch.Tensor t) => t.to(torch.int64).data<long>().ToArray();

    public static void AssertClose(torch.Tensor expected, torch.Tensor actual, double tolerance, string what)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, $"{what}: shape");
        var maxDiff = (expected.to(torch.float32) - actual.to(torch.float32)).abs().max().item<float>();
        Assert.IsLessThanOrEqualTo(tolerance, maxDiff, $"{what}: max |expected − actual| = {maxDiff:E3} exceeds {tolerance:E0}");
    }
}
