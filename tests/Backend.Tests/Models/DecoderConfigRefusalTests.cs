using System.Text.Json.Nodes;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Tests.Support;
using static AttentionViz.Backend.Tests.Models.ModelTestSupport;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>
/// config.json keys that change the attention are read or refused by name, never dropped: each refusal is a
/// ModelLoadException that names the key and its value, from Describe (models/list) and Load alike, before any weight
/// is read.
/// </summary>
[TestClass]
public sealed class DecoderConfigRefusalTests
{
    [TestMethod]
    [DataRow("llama-tiny", """{"attn_logit_softcapping": 50.0}""", "attn_logit_softcapping", "50", DisplayName = "llama with a score soft-cap")]
    [DataRow("llama-tiny", """{"final_logit_softcapping": 30.0}""", "final_logit_softcapping", "30", DisplayName = "llama with a logit soft-cap")]
    [DataRow("qwen3-tiny", """{"attn_logit_softcapping": 20.0}""", "attn_logit_softcapping", "20", DisplayName = "qwen3 with a score soft-cap")]
    [DataRow("phi3-tiny", """{"query_pre_attn_scalar": 64}""", "query_pre_attn_scalar", "64", DisplayName = "phi3 with Gemma's score scale")]
    [DataRow("llama-tiny", """{"rope_local_base_freq": 10000}""", "rope_local_base_freq", "10000", DisplayName = "llama with a local rope base")]
    [DataRow("gemma2-tiny", """{"rope_local_base_freq": 10000}""", "rope_local_base_freq", "10000", DisplayName = "gemma2 with a local rope base")]
    [DataRow("llama-tiny", """{"partial_rotary_factor": 0.5}""", "partial_rotary_factor", "0.5", DisplayName = "llama with partial rotary")]
    [DataRow("gemma3-tiny", """{"partial_rotary_factor": 0.5}""", "partial_rotary_factor", "0.5", DisplayName = "gemma3 with partial rotary")]
    [DataRow("phi3-tiny", """{"partial_rotary_factor": 1.5}""", "partial_rotary_factor", "1.5", DisplayName = "phi3 rotary factor above 1")]
    [DataRow("qwen3-tiny", """{"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}""", "rope_scaling", "yarn", DisplayName = "qwen3 yarn")]
    [DataRow("gemma3-tiny", """{"rope_scaling": {"rope_type": "mrope", "factor": 2.0}}""", "rope_scaling", "mrope", DisplayName = "gemma3 mrope")]
    [DataRow("phi3-tiny", """{"rope_scaling": {"type": "su", "short_factor": [1], "long_factor": [1]}}""", "rope_scaling", "su",
        DisplayName = "phi3 legacy su")]
    [DataRow("phi3-tiny", """{"rope_scaling": {"type": "linear", "factor": 2.0}}""", "rope_scaling", "linear", DisplayName = "phi3 linear")]
    [DataRow("phi3-tiny", """{"rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1, 1, 1]}}""", "long_factor", "required",
        DisplayName = "longrope without long_factor")]
    [DataRow("phi3-tiny", """{"rope_scaling": {"type": "longrope", "short_factor": [1, 1], "long_factor": [1, 1]}}""", "short_factor", "6",
        DisplayName = "longrope factors of the wrong length")]
    [DataRow("llama-tiny", """{"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 10000.0}}}""", "rope_parameters",
        "full_attention", DisplayName = "llama with rope_parameters per layer type")]
    [DataRow("gemma3-tiny", """{"rope_parameters": {"sliding_attention": {"rope_type": "linear", "factor": 8.0}}}""", "sliding_attention",
        "linear", DisplayName = "gemma3 with scaled local rope")]
    [DataRow("gemma2-tiny", """{"hidden_act": "silu"}""", "hidden_act", "silu", DisplayName = "gemma2 with a conflicting hidden_act")]
    [DataRow("phi3-tiny", """{"attention_bias": true}""", "attention_bias", "true", DisplayName = "phi3 with projection biases")]
    [DataRow("qwen3-tiny", """{"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}""", "quantization_config", "gptq",
        DisplayName = "GPTQ")]
    [DataRow("gemma2-tiny", """{"quantization_config": {"quant_method": "awq", "bits": 4, "version": "gemm"}}""", "quantization_config", "awq",
        DisplayName = "AWQ")]
    [DataRow("phi3-tiny", """{"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": true}}""", "quantization_config",
        "bitsandbytes", DisplayName = "bitsandbytes")]
    [DataRow("llama-tiny", """{"torch_dtype": "int8"}""", "torch_dtype", "int8", DisplayName = "torch_dtype int8")]
    [DataRow("gemma3-tiny", """{"torch_dtype": "float8_e4m3fn"}""", "torch_dtype", "float8_e4m3fn", DisplayName = "torch_dtype float8")]
    [DataRow("qwen3-tiny", """{"dtype": "torch.complex64"}""", "dtype", "complex64", DisplayName = "v5 dtype complex")]
    [DataRow("phi3-tiny", """{"torch_dtype": 16}""", "torch_dtype", "16", DisplayName = "torch_dtype not a name")]
    public void AKeyTheFamilyDoesNotReadIsRefusedByName(string fixture, string patch, string key, string value)
    {
        var folder = TempFolder("refused");
        var config = Config(fixture);
        foreach (var (name, node) in JsonNode.Parse(patch)!.AsObject()) config[name] = node?.DeepClone();
        WriteConfig(folder, config);
        File.Copy(Path.Combine(Fixtures.Folder(fixture), "model.safetensors"), Path.Combine(folder, "model.safetensors"));
        foreach (var attempt in new Action[] { () => ModelFolder.Describe(folder), () => ModelFolder.Load(folder, null) })
        {
            var error = Assert.ThrowsExactly<ModelLoadException>(attempt);
            StringAssert.Contains(error.Message, key);
            StringAssert.Contains(error.Message, value);
        }
    }

    [TestMethod]
    [DataRow("float32")]
    [DataRow("bfloat16")]
    [DataRow("float16")]
    public void ReadableDtypesAndANullQuantizationConfigLoad(string dtype)
    {
        var folder = TempFolder("dtype");
        var config = Config("gemma2-tiny");
        (config["torch_dtype"], config["quantization_config"]) = (dtype, null);
        WriteConfig(folder, config);
        File.Copy(Path.Combine(Fixtures.Folder("gemma2-tiny"), "model.safetensors"), Path.Combine(folder, "model.safetensors"));
        Assert.AreEqual("gemma2", ModelFolder.Describe(folder).Architecture);
    }
}
