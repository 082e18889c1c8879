using System.Text;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using static AttentionViz.Backend.Tests.Models.ModelTestSupport;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>Loading memory-maps the checkpoint and converts one tensor at a time: peak memory stays near 2× the file.</summary>
[TestClass]
public sealed class LoadMemoryTests
{
    public TestContext TestContext { get; set; } = null!;

    private static long StatusKb(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":"));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
    }

    /// <summary>Writes a safetensors file tensor by tensor from a 1 MiB buffer, so that making it costs no memory.</summary>
    private static long WriteSyntheticCheckpoint(string path, IReadOnlyList<(string Name, long[] Shape)> tensors)
    {
        var header = new JsonObject();
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            var bytes = shape.Aggregate(4L, (a, d) => a * d);
            header[name] = new JsonObject
            {
                ["dtype"] = "F32", ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes)
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8;
        var chunk = new byte[1 << 20];
        var random = new Random(5);
        var floats = new float[chunk.Length / 4];
        for (var i = 0; i < floats.Length; i++) floats[i] = (float)(random.NextDouble() - 0.5) * 0.1f;
        Buffer.BlockCopy(floats, 0, chunk, 0, chunk.Length);
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)padded));
        stream.Write(json);
        for (var i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        for (var left = offset; left > 0; left -= chunk.Length) stream.Write(chunk, 0, (int)Math.Min(left, chunk.Length));
        return 8 + padded + offset;
    }

    [TestMethod]
    public void PeakMemoryWhileLoadingStaysNearTwiceTheCheckpoint()
    {
        if (!File.Exists("/proc/self/clear_refs")) Assert.Inconclusive("needs Linux /proc");
        TorchSetup.EnsureInitialized();
        var folder = TempFolder("memory");
        var config = new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = 8000, ["hidden_size"] = 512, ["intermediate_size"] = 1376,
            ["num_hidden_layers"] = 4, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = 256,
        };
        WriteConfig(folder, config);
        var names = new List<(string, long[])> { ("model.embed_tokens.weight", [8000, 512]), ("model.norm.weight", [512]),
            ("lm_head.weight", [8000, 512]) };
        for (var l = 0; l < 4; l++)
        {
            var p = $"model.layers.{l}.";
            names.AddRange([
                (p + "self_attn.q_proj.weight", [512, 512]), (p + "self_attn.k_proj.weight", [256, 512]), (p + "self_attn.v_proj.weight", [256, 512]),
                (p + "self_attn.o_proj.weight", [512, 512]), (p + "mlp.gate_proj.weight", [1376, 512]), (p + "mlp.up_proj.weight", [1376, 512]),
                (p + "mlp.down_proj.weight", [512, 1376]), (p + "input_layernorm.weight", [512]), (p + "post_attention_layernorm.weight", [512]),
            ]);
        }
        var size = WriteSyntheticCheckpoint(Path.Combine(folder, "model.safetensors"), names);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        File.WriteAllText("/proc/self/clear_refs", "5");                           // reset the peak (VmHWM) to the current RSS
        var before = StatusKb("VmRSS") * 1024;
        using (var loaded = ModelFolder.Load(folder, null))
        {
            var peak = StatusKb("VmHWM") * 1024 - before;
            TestContext.WriteLine($"checkpoint {size / 1e6:F1} MB; peak RSS growth while loading {peak / 1e6:F1} MB ({(double)peak / size:F2}×)");
            // The float32 parameters (1×, allocated uninitialised and written once) and one converted tensor at a time
            // (the largest is 20% here); mapped pages are released after each tensor. Measured 1.2–1.45×. Keeping the
            // mapped pages gave ~2.4×; reading every tensor into memory first would need ≥ 3×.
            Assert.IsLessThan(1.75 * size, peak, $"peak growth {peak / 1e6:F1} MB for a {size / 1e6:F1} MB checkpoint");
            using var result = loaded.Model.Forward(new ForwardInput([[1, 2, 3]]));
            Assert.HasCount(4, result.Attentions);
        }
    }
}
