using System.Text.Json.Nodes;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tests.Support;
using static AttentionViz.Backend.Tests.Models.ModelTestSupport;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Models;

/// <summary>
/// Qwen3, Gemma 2, Gemma 3 and Phi-3 beyond the fixture match (DecoderFixtureTests): each family's distinguishing step,
/// switched off or done wrong, must miss the fixture by far more than its tolerance (so the fixture match is not luck);
/// a multimodal Gemma 3 checkpoint's language model is the text model; models/list describes each family.
/// </summary>
[TestClass]
public sealed class DecoderFamilyTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Init() => TorchSetup.EnsureInitialized();

    /// <summary>Far above the tolerances (1e-4 attention, 1e-3 hidden and logits): the wrong variant is told apart.</summary>
    private const float Discriminates = 1e-3f;

    /// <summary>The largest errors of a model with <paramref name="spec"/> against the fixture's s1, over attention, hidden and logits.</summary>
    internal static (float Attention, float Hidden, float Logits) Errors(string fixture, Func<DecoderConfig, DecoderSpec, DecoderSpec> edit,
        string sequence = "s1")
    {
        var folder = Fixtures.Folder(fixture);
        var config = (DecoderConfig)ModelFolder.ReadConfig(folder);
        var source = Path.Combine(folder, "config.json");
        using var model = new LlamaModel(edit(config, config.Decoder(source)), config.Shape);
        using (var weights = ModelFolder.OpenWeights(folder)) model.LoadWeights(weights);
        var expected = Fixtures.Expected(fixture);
        using var result = model.Forward(new ForwardInput([Fixtures.Longs(expected[$"{sequence}.input_ids"])], WantLogits: true));
        return (MaxDiff(expected[$"{sequence}.attentions"], Attentions(result)),
            MaxDiff(expected[$"{sequence}.last_hidden_state"], result.LastHiddenState[0]),
            MaxDiff(expected[$"{sequence}.logits"], result.Logits![0]));
    }

    [TestMethod]
    [DataRow("qwen3-tiny")]
    [DataRow("gemma2-tiny")]
    [DataRow("gemma3-tiny")]
    [DataRow("phi3-tiny")]
    public void TheFamilysOwnSpecMatchesTheFixture(string fixture)
    {
        var (attention, hidden, logits) = Errors(fixture, (_, spec) => spec);
        TestContext.WriteLine($"{fixture} s1: max |diff| attention {attention:E2}, hidden {hidden:E2}, logits {logits:E2}");
        Assert.IsLessThanOrEqualTo(1e-4f, attention);
        Assert.IsLessThanOrEqualTo(1e-3f, hidden);
        Assert.IsLessThanOrEqualTo(1e-3f, logits);
    }

    /// <summary>Each wrong variant, by what it changes; the attention (or, for the logit cap, the logits) must miss.</summary>
    private static readonly Dictionary<string, (string Fixture, Func<DecoderConfig, DecoderSpec, DecoderSpec> Edit, bool LogitsOnly)> Wrong = new()
    {
        ["qwen3: q/k norms skipped"] = ("qwen3-tiny", (_, s) => s with { QueryKeyNorm = false }, false),
        ["qwen3: scale 1/sqrt(hidden / heads)"] = ("qwen3-tiny", (c, s) => s with { Scale = 1 / Math.Sqrt(c.HiddenSize / c.NumHeads) }, false),
        ["gemma2: attention soft-cap removed"] = ("gemma2-tiny", (_, s) => s with { AttentionSoftCap = null }, false),
        ["gemma2: final logit soft-cap removed"] = ("gemma2-tiny", (_, s) => s with { FinalSoftCap = null }, true),
        ["gemma2: (1 + w) read as w"] = ("gemma2-tiny", (_, s) => s with { NormPlusOne = false }, false),
        ["gemma2: embeddings not scaled by sqrt(hidden)"] = ("gemma2-tiny", (_, s) => s with { ScaleEmbeddings = false }, false),
        ["gemma2: no sliding window"] = ("gemma2-tiny", (_, s) => s with { Windows = new int?[s.Layers] }, false),
        ["gemma3: local rope base on global layers"] = ("gemma3-tiny", (_, s) => s with { RotaryOfLayer = new int[s.Layers] }, false),
        ["gemma3: global rope base on local layers"] =
            ("gemma3-tiny", (_, s) => s with { RotaryOfLayer = [.. Enumerable.Repeat(1, s.Layers)] }, false),
        ["gemma3: q/k norms skipped"] = ("gemma3-tiny", (_, s) => s with { QueryKeyNorm = false }, false),
        ["gemma3: (1 + w) read as w"] = ("gemma3-tiny", (_, s) => s with { NormPlusOne = false }, false),
        ["phi3: full rotary instead of partial"] = ("phi3-tiny", (c, s) => s with
        {
            Rotaries = [new RotaryEmbedding(c.HeadDim, c.Theta, null, c.MaxPositionEmbeddings)],
        }, false),
    };

    public static IEnumerable<object[]> WrongVariants => Wrong.Keys.Select(k => new object[] { k });

    [TestMethod]
    [DynamicData(nameof(WrongVariants))]
    public void AWrongVariantMissesTheFixture(string variant)
    {
        var (fixture, edit, logitsOnly) = Wrong[variant];
        var (attention, hidden, logits) = Errors(fixture, edit);
        TestContext.WriteLine($"{variant}: max |diff| attention {attention:E2}, hidden {hidden:E2}, logits {logits:E2}");
        if (logitsOnly)
        {
            Assert.IsLessThanOrEqualTo(1e-4f, attention, "the logit cap does not touch attention");
            Assert.IsGreaterThan(Discriminates, logits, $"{variant}: logits");
        }
        else Assert.IsGreaterThan(Discriminates, attention, $"{variant}: attention");
    }

    [TestMethod]
    [DataRow("language_model.", DisplayName = "transformers < 4.52: language_model.model.*")]
    [DataRow("model.language_model.", DisplayName = "transformers ≥ 4.52: model.language_model.*")]
    public void MultimodalGemma3LoadsItsLanguageModelAndSaysImagesAreNotAnalysed(string prefix)
    {
        // gemma3-tiny's weights renamed as Gemma3ForConditionalGeneration saves them, beside a vision tensor that is not read.
        var weights = Weights("gemma3-tiny")
            .Select(w => (prefix == "language_model." ? prefix + w.Key : "model.language_model." + w.Key["model.".Length..], w.Value))
            .Append(("model.vision_tower.vision_model.embeddings.patch_embedding.weight", ones(4, 3, 2, 2)));
        var folder = TempFolder("gemma3mm");
        WriteConfig(folder, new JsonObject
        {
            ["architectures"] = new JsonArray("Gemma3ForConditionalGeneration"),
            ["model_type"] = "gemma3",
            ["text_config"] = Config("gemma3-tiny"),
            ["vision_config"] = new JsonObject { ["model_type"] = "siglip_vision_model", ["hidden_size"] = 8 },
            ["torch_dtype"] = "float32",
        });
        AttentionViz.Backend.Storage.SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), weights);

        var description = ModelFolder.Describe(folder);
        Assert.AreEqual(("gemma3", 2, 4, 2, 12), (description.Architecture, description.Layers, description.Heads, description.KeyValueHeads,
            description.SlidingWindow));
        StringAssert.Contains(description.Note, "images are not analysed");
        using var loaded = ModelFolder.Load(folder, null);
        StringAssert.Contains(loaded.Info.Note, "images are not analysed");
        var expected = Fixtures.Expected("gemma3-tiny");
        foreach (var key in new[] { "s0", "s1" })
        {
            using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected[$"{key}.input_ids"])], WantLogits: true));
            Fixtures.AssertClose(expected[$"{key}.attentions"], Attentions(result), 1e-4, $"{prefix} {key} attentions");
            Fixtures.AssertClose(expected[$"{key}.logits"], result.Logits![0], 1e-3, $"{prefix} {key} logits");
        }
    }

    [TestMethod]
    [DataRow("qwen3-tiny", "qwen3", "Qwen3", 1, null)]
    [DataRow("gemma2-tiny", "gemma2", "Gemma 2", 2, 16)]
    [DataRow("gemma3-tiny", "gemma3_text", "Gemma 3", 2, 12)]
    [DataRow("phi3-tiny", "phi3", "Phi-3", 4, null)]
    public void DescribeShowsFamilyHeadsKvHeadsAndWindow(string fixture, string architecture, string family, int kvHeads, int? window)
    {
        var d = ModelFolder.Describe(Fixtures.Folder(fixture));
        Assert.AreEqual((architecture, family, 2, 4, kvHeads, window),
            (d.Architecture, d.Family, d.Layers, d.Heads, d.KeyValueHeads, d.SlidingWindow));
        Assert.AreEqual(new FileInfo(Path.Combine(Fixtures.Folder(fixture), "model.safetensors")).Length, d.WeightBytes);
        Assert.IsNull(d.Note);
    }
}

/// <summary>Config files shaped like the published checkpoints': the defaults a sparse config relies on are HF's.</summary>
[TestClass]
public sealed class PublishedConfigShapeTests
{
    private static ModelDescription Describe(JsonObject config)
    {
        var folder = TempFolder("published");
        WriteConfig(folder, config);
        return ModelFolder.Describe(folder);
    }

    [TestMethod]
    public void Gemma3MultimodalWithASparseTextConfig()
    {
        // gemma-3-4b-it's layout: text_config names only what differs from Gemma3TextConfig's defaults.
        var d = Describe(new JsonObject
        {
            ["architectures"] = new JsonArray("Gemma3ForConditionalGeneration"), ["model_type"] = "gemma3", ["torch_dtype"] = "bfloat16",
            ["text_config"] = new JsonObject
            {
                ["hidden_size"] = 2560, ["intermediate_size"] = 10240, ["model_type"] = "gemma3_text", ["num_hidden_layers"] = 34,
                ["rope_scaling"] = new JsonObject { ["factor"] = 8.0, ["rope_type"] = "linear" }, ["sliding_window"] = 1024,
            },
            ["vision_config"] = new JsonObject { ["model_type"] = "siglip_vision_model" },
        });
        Assert.AreEqual(("gemma3", 34, 8, 4, 262_208, 131_072, 1024), (d.Architecture, d.Layers, d.Heads, d.KeyValueHeads, d.VocabularySize,
            d.MaxPositions, d.SlidingWindow));
        StringAssert.Contains(d.Note, "images are not analysed");
    }

    [TestMethod]
    public void Phi35MiniWithLongRope()
    {
        // Phi-3.5-mini's layout: head_dim 96 (3072 / 32), 48 short and 48 long factors, 131,072 positions over 4,096.
        JsonArray Factors(double f) => [.. Enumerable.Range(0, 48).Select(i => (JsonNode?)(f + i * 0.01))];
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("Phi3ForCausalLM"), ["model_type"] = "phi3", ["hidden_size"] = 3072, ["intermediate_size"] = 8192,
            ["num_hidden_layers"] = 32, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 32, ["vocab_size"] = 32064,
            ["max_position_embeddings"] = 131_072, ["original_max_position_embeddings"] = 4096, ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10_000.0, ["sliding_window"] = 262_144, ["torch_dtype"] = "bfloat16", ["tie_word_embeddings"] = false,
            ["rope_scaling"] = new JsonObject { ["type"] = "longrope", ["short_factor"] = Factors(1.0), ["long_factor"] = Factors(2.0) },
        };
        var d = Describe(config);
        Assert.AreEqual(("phi3", "Phi-3", 32, 32, 32, 262_144), (d.Architecture, d.Family, d.Layers, d.Heads, d.KeyValueHeads, d.SlidingWindow));
        var spec = ConfigJson.Load<Phi3Config>(Path.Combine(d.Folder, "config.json")).Decoder("config.json");
        Assert.AreEqual(96, spec.HeadDim);
        Assert.AreEqual(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), spec.Rotaries[0].AttentionScaling, 1e-12);
    }
}

/// <summary>Which layers see a window, per family, and the keys each spelling of the pattern is read from.</summary>
[TestClass]
public sealed class DecoderWindowTests
{
    [TestInitialize]
    public void Init() => TorchSetup.EnsureInitialized();

    /// <summary>A fixture's weights with an edited config: attention error against the fixture's s1.</summary>
    private static float AttentionError(string fixture, Action<JsonObject> edit)
    {
        var folder = Folder("window", fixture, edit, Weights(fixture).Select(w => (w.Key, w.Value)));
        var expected = Fixtures.Expected(fixture);
        using var loaded = ModelFolder.Load(folder, null);
        using var result = loaded.Model.Forward(new ForwardInput([Fixtures.Longs(expected["s1.input_ids"])]));
        return MaxDiff(expected["s1.attentions"], Attentions(result));
    }

    [TestMethod]
    public void Gemma2WithoutLayerTypesWindowsTheEvenLayers()
    {
        Assert.IsLessThanOrEqualTo(1e-4f, AttentionError("gemma2-tiny", c => c.Remove("layer_types")), "layer 0 sliding, layer 1 full");
        Assert.IsGreaterThan(1e-3f, AttentionError("gemma2-tiny", c => c["layer_types"] = new JsonArray("full_attention", "sliding_attention")));
    }

    [TestMethod]
    public void Gemma3PatternFromSlidingWindowPatternWithoutLayerTypes()
    {
        // Every 2nd layer global: the fixture's [sliding, full]; a pattern of 1 makes every layer global.
        Assert.IsLessThanOrEqualTo(1e-4f, AttentionError("gemma3-tiny", c => c.Remove("layer_types")));
        Assert.IsGreaterThan(1e-3f, AttentionError("gemma3-tiny", c =>
        {
            c.Remove("layer_types");
            c["sliding_window_pattern"] = 1;
        }));
    }

    [TestMethod]
    public void Gemma3RopeParametersPerLayerTypeAreRead()
    {
        // transformers v5 spelling: one rope set per layer type instead of rope_theta and rope_local_base_freq.
        static Action<JsonObject> V5(double local, double global) => c =>
        {
            c.Remove("rope_theta");
            c.Remove("rope_local_base_freq");
            c.Remove("rope_scaling");
            c["rope_parameters"] = new JsonObject
            {
                ["sliding_attention"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = local },
                ["full_attention"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = global },
            };
        };
        Assert.IsLessThanOrEqualTo(1e-4f, AttentionError("gemma3-tiny", V5(10_000, 1_000_000)));
        Assert.IsGreaterThan(1e-3f, AttentionError("gemma3-tiny", V5(1_000_000, 10_000)), "the two bases swapped");
    }

    [TestMethod]
    public void Qwen3WindowsOnlyWithUseSlidingWindowFromMaxWindowLayersOrLayerTypes()
    {
        Qwen3Config Qwen(bool use, int maxWindowLayers = 1, string[]? types = null) => new()
        {
            NumLayers = 3, SlidingWindow = 8, UseSlidingWindow = use, MaxWindowLayers = maxWindowLayers, LayerTypes = types,
        };
        int?[] Windows(Qwen3Config c) => [.. Enumerable.Range(0, 3).Select(c.WindowOf)];
        CollectionAssert.AreEqual(new int?[] { null, null, null }, Windows(Qwen(use: false)));
        CollectionAssert.AreEqual(new int?[] { null, 8, 8 }, Windows(Qwen(use: true)));
        CollectionAssert.AreEqual(new int?[] { 8, null, 8 },
            Windows(Qwen(use: true, types: ["sliding_attention", "full_attention", "sliding_attention"])));
    }

    [TestMethod]
    public void Phi3SlidingWindowMasksEveryLayer()
    {
        var folder = Folder("phi3window", "phi3-tiny", c => c["sliding_window"] = 8, Weights("phi3-tiny").Select(w => (w.Key, w.Value)));
        Assert.AreEqual(8, ModelFolder.Describe(folder).SlidingWindow);
        using var loaded = ModelFolder.Load(folder, null);
        using var result = loaded.Model.Forward(new ForwardInput([Enumerable.Range(0, 30).Select(i => (long)(i * 7 % 400)).ToArray()]));
        var attentions = Attentions(result);                                          // (L, H, 30, 30)
        var old = ones(30, 30, dtype: @bool).tril(-8);                               // keys 8 or more positions back
        Assert.AreEqual(0L, attentions.masked_select(old.expand_as(attentions)).count_nonzero().item<long>(), "outside the window");
        Assert.IsGreaterThan(0L, attentions.masked_select(old.logical_not().tril().expand_as(attentions)).count_nonzero().item<long>());
    }
}
