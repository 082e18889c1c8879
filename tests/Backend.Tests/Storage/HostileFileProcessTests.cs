using System.Diagnostics;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Storage;

/// <summary>
/// Issue #12 points 4 and 6 through the real backend over JSON-RPC: a FIFO or /dev/zero in a model folder is refused
/// with the model-file error, within seconds and without the memory it used to take, and the server keeps answering.
/// </summary>
[TestClass]
public sealed class HostileFileProcessTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [TestMethod]
    public async Task FifosAndDevZeroInModelFolders_AreRefusedAndTheServerKeepsAnswering()
    {
        var root = Directory.CreateTempSubdirectory("avz-hostile-rpc-").FullName;
        try
        {
            var bert = Fixtures.Folder("bert-tiny");
            string Folder(string name, bool config = true, bool weights = true)
            {
                var folder = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
                if (config) File.Copy(Path.Combine(bert, "config.json"), Path.Combine(folder, "config.json"));
                if (weights) File.Copy(Path.Combine(bert, "model.safetensors"), Path.Combine(folder, "model.safetensors"));
                return folder;
            }
            var fifoConfig = Folder("fifo-config", config: false);
            HostileFileTests.MakeFifo(Path.Combine(fifoConfig, "config.json"));
            var fifoWeights = Folder("fifo-weights", weights: false);
            HostileFileTests.MakeFifo(Path.Combine(fifoWeights, "model.safetensors"));
            var zeroTokenizer = Folder("zero-tokenizer");
            File.CreateSymbolicLink(Path.Combine(zeroTokenizer, "tokenizer.json"), "/dev/zero");

            await using var client = RawRpcClient.Start("serve");
            await client.CallAsync("initialize", new { clientName = "hostile-files" }, Bound);

            var watch = Stopwatch.StartNew();
            var list = await client.CallAsync("models/list", new { paths = new[] { fifoConfig, fifoWeights } }, Bound);
            Assert.IsNotNull(list["result"], list.ToJsonString());
            var entries = list["result"]!.AsArray().Select(e => e!.AsObject()).ToDictionary(e => e["id"]!.GetValue<string>());
            StringAssert.Contains(entries[fifoConfig]["error"]!.GetValue<string>(), "FIFO");
            StringAssert.Contains(entries[fifoWeights]["error"]!.GetValue<string>(), "FIFO");
            var listMs = watch.ElapsedMilliseconds;

            watch.Restart();
            var weights = await client.CallAsync("attention/analyze", new { text = "hello", modelId = fifoWeights }, Bound);
            AssertError(weights, -32002, Path.Combine(fifoWeights, "model.safetensors"), "FIFO");
            var zero = await client.CallAsync("attention/analyze", new { text = "hello", modelId = zeroTokenizer }, Bound);
            AssertError(zero, -32002, Path.Combine(zeroTokenizer, "tokenizer.json"), "character device");
            var analyzeMs = watch.ElapsedMilliseconds;

            var peak = PeakRssBytes(client.Process.Id);
            var again = await client.CallAsync("models/list", new { }, Bound);
            Assert.IsNotNull(again["result"], client.Stderr);
            Console.WriteLine($"refused: models/list of 2 FIFO folders {listMs} ms, 2 analyzes {analyzeMs} ms; peak RSS {peak >> 20} MB");
            Assert.IsLessThan(1L << 30, peak, "peak RSS of the backend");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void AssertError(JsonObject response, int code, params string[] fragments)
    {
        var error = response["error"]?.AsObject() ?? throw new AssertFailedException($"no error: {response.ToJsonString()}");
        Assert.AreEqual(code, error["code"]!.GetValue<int>(), error.ToJsonString());
        foreach (var f in fragments) StringAssert.Contains(error["message"]!.GetValue<string>(), f);
    }

    /// <summary>VmHWM: the most resident memory the process has had.</summary>
    private static long PeakRssBytes(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0]) * 1024;
    }
}
