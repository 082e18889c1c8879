using System.Text.Json.Nodes;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>Temporary model folders built from the fixtures (edited configs, rewritten or renamed weights).</summary>
internal static class ModelTestSupport
{
    public static string TempFolder(string tag) => Directory.CreateTempSubdirectory($"avz-{tag}-").FullName;

    public static JsonObject Config(string fixture) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Folder(fixture), "config.json")))!.AsObject();

    public static void WriteConfig(string folder, JsonObject config) =>
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());

    /// <summary>The fixture's weights as float32 tensors, by checkpoint name.</summary>
    public static Dictionary<string, Tensor> Weights(string fixture)
    {
        using var file = SafetensorsFile.Open(Path.Combine(Fixtures.Folder(fixture), "model.safetensors"));
        return file.Tensors.ToDictionary(t => t.Name, t => file.ReadFloat32(t.Name));
    }

    /// <summary>A folder with the fixture's config (edited) and the given weights in model.safetensors.</summary>
    public static string Folder(string tag, string fixture, Action<JsonObject>? editConfig, IEnumerable<(string Name, Tensor Tensor)> weights)
    {
        var folder = TempFolder(tag);
        var config = Config(fixture);
        editConfig?.Invoke(config);
        WriteConfig(folder, config);
        SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), weights);
        return folder;
    }

    public static Tensor Attentions(AttentionViz.Backend.Models.Core.ForwardResult result) =>
        stack(result.Attentions.Select(a => a[0]).ToArray());                      // (L, H, T, T)

    /// <summary>Fills every parameter with seeded random values (the models allocate them uninitialised).</summary>
    public static void Randomize(TorchSharp.torch.nn.Module module, long seed)
    {
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, p) in module.named_parameters())
            p.copy_(name.EndsWith("norm.weight") ? 1 + 0.2 * randn(p.shape, generator: generator) : 0.5 * randn(p.shape, generator: generator));
    }

    public static float MaxDiff(Tensor a, Tensor b) => (a.to(float32) - b.to(float32)).abs().max().item<float>();
}
