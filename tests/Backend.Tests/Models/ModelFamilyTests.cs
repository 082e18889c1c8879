using System.Text.Json.Nodes;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Storage;
using AttentionViz.Backend.Tests.Support;
using TorchSharp;
using static AttentionViz.Backend.Tests.Models.ModelTestSupport;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>Family options (GQA, RoBERTa positions, tied heads, sliding windows), structure, config checks and Describe.</summary>
[TestClass]
public sealed class ModelFamilyTests
{
    [TestInitialize]
    public void Init() => TorchSetup.EnsureInitialized();

    private static LlamaConfig TinyLlama(string type = "llama", int heads = 4, int kvHeads = 2) => new()
    {
        ModelType = type, VocabSize = 50, HiddenSize = 32, IntermediateSize = 48, NumLayers = 1, NumHeads = heads,
        NumKeyValueHeads = kvHeads, HeadDimension = 8, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5,
    };

    [TestMethod]
    [DataRow(4, 2, DisplayName = "GQA 4 heads / 2 kv heads")]
    [DataRow(8, 4, DisplayName = "GQA 8 heads / 4 kv heads")]
    [DataRow(6, 3, DisplayName = "GQA 6 heads / 3 kv heads")]
    [DataRow(4, 1, DisplayName = "MQA 4 heads / 1 kv head")]
    [DataRow(4, 4, DisplayName = "MHA 4 heads / 4 kv heads")]
    public void QueryHeadUsesKvHeadDividedByGroupSize(int heads, int kvHeads)
    {
        // Zero one kv head's key projection: its keys are all 0, so every query head that uses it attends uniformly
        // (1/(i+1) over the causal prefix), and every other head does not.
        using var model = new LlamaModel(TinyLlama(heads: heads, kvHeads: kvHeads) with { HiddenSize = 8 * heads });
        var silenced = kvHeads - 1;
        Randomize(model, 11);
        using (no_grad())
        {
            var k = model.named_parameters().Single(p => p.name == "model.layers.0.self_attn.k_proj.weight").parameter;
            k[TensorIndex.Slice(silenced * 8, (silenced + 1) * 8)].zero_();
        }
        using var result = model.Forward(new ForwardInput([[3, 14, 15, 9, 26, 5, 35, 8]]));
        var p = result.Attentions[0][0];                                             // (H, T, T)
        var uniform = tril(ones(8, 8)) / arange(1, 9, dtype: float32).unsqueeze(1);
        var group = heads / kvHeads;
        for (var h = 0; h < heads; h++)
        {
            var isUniform = MaxDiff(p[h], uniform) < 1e-6;
            Assert.AreEqual(h / group == silenced, isUniform, $"query head {h} should use kv head {h / group}");
        }
    }

    [TestMethod]
    public void RobertaPositionIdsSkipPadding()
    {
        // HF create_position_ids_from_input_ids with padding_idx 1.
        var ids = tensor(new long[] { 0, 31, 32, 2, 1, 1, /**/ 1, 1, 0, 40, 41, 2 }, [2, 6]);
        var positions = BertEmbeddings.RobertaPositionIds(ids, 1);
        CollectionAssert.AreEqual(new long[] { 2, 3, 4, 5, 1, 1, /**/ 1, 1, 2, 3, 4, 5 }, positions.data<long>().ToArray());
    }

    [TestMethod]
    public void RobertaWithShiftedPositionTableMatchesBertFixture()
    {
        // RoBERTa position p uses row p + 2 (padding_idx 1, no padding in s0). Give it BERT's table shifted by two rows
        // and roberta.-prefixed names: the attention must equal bert-tiny's expectation.
        var weights = Weights("bert-tiny");
        var table = weights["embeddings.position_embeddings.weight"];
        var shifted = cat([zeros(2, table.shape[1]), table[TensorIndex.Slice(0, table.shape[0] - 2)]], 0);
        var renamed = weights.Select(w => ("roberta." + w.Key, w.Key == "embeddings.position_embeddings.weight" ? shifted : w.Value))
            .Append(("lm_head.dense.weight", zeros(4, 4))).ToList();
        var folder = Folder("roberta", "bert-tiny",
            c => { c["model_type"] = "roberta"; c["pad_token_id"] = 1; c["architectures"] = new JsonArray("RobertaForMaskedLM"); }, renamed);
        var expected = Fixtures.Expected("bert-tiny");
        var ids = Fixtures.Longs(expected["s0.input_ids"]);
        Assert.DoesNotContain(1L, ids);
        using var loaded = ModelFolder.Load(folder, null);
        Assert.AreEqual("roberta", loaded.Model.Architecture);
        Assert.AreEqual(128 - 2, loaded.Model.MaxPositions, "RoBERTa's window is max_position_embeddings − padding_idx − 1");
        using var result = loaded.Model.Forward(new ForwardInput([ids]));
        Fixtures.AssertClose(expected["s0.attentions"], Attentions(result), 1e-4, "roberta s0");
    }

    [TestMethod]
    public void Gpt2WithoutLmHeadTiesLogitsToWte()
    {
        using var loaded = ModelFolder.Load(Fixtures.Folder("gpt2-tiny"), null);
        var model = (Gpt2Model)loaded.Model;
        Assert.IsFalse(model.named_parameters().Any(p => p.name.StartsWith("lm_head")), "tied: no separate lm_head parameter");
        using var result = model.Forward(new ForwardInput([[5, 6, 7, 8]], WantLogits: true));
        var wte = model.named_parameters().Single(p => p.name == "transformer.wte.weight").parameter;
        Assert.AreEqual(0f, MaxDiff(result.Logits!, result.LastHiddenState.matmul(wte.t())));
    }

    [TestMethod]
    public void UntiedGpt2RequiresItsLmHead()
    {
        var folder = Folder("gpt2-untied", "gpt2-tiny", c => c["tie_word_embeddings"] = false, Weights("gpt2-tiny").Select(w => (w.Key, w.Value)));
        var error = Assert.ThrowsExactly<ModelLoadException>(() => ModelFolder.Load(folder, null));
        StringAssert.Contains(error.Message, "missing lm_head.weight");
    }

    [TestMethod]
    public void MistralSlidingWindowMasksOlderKeys()
    {
        var weights = Weights("llama-tiny").Select(w => (w.Key, w.Value)).ToList();
        var expected = Fixtures.Expected("llama-tiny");
        var ids = Fixtures.Longs(expected["s0.input_ids"]);                          // 16 tokens
        // A window as long as the input changes nothing: equal to the Llama expectation.
        var wide = Folder("mistral-wide", "llama-tiny", c => { c["model_type"] = "mistral"; c["sliding_window"] = 16; }, weights);
        using (var loaded = ModelFolder.Load(wide, null))
        using (var result = loaded.Model.Forward(new ForwardInput([ids])))
            Fixtures.AssertClose(expected["s0.attentions"], Attentions(result), 1e-4, "mistral, window ≥ T");
        // A window of 4: query i sees keys i−3..i only, exactly.
        var narrow = Folder("mistral-narrow", "llama-tiny", c => { c["model_type"] = "mistral"; c["sliding_window"] = 4; }, weights);
        Assert.AreEqual(4, ModelFolder.Describe(narrow).SlidingWindow);
        using (var loaded = ModelFolder.Load(narrow, null))
        using (var result = loaded.Model.Forward(new ForwardInput([ids])))
        {
            var a = Attentions(result);
            var i = arange(16).unsqueeze(1);
            var j = arange(16).unsqueeze(0);
            var outside = (j > i).logical_or(i - j >= 4);
            Assert.AreEqual(0f, a.masked_select(outside.expand_as(a)).abs().max().item<float>());
            Assert.IsLessThan(1e-5, (a.sum(-1) - 1).abs().max().item<float>());
            Assert.IsGreaterThan(1e-3, MaxDiff(a, expected["s0.attentions"]), "the window must change the attention");
        }
    }

    [TestMethod]
    public void Qwen2UsesTheWindowOnlyWhenEnabledAndFromMaxWindowLayers()
    {
        var config = TinyLlama("qwen2") with { NumLayers = 4, SlidingWindow = 8, MaxWindowLayers = 2 };
        Assert.IsNull(config.WindowOf(3), "use_sliding_window is false by default");
        var enabled = config with { UseSlidingWindow = true };
        CollectionAssert.AreEqual(new int?[] { null, null, 8, 8 }, Enumerable.Range(0, 4).Select(enabled.WindowOf).ToArray());
        Assert.IsNull((TinyLlama("llama") with { SlidingWindow = 8 }).WindowOf(0), "llama has no sliding window");
        var typed = enabled with { LayerTypes = ["sliding_attention", "full_attention", "full_attention", "sliding_attention"] };
        CollectionAssert.AreEqual(new int?[] { 8, null, null, 8 }, Enumerable.Range(0, 4).Select(typed.WindowOf).ToArray(),
            "explicit layer_types win");
        Assert.ThrowsExactly<ModelLoadException>(() => (typed with { LayerTypes = ["sliding_attention"] }).Validate("config.json"));
    }

    private static List<string> NamesAndShapes(nn.Module module) =>
        module.named_parameters().Select(p => $"{p.name} [{string.Join(", ", p.parameter.shape)}]").Order(StringComparer.Ordinal).ToList();

    private static List<string> CheckpointNamesAndShapes(string fixture, Func<string, bool> keep)
    {
        using var file = SafetensorsFile.Open(Path.Combine(Fixtures.Folder(fixture), "model.safetensors"));
        return file.Tensors.Where(t => keep(t.Name)).Select(t => $"{t.Name} [{string.Join(", ", t.Shape)}]").Order(StringComparer.Ordinal).ToList();
    }

    [TestMethod]
    public void StructureMatchesFixtureCheckpoints()
    {
        // Parameter names and shapes of a model built from the fixture's config = the checkpoint's keys (GPT-2's
        // Conv1D matrices transposed, BERT's pooler not used).
        using (var gpt2 = ModelFolder.Create(ModelFolder.ReadConfig(Fixtures.Folder("gpt2-tiny"))))
        {
            var expected = CheckpointNamesAndShapes("gpt2-tiny", _ => true).Select(s =>
                Gpt2Model.Conv1DWeights.Any(c => s.StartsWith("transformer.h.") && s.Contains(c + " "))
                    ? System.Text.RegularExpressions.Regex.Replace(s, @"\[(\d+), (\d+)\]", "[$2, $1]") : s).Order(StringComparer.Ordinal).ToList();
            CollectionAssert.AreEqual(expected, NamesAndShapes((nn.Module)gpt2));
        }
        using (var llama = ModelFolder.Create(ModelFolder.ReadConfig(Fixtures.Folder("llama-tiny"))))
            CollectionAssert.AreEqual(CheckpointNamesAndShapes("llama-tiny", _ => true), NamesAndShapes((nn.Module)llama));
        using (var bert = ModelFolder.Create(ModelFolder.ReadConfig(Fixtures.Folder("bert-tiny"))))
            CollectionAssert.AreEqual(CheckpointNamesAndShapes("bert-tiny", n => !n.StartsWith("pooler.")), NamesAndShapes((nn.Module)bert));
    }

    [TestMethod]
    public void Qwen2AndMistralStructure()
    {
        using var qwen = new LlamaModel(TinyLlama("qwen2", 4, 2) with { NumLayers = 1, TieWordEmbeddings = true });
        CollectionAssert.AreEqual(new[]
        {
            "model.embed_tokens.weight [50, 32]",
            "model.layers.0.input_layernorm.weight [32]",
            "model.layers.0.mlp.down_proj.weight [32, 48]",
            "model.layers.0.mlp.gate_proj.weight [48, 32]",
            "model.layers.0.mlp.up_proj.weight [48, 32]",
            "model.layers.0.post_attention_layernorm.weight [32]",
            "model.layers.0.self_attn.k_proj.bias [16]",
            "model.layers.0.self_attn.k_proj.weight [16, 32]",
            "model.layers.0.self_attn.o_proj.weight [32, 32]",
            "model.layers.0.self_attn.q_proj.bias [32]",
            "model.layers.0.self_attn.q_proj.weight [32, 32]",
            "model.layers.0.self_attn.v_proj.bias [16]",
            "model.layers.0.self_attn.v_proj.weight [16, 32]",
            "model.norm.weight [32]",
        }, NamesAndShapes(qwen));
        using var mistral = new LlamaModel(TinyLlama("mistral", 4, 1));
        var names = NamesAndShapes(mistral);
        Assert.IsFalse(names.Any(n => n.Contains(".bias")), "Mistral has no projection biases");
        CollectionAssert.Contains(names, "lm_head.weight [50, 32]");
        CollectionAssert.Contains(names, "model.layers.0.self_attn.k_proj.weight [8, 32]");
        using var biased = new LlamaModel(TinyLlama("llama") with { AttentionBias = true, MlpBias = true });
        var biases = NamesAndShapes(biased).Where(n => n.Contains(".bias")).ToList();
        CollectionAssert.AreEqual(new[]
        {
            "model.layers.0.mlp.down_proj.bias [32]", "model.layers.0.mlp.gate_proj.bias [48]", "model.layers.0.mlp.up_proj.bias [48]",
            "model.layers.0.self_attn.k_proj.bias [16]", "model.layers.0.self_attn.o_proj.bias [32]",
            "model.layers.0.self_attn.q_proj.bias [32]", "model.layers.0.self_attn.v_proj.bias [16]",
        }, biases, "Llama's attention_bias covers q, k, v and o; mlp_bias the MLP");
    }

    [TestMethod]
    public void DistilBertStructure()
    {
        using var model = new DistilBertModel(new DistilBertConfig
        {
            VocabSize = 30, MaxPositionEmbeddings = 16, NLayers = 1, NHeads = 2, Dim = 8,
            HiddenDim = 12
        });
        CollectionAssert.AreEqual(new[]
        {
            "embeddings.LayerNorm.bias [8]", "embeddings.LayerNorm.weight [8]",
            "embeddings.position_embeddings.weight [16, 8]", "embeddings.word_embeddings.weight [30, 8]",
            "transformer.layer.0.attention.k_lin.bias [8]", "transformer.layer.0.attention.k_lin.weight [8, 8]",
            "transformer.layer.0.attention.out_lin.bias [8]", "transformer.layer.0.attention.out_lin.weight [8, 8]",
            "transformer.layer.0.attention.q_lin.bias [8]", "transformer.layer.0.attention.q_lin.weight [8, 8]",
            "transformer.layer.0.attention.v_lin.bias [8]", "transformer.layer.0.attention.v_lin.weight [8, 8]",
            "transformer.layer.0.ffn.lin1.bias [12]", "transformer.layer.0.ffn.lin1.weight [12, 8]",
            "transformer.layer.0.ffn.lin2.bias [8]", "transformer.layer.0.ffn.lin2.weight [8, 12]",
            "transformer.layer.0.output_layer_norm.bias [8]", "transformer.layer.0.output_layer_norm.weight [8]",
            "transformer.layer.0.sa_layer_norm.bias [8]", "transformer.layer.0.sa_layer_norm.weight [8]",
        }, NamesAndShapes(model));
    }

    [TestMethod]
    public void DistilBertMatchesBertFixtureWithRenamedWeights()
    {
        // DistilBERT's layer is BERT's layer under other names (and without token types): bert-tiny's weights renamed,
        // with token type 0's embedding folded into the position table, give bert-tiny's expected attention.
        var w = Weights("bert-tiny");
        var rename = new Dictionary<string, string>
        {
            ["attention.self.query"] = "attention.q_lin", ["attention.self.key"] = "attention.k_lin", ["attention.self.value"] = "attention.v_lin",
            ["attention.output.dense"] = "attention.out_lin", ["attention.output.LayerNorm"] = "sa_layer_norm",
            ["intermediate.dense"] = "ffn.lin1", ["output.dense"] = "ffn.lin2", ["output.LayerNorm"] = "output_layer_norm",
        };
        var renamed = new List<(string, Tensor)>();
        foreach (var (name, value) in w)
        {
            if (name.StartsWith("pooler.") || name == "embeddings.token_type_embeddings.weight") continue;
            var n = name.Replace("encoder.layer.", "transformer.layer.");
            foreach (var (from, to) in rename)
                if (n.Contains("." + from + ".")) { n = n.Replace("." + from + ".", "." + to + "."); break; }
            var v = name == "embeddings.position_embeddings.weight" ? value + w["embeddings.token_type_embeddings.weight"][0] : value;
            renamed.Add(("distilbert." + n, v));
        }
        var folder = Folder("distilbert", "bert-tiny", c =>
        {
            foreach (var key in c.Select(p => p.Key).ToList()) if (key != "vocab_size" && key != "max_position_embeddings") c.Remove(key);
            c["model_type"] = "distilbert"; c["dim"] = 64; c["n_layers"] = 2; c["n_heads"] = 4; c["hidden_dim"] = 128; c["activation"] = "gelu";
        }, renamed);
        var expected = Fixtures.Expected("bert-tiny");
        using var loaded = ModelFolder.Load(folder, null);
        Assert.AreEqual("distilbert", loaded.Model.Architecture);
        foreach (var key in new[] { "s0", "s2" })
        {
            using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected[$"{key}.input_ids"])], null,
                [Fixtures.Longs(expected[$"{key}.attention_mask"])]));
            Fixtures.AssertClose(expected[$"{key}.attentions"], Attentions(result), 1e-4, $"distilbert {key}");
            Fixtures.AssertClose(expected[$"{key}.last_hidden_state"], result.LastHiddenState[0], 1e-3, $"distilbert {key} hidden");
        }
    }

    private const string TinyLlamaJson = """{"model_type":"llama","vocab_size":1000,"hidden_size":64,"intermediate_size":10,"num_hidden_layers":""" +
        """2,"num_attention_heads":4,"max_position_embeddings":128""";
    private const string TinyBertJson = """{"model_type":"bert","vocab_size":1000,"hidden_size":64,"intermediate_size":10,"num_hidden_layers":""" +
        """2,"num_attention_heads":4,"max_position_embeddings":128""";
    private const string TinyGpt2Json = """{"model_type":"gpt2","vocab_size":1000,"n_embd":64,"n_layer":2,"n_head":4,"n_positions":128""";

    [TestMethod]
    [DataRow("""{"model_type":"llama","vocab_size":1000,"hidden_size":1000000,"intermediate_size":10,"num_hidden_layers":""" +
        """2,"num_attention_heads":4,"max_position_embeddings":128}""", "hidden size")]
    [DataRow("""{"model_type":"llama","vocab_size":16000000,"hidden_size":65536,"intermediate_size":1048576,"num_hidden_layers":""" +
        """1000,"num_attention_heads":512,"max_position_embeddings":128}""", "parameters")]
    [DataRow("""{"model_type":"gpt2","n_layer":100000}""", "number of layers")]
    [DataRow("""{"model_type":"llama","vocab_size":1000,"hidden_size":64,"intermediate_size":10,"num_hidden_layers":""" +
        """2,"num_attention_heads":4,"num_key_value_heads":3,"max_position_embeddings":128}""", "num_key_value_heads")]
    [DataRow("""{"model_type":"llama","vocab_size":1000,"hidden_size":64,"intermediate_size":10,"num_hidden_layers":""" +
        """2,"num_attention_heads":4,"max_position_embeddings":128,"hidden_act":"mystery"}""", "mystery")]
    [DataRow("""{"model_type":"llama","vocab_size":1000,"hidden_size":64,"intermediate_size":10,"num_hidden_layers":""" +
        """2,"num_attention_heads":4,"max_position_embeddings":128,"rope_scaling":{"rope_type":"yarn","factor":4}}""", "yarn")]
    [DataRow("""{"model_type":"bert","vocab_size":-5,"hidden_size":64,"intermediate_size":10,"num_hidden_layers":""" +
        """2,"num_attention_heads":4,"max_position_embeddings":128}""", "vocabulary size")]
    // Issue #12: values once accepted silently (eps 0, −1, 1e308, a 1e308 rope factor, an infinite theta).
    [DataRow(TinyBertJson + ""","layer_norm_eps":0}""", "layer_norm_eps")]
    [DataRow(TinyBertJson + ""","layer_norm_eps":-1}""", "layer_norm_eps")]
    [DataRow(TinyBertJson + ""","layer_norm_eps":1e308}""", "layer_norm_eps")]
    [DataRow(TinyLlamaJson + ""","rms_norm_eps":1e308}""", "rms_norm_eps")]
    [DataRow(TinyLlamaJson + ""","rms_norm_eps":1e400}""", "rms_norm_eps")]
    [DataRow(TinyGpt2Json + ""","layer_norm_epsilon":0}""", "layer_norm_epsilon")]
    [DataRow(TinyLlamaJson + ""","rope_scaling":{"rope_type":"dynamic","factor":1e308}}""", "factor")]
    [DataRow(TinyLlamaJson + ""","rope_theta":1e400}""", "rope_theta")]
    [DataRow("""{"architectures":["MambaForCausalLM"]}""", "supported")]
    public void BadConfigsAreClearErrorsBeforeAnyAllocation(string json, string mentioned)
    {
        var folder = TempFolder("badconfig");
        File.WriteAllText(Path.Combine(folder, "config.json"), json);
        var error = Assert.ThrowsExactly<ModelLoadException>(() => ModelFolder.Load(folder, null));
        StringAssert.Contains(error.Message, mentioned);
        Assert.ThrowsExactly<ModelLoadException>(() => ModelFolder.Describe(folder));
    }

    [TestMethod]
    public void ArchitectureFromClassNameWhenModelTypeIsMissing()
    {
        var folder = TempFolder("noarch");
        var config = Config("gpt2-tiny");
        config.Remove("model_type");
        WriteConfig(folder, config);
        Assert.AreEqual("gpt2", ModelFolder.ReadArchitecture(folder));
    }

    [TestMethod]
    public void DescribeReadsConfigAndHeadersOnly()
    {
        var llama = ModelFolder.Describe(Fixtures.Folder("llama-tiny"));
        Assert.AreEqual(("llama", 2, 4, 2, 64, 1000, 128, true),
            (llama.Architecture, llama.Layers, llama.Heads, llama.KeyValueHeads, llama.HiddenSize, llama.VocabularySize, llama.MaxPositions,
            llama.Causal));
        Assert.IsNull(llama.SlidingWindow);
        Assert.AreEqual("safetensors", llama.WeightFormat);
        using var file = SafetensorsFile.Open(Path.Combine(Fixtures.Folder("llama-tiny"), "model.safetensors"));
        Assert.AreEqual(file.Tensors.Sum(t => t.ElementCount), llama.ParameterCount);
        Assert.AreEqual(new FileInfo(Path.Combine(Fixtures.Folder("llama-tiny"), "model.safetensors")).Length, llama.WeightBytes);
        var bert = ModelFolder.Describe(Fixtures.Folder("bert-tiny"));
        Assert.AreEqual(("bert", false), (bert.Architecture, bert.Causal));
        // A folder with a config but no weights still describes (weights are only needed to load).
        var folder = TempFolder("noweights");
        WriteConfig(folder, Config("gpt2-tiny"));
        var gpt2 = ModelFolder.Describe(folder);
        Assert.AreEqual(("gpt2", "none", 0L), (gpt2.Architecture, gpt2.WeightFormat, gpt2.WeightBytes));
    }
}

/// <summary>Checkpoint naming: bare and wrapper-prefixed keys, heads that are ignored, Qwen2's projection biases.</summary>
[TestClass]
public sealed class CheckpointNamingTests
{
    [TestInitialize]
    public void Init() => TorchSetup.EnsureInitialized();

    [TestMethod]
    [DataRow("llama-tiny", "model.", DisplayName = "LlamaModel saved bare (no model.)")]
    [DataRow("gpt2-tiny", "transformer.", DisplayName = "GPT2Model saved bare (no transformer.)")]
    public void BareCheckpointsLoad(string fixture, string prefix)
    {
        var weights = Weights(fixture).Select(w => (w.Key.StartsWith(prefix) ? w.Key[prefix.Length..] : w.Key, w.Value));
        var folder = Folder("bare", fixture, null, weights);
        var expected = Fixtures.Expected(fixture);
        using var loaded = ModelFolder.Load(folder, null);
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected["s0.input_ids"])], WantLogits: true));
        Fixtures.AssertClose(expected["s0.attentions"], Attentions(result), 1e-4, $"bare {fixture}");
        Fixtures.AssertClose(expected["s0.logits"], result.Logits![0], 1e-3, $"bare {fixture} logits");
    }

    [TestMethod]
    public void PrefixedBertWithTaskHeadsLoadsAndIgnoresTheHeads()
    {
        var weights = Weights("bert-tiny").Select(w => ("bert." + w.Key, w.Value))
            .Append(("cls.predictions.bias", zeros(1000))).Append(("cls.predictions.transform.dense.weight", zeros(64, 64)));
        var folder = Folder("bert-prefixed", "bert-tiny", null, weights);
        var expected = Fixtures.Expected("bert-tiny");
        using var loaded = ModelFolder.Load(folder, null);
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected["s1.input_ids"])],
            [Fixtures.Longs(expected["s1.token_type_ids"])]));
        Fixtures.AssertClose(expected["s1.attentions"], Attentions(result), 1e-4, "bert. prefixed s1");
        using var source = ModelFolder.OpenWeights(folder);
        var unused = ((BertModel)ModelFolder.Create(ModelFolder.ReadConfig(folder))).LoadWeights(source);
        CollectionAssert.AreEquivalent(new[] { "bert.pooler.dense.bias", "bert.pooler.dense.weight", "cls.predictions.bias",
            "cls.predictions.transform.dense.weight" }, unused.ToArray());
    }

    [TestMethod]
    public void CheckpointThatDoesNotMatchTheConfigNamesTheTensors()
    {
        var folder = Folder("mismatch", "llama-tiny", c => c["intermediate_size"] = 128, Weights("llama-tiny").Select(w => (w.Key, w.Value)));
        var error = Assert.ThrowsExactly<ModelLoadException>(() => ModelFolder.Load(folder, null));
        StringAssert.Contains(error.Message, "wrong shape model.layers.0.mlp.gate_proj.weight: checkpoint [160, 64], model expects [128, 64]");
    }

    [TestMethod]
    public void Qwen2LoadsQkvBiasesAndUsesThem()
    {
        // llama-tiny's weights with zero q/k/v biases under model_type qwen2 = the Llama expectation; a non-zero
        // q bias must change the attention (the biases are really applied).
        var weights = Weights("llama-tiny");
        var config = ModelFolder.ReadConfig(Fixtures.Folder("llama-tiny")) as LlamaConfig;
        List<(string, Tensor)> WithBiases(float q)
        {
            var list = weights.Select(w => (w.Key, w.Value)).ToList();
            for (var l = 0; l < 2; l++)
            {
                list.Add(($"model.layers.{l}.self_attn.q_proj.bias", full(64, q)));
                list.Add(($"model.layers.{l}.self_attn.k_proj.bias", zeros(32)));
                list.Add(($"model.layers.{l}.self_attn.v_proj.bias", zeros(32)));
            }
            return list;
        }
        Assert.IsNotNull(config);
        var expected = Fixtures.Expected("llama-tiny");
        var ids = Fixtures.Longs(expected["s0.input_ids"]);
        var zero = Folder("qwen2-zero", "llama-tiny", c => c["model_type"] = "qwen2", WithBiases(0));
        using (var loaded = ModelFolder.Load(zero, null))
        using (var result = loaded.Model.Forward(new ForwardInput([ids])))
            Fixtures.AssertClose(expected["s0.attentions"], Attentions(result), 1e-4, "qwen2 with zero biases");
        var biased = Folder("qwen2-bias", "llama-tiny", c => c["model_type"] = "qwen2", WithBiases(0.5f));
        using (var loaded = ModelFolder.Load(biased, null))
        using (var result = loaded.Model.Forward(new ForwardInput([ids])))
            Assert.IsGreaterThan(1e-3, MaxDiff(Attentions(result), expected["s0.attentions"]));
        var missing = Folder("qwen2-nobias", "llama-tiny", c => c["model_type"] = "qwen2", weights.Select(w => (w.Key, w.Value)));
        StringAssert.Contains(Assert.ThrowsExactly<ModelLoadException>(() => ModelFolder.Load(missing, null)).Message, "q_proj.bias");
    }
}
