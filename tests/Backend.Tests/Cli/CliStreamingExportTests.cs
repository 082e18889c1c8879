using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Cli;

/// <summary>
/// `analyze --out x.safetensors` streams every head's attention into the file; recomputed attention (a long analysis)
/// comes out as the fixture's, `--heads` writes the chosen heads only, `--no-attentions` none, and bad selections are
/// refused in one line.
/// </summary>
[TestClass]
public sealed class CliStreamingExportTests
{
    private static readonly Dictionary<string, string> Recompute = new() { ["ATTENTIONVIZ_KEEP_PROBABILITIES_MB"] = "0" };

    private static (string Ids, Tensor Attentions) Sequence(string fixture)
    {
        var expected = Fixtures.Expected(fixture);
        return (string.Join(',', Fixtures.Longs(expected["s1.input_ids"])), expected["s1.attentions"]);
    }

    private static string Out(string extension) => Path.Combine(Directory.CreateTempSubdirectory("avz-cli").FullName, "a" + extension);

    [TestMethod]
    [DataRow("llama-tiny")]  // recomputed from the kept queries and keys
    [DataRow("gpt2-tiny")]   // stored probabilities
    [DataRow("qwen3-tiny")]  // recomputed: q/k norms, head_dim 32 ≠ hidden / heads
    [DataRow("gemma2-tiny")] // recomputed: soft-capped scores and a window on layer 0
    [DataRow("gemma3-tiny")] // recomputed: local and global rotary tables
    [DataRow("phi3-tiny")]   // recomputed: partial rotary
    public void EveryHeadStreamedToTheFileIsTheFixtures(string fixture)
    {
        var (ids, attentions) = Sequence(fixture);
        var path = Out(".safetensors");
        var (code, _, stderr) = BackendCli.RunWith(Recompute, "analyze", "--model", Fixtures.Folder(fixture), "--ids", ids, "--out", path);
        Assert.AreEqual(0, code, stderr);
        using var file = SafetensorsFile.Open(path);
        Fixtures.AssertClose(attentions, file.Read("attentions"), 1e-4, $"{fixture} attentions");
    }

    [TestMethod]
    public void HeadsSelectsThoseHeadsAndNamesThem()
    {
        var (ids, attentions) = Sequence("llama-tiny");
        var path = Out(".safetensors");
        var (code, _, stderr) = BackendCli.RunWith(Recompute, "analyze", "--model", Fixtures.Folder("llama-tiny"), "--ids", ids,
            "--out", path, "--heads", "1:2,0:3");
        Assert.AreEqual(0, code, stderr);
        using var file = SafetensorsFile.Open(path);
        Fixtures.AssertClose(stack([attentions[1, 2], attentions[0, 3]]), file.Read("attentions"), 1e-4, "the chosen heads");
        CollectionAssert.AreEqual(new long[] { 1, 2, 0, 3 }, Fixtures.Longs(file.Read("attention_heads").flatten()));
    }

    [TestMethod]
    public void NoAttentionsWritesTheHiddenStatesOnly()
    {
        var (ids, _) = Sequence("llama-tiny");
        var path = Out(".safetensors");
        var (code, _, stderr) = BackendCli.Run("analyze", "--model", Fixtures.Folder("llama-tiny"), "--ids", ids, "--out", path, "--no-attentions");
        Assert.AreEqual(0, code, stderr);
        using var file = SafetensorsFile.Open(path);
        var names = file.Tensors.Select(t => t.Name).ToArray();
        CollectionAssert.DoesNotContain(names, "attentions");
        CollectionAssert.Contains(names, "last_hidden_state");
    }

    [TestMethod]
    [DataRow("2:0", "layer")]      // llama-tiny has layers 0..1
    [DataRow("0:x", "0:x")]
    [DataRow("0:1,0:1", "0:1")]
    public void ABadHeadSelectionIsRefusedInOneLine(string heads, string named)
    {
        var (ids, _) = Sequence("llama-tiny");
        var path = Out(".safetensors");
        var (code, stdout, stderr) = BackendCli.Run("analyze", "--model", Fixtures.Folder("llama-tiny"), "--ids", ids, "--out", path,
            "--heads", heads);
        Assert.AreEqual(2, code, stderr);
        Assert.AreEqual("", stdout);
        var errors = stderr.Split('\n').Where(l => l.StartsWith("error:")).ToArray();
        Assert.HasCount(1, errors, stderr);
        StringAssert.Contains(errors[0], named);
        Assert.IsFalse(File.Exists(path), "nothing written");
    }
}
