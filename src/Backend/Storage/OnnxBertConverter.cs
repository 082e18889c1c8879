using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace AttentionViz.Backend.Storage;

/// <summary>The BERT hyperparameters read from an ONNX graph.</summary>
public sealed record BertGraphConfig(
    int VocabSize, int HiddenSize, int NumHiddenLayers, int NumAttentionHeads, int IntermediateSize,
    int MaxPositionEmbeddings, int TypeVocabSize, double LayerNormEps, int PadTokenId, bool HasPooler);

/// <summary>
/// Converts a PyTorch-exported BERT ONNX graph (such as all-MiniLM-L6-v2's) into a Hugging Face model folder:
/// config.json, model.safetensors (F32, HF <c>BertModel</c> names), vocab.txt (LF) and tokenizer_config.json.
/// <para>
/// Biases and LayerNorm parameters are initializers carrying their HF names. The Linear weights are anonymous
/// initializers used as MatMul right operands, laid out [in, out]: each is named by following its MatMul to the
/// single Add consuming the product and reading that Add's bias name; it is transposed to Linear's [out, in].
/// Every expected name must be found exactly once with its expected shape; anything missing, doubled, misshapen or
/// left over is an error.
/// </para>
/// </summary>
public static class OnnxBertConverter
{
    private const int OnnxFloat = 1, OnnxInt64 = 7;

    private sealed record Weight(long[] Shape, ReadOnlyMemory<byte> Data, string Origin);

    /// <summary>Converts <paramref name="onnx"/> into <paramref name="outputDirectory"/> (created if needed).</summary>
    /// <returns>The hyperparameters read from the graph.</returns>
    /// <exception cref="ModelFormatException">The graph is not the expected BERT export or a weight cannot be mapped.</exception>
    public static BertGraphConfig Convert(byte[] onnx, string sourceName, IReadOnlyList<string> vocabulary,
        string outputDirectory, IReadOnlyDictionary<string, string>? metadata = null, Action<string>? log = null)
    {
        log ??= _ => { };
        var graph = OnnxGraphReader.Read(onnx, sourceName);
        var (config, weights) = MapWeights(graph, sourceName, vocabulary, log);

        Directory.CreateDirectory(outputDirectory);
        var safetensorsMetadata = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { ["format"] = "pt" };
        SafetensorsWriter.Write(Path.Combine(outputDirectory, "model.safetensors"),
            weights.Select(w => (w.Key, SafetensorsDtype.F32, w.Value.Shape, w.Value.Data)), safetensorsMetadata);
        File.WriteAllText(Path.Combine(outputDirectory, "config.json"), ConfigJson(config));
        WriteVocabulary(Path.Combine(outputDirectory, "vocab.txt"), vocabulary);
        File.WriteAllText(Path.Combine(outputDirectory, "tokenizer_config.json"), TokenizerConfigJson(config));
        return config;
    }

    /// <summary>The HF BertModel state-dict names, in order, with their shapes.</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> ExpectedTensors(BertGraphConfig c)
    {
        long h = c.HiddenSize, i = c.IntermediateSize;
        var list = new List<(string, long[])>
        {
            ("embeddings.word_embeddings.weight", [c.VocabSize, h]),
            ("embeddings.position_embeddings.weight", [c.MaxPositionEmbeddings, h]),
            ("embeddings.token_type_embeddings.weight", [c.TypeVocabSize, h]),
            ("embeddings.LayerNorm.weight", [h]),
            ("embeddings.LayerNorm.bias", [h]),
        };
        for (var l = 0; l < c.NumHiddenLayers; l++)
        {
            var p = $"encoder.layer.{l}.";
            foreach (var qkv in new[] { "query", "key", "value" })
            {
                list.Add(($"{p}attention.self.{qkv}.weight", [h, h]));
                list.Add(($"{p}attention.self.{qkv}.bias", [h]));
            }
            list.Add(($"{p}attention.output.dense.weight", [h, h]));
            list.Add(($"{p}attention.output.dense.bias", [h]));
            list.Add(($"{p}attention.output.LayerNorm.weight", [h]));
            list.Add(($"{p}attention.output.LayerNorm.bias", [h]));
            list.Add(($"{p}intermediate.dense.weight", [i, h]));
            list.Add(($"{p}intermediate.dense.bias", [i]));
            list.Add(($"{p}output.dense.weight", [h, i]));
            list.Add(($"{p}output.dense.bias", [h]));
            list.Add(($"{p}output.LayerNorm.weight", [h]));
            list.Add(($"{p}output.LayerNorm.bias", [h]));
        }
        if (c.HasPooler)
        {
            list.Add(("pooler.dense.weight", [h, h]));
            list.Add(("pooler.dense.bias", [h]));
        }
        return list;
    }

    private static (BertGraphConfig, List<KeyValuePair<string, Weight>>) MapWeights(
        OnnxGraph graph, string source, IReadOnlyList<string> vocabulary, Action<string> log)
    {
        ModelFormatException Fail(string what) => new($"{source}: {what}") { FilePath = source };

        var initializers = new Dictionary<string, OnnxTensor>(StringComparer.Ordinal);
        foreach (var t in graph.Initializers)
            if (!initializers.TryAdd(t.Name, t)) throw Fail($"initializer '{t.Name}' is defined twice.");
        var producers = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        var consumers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (var o in node.Outputs) producers[o] = node;
            foreach (var i in node.Inputs)
            {
                if (!consumers.TryGetValue(i, out var list)) consumers[i] = list = [];
                list.Add(node);
            }
        }

        var found = new Dictionary<string, Weight>(StringComparer.Ordinal);
        void Add(string name, Weight weight)
        {
            if (found.TryGetValue(name, out var previous))
                throw Fail($"'{name}' is found twice: from {previous.Origin} and from {weight.Origin}.");
            found[name] = weight;
        }

        var floatInitializers = graph.Initializers.Where(t => t.DataType == OnnxFloat).ToList();
        var viaOperator = new HashSet<string>(StringComparer.Ordinal);

        // Linear weights used by MatMul: [in, out], named after the bias of the Add that consumes the product.
        foreach (var matmul in graph.Nodes.Where(n => n.OpType == "MatMul"))
        {
            if (matmul.Inputs.Length != 2 || !initializers.TryGetValue(matmul.Inputs[1], out var w) || w.DataType != OnnxFloat) continue;
            var origin = $"initializer '{w.Name}' (right operand of MatMul '{matmul.Name}')";
            if (w.Dims.Length != 2) throw Fail($"{origin} has shape [{string.Join(", ", w.Dims)}], not a matrix.");
            var adds = consumers.GetValueOrDefault(matmul.Outputs[0]) ?? [];
            if (adds.Count != 1 || adds[0].OpType != "Add")
                throw Fail($"{origin}: the product is consumed by [{string.Join(", ", adds.Select(n => n.OpType + " " + n.Name))}], " +
                    $"not by exactly one Add carrying a bias.");
            var biasName = adds[0].Inputs.FirstOrDefault(i => i != matmul.Outputs[0] && initializers.ContainsKey(i));
            if (biasName is null || !biasName.EndsWith(".bias", StringComparison.Ordinal))
                throw Fail($"{origin}: Add '{adds[0].Name}' has no initializer input named '*.bias' (inputs: {string.Join(", ", adds[0].Inputs)}).");
            var name = biasName[..^".bias".Length] + ".weight";
            Add(name, new Weight([w.Dims[1], w.Dims[0]], Transpose(FloatBytes(w, source), (int)w.Dims[0], (int)w.Dims[1]), origin));
            viaOperator.Add(w.Name);
        }

        // Linear weights used by Gemm (the pooler): Y = A·op(B) + C with op(B) = Bᵀ when transB = 1.
        foreach (var gemm in graph.Nodes.Where(n => n.OpType == "Gemm"))
        {
            if (gemm.Inputs.Length != 3 || !initializers.TryGetValue(gemm.Inputs[1], out var w) || w.DataType != OnnxFloat) continue;
            var origin = $"initializer '{w.Name}' (operand B of Gemm '{gemm.Name}')";
            if (gemm.IntAttributes.GetValueOrDefault("transA") != 0
                || gemm.FloatAttributes.GetValueOrDefault("alpha", 1f) != 1f || gemm.FloatAttributes.GetValueOrDefault("beta", 1f) != 1f)
                throw Fail($"{origin}: Gemm '{gemm.Name}' has transA, alpha or beta set; it is not a plain Linear layer.");
            if (w.Dims.Length != 2) throw Fail($"{origin} has shape [{string.Join(", ", w.Dims)}], not a matrix.");
            var biasName = gemm.Inputs[2];
            if (!initializers.ContainsKey(biasName) || !biasName.EndsWith(".bias", StringComparison.Ordinal))
                throw Fail($"{origin}: Gemm '{gemm.Name}' has no bias initializer named '*.bias' (C is '{biasName}').");
            var name = biasName[..^".bias".Length] + ".weight";
            var weight = gemm.IntAttributes.GetValueOrDefault("transB") == 1
                ? new Weight(w.Dims, FloatBytes(w, source), origin)
                : new Weight([w.Dims[1], w.Dims[0]], Transpose(FloatBytes(w, source), (int)w.Dims[0], (int)w.Dims[1]), origin);
            Add(name, weight);
            viaOperator.Add(w.Name);
        }

        // Everything else that is float keeps its own (HF) name: embeddings, biases, LayerNorm parameters.
        foreach (var t in floatInitializers.Where(t => !viaOperator.Contains(t.Name)))
            Add(t.Name, new Weight(t.Dims, FloatBytes(t, source), $"initializer '{t.Name}'"));

        var ignored = graph.Initializers.Where(t => t.DataType != OnnxFloat).ToList();
        if (ignored.Any(t => t.DataType != OnnxInt64))
            throw Fail($"unexpected non-float initializers: " +
                $"{string.Join(", ", ignored.Where(t => t.DataType != OnnxInt64).Select(t => $"'{t.Name}' (ONNX type {t.DataType})"))}.");
        log($"ignoring {ignored.Count} int64 initializers (graph shape constants and the position_ids buffer, not weights)");

        // Sizes from the tensors themselves, then the name/shape check, then what only the graph's operators tell.
        var config = ReadDimensions(found, vocabulary, Fail);

        // Every expected name exactly once with its shape; nothing left over.
        var expected = ExpectedTensors(config);
        var problems = new List<string>();
        foreach (var (name, shape) in expected)
        {
            if (!found.TryGetValue(name, out var w)) problems.Add($"missing '{name}'");
            else if (!w.Shape.SequenceEqual(shape))
                problems.Add($"'{name}' from {w.Origin} has shape [{string.Join(", ", w.Shape)}], expected [{string.Join(", ", shape)}]");
        }
        var expectedNames = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, w) in found)
            if (!expectedNames.Contains(name)) problems.Add($"unexpected '{name}' from {w.Origin}");
        if (problems.Count > 0)
            throw Fail($"the graph does not map onto HF BertModel: {string.Join("; ", problems)}.");

        config = ReadOperatorConfig(config, initializers, producers, consumers, Fail);

        return (config, expected.Select(e => new KeyValuePair<string, Weight>(e.Name, found[e.Name])).ToList());
    }

    /// <summary>Vocabulary, hidden, intermediate, positions, token types and layer count, from the tensors' shapes.</summary>
    private static BertGraphConfig ReadDimensions(Dictionary<string, Weight> found, IReadOnlyList<string> vocabulary,
        Func<string, ModelFormatException> fail)
    {
        long[] ShapeOf(string name) => found.TryGetValue(name, out var w) ? w.Shape : throw fail($"missing '{name}'.");
        var word = ShapeOf("embeddings.word_embeddings.weight");
        var position = ShapeOf("embeddings.position_embeddings.weight");
        var tokenType = ShapeOf("embeddings.token_type_embeddings.weight");
        if (word.Length != 2 || position.Length != 2 || tokenType.Length != 2)
            throw fail("the embedding tables are not matrices.");
        var hidden = (int)word[1];

        var layerIndices = found.Keys
            .Where(k => k.StartsWith("encoder.layer.", StringComparison.Ordinal))
            .Select(k => k["encoder.layer.".Length..].Split('.')[0])
            .Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i
                : throw fail($"layer index '{s}' is not a number."))
            .Distinct().Order().ToList();
        if (layerIndices.Count == 0) throw fail("no encoder.layer.* parameters found.");
        if (layerIndices[^1] != layerIndices.Count - 1)
            throw fail($"the encoder layer indices [{string.Join(", ", layerIndices)}] are not 0..n-1.");
        var layers = layerIndices.Count;
        var intermediate = ShapeOf("encoder.layer.0.intermediate.dense.bias");

        var pad = vocabulary.ToList().IndexOf("[PAD]");
        if (pad < 0) throw fail("the vocabulary has no [PAD] token.");
        if (vocabulary.Count != word[0])
            throw fail($"the vocabulary has {vocabulary.Count} tokens but the word embeddings have {word[0]} rows.");

        return new BertGraphConfig(
            VocabSize: (int)word[0], HiddenSize: hidden, NumHiddenLayers: layers, NumAttentionHeads: 0,
            IntermediateSize: (int)intermediate[0], MaxPositionEmbeddings: (int)position[0], TypeVocabSize: (int)tokenType[0],
            LayerNormEps: 0, PadTokenId: pad, HasPooler: found.ContainsKey("pooler.dense.bias") || found.ContainsKey("pooler.dense.weight"));
    }

    /// <summary>Heads (from the Q/K/V reshapes), LayerNorm epsilon and the activation, from the graph's operators.</summary>
    private static BertGraphConfig ReadOperatorConfig(BertGraphConfig dims, Dictionary<string, OnnxTensor> initializers,
        Dictionary<string, OnnxNode> producers, Dictionary<string, List<OnnxNode>> consumers, Func<string, ModelFormatException> fail)
    {
        var (hidden, layers) = (dims.HiddenSize, dims.NumHiddenLayers);

        long ConstantInt(string name)
        {
            OnnxTensor? t = initializers.GetValueOrDefault(name)
                ?? (producers.TryGetValue(name, out var n) && n.OpType == "Constant" ? n.ValueAttribute : null);
            if (t is null || t.DataType != OnnxInt64 || t.ElementCount != 1 || t.RawData.Length != 8)
                throw fail($"'{name}' is not a constant int64 scalar.");
            return MemoryMarshal.Read<long>(t.RawData.Span);
        }

        float ConstantFloat(string name)
        {
            OnnxTensor? t = initializers.GetValueOrDefault(name)
                ?? (producers.TryGetValue(name, out var n) && n.OpType == "Constant" ? n.ValueAttribute : null);
            if (t is null || t.DataType != OnnxFloat || t.ElementCount != 1)
                throw fail($"'{name}' is not a constant float scalar.");
            return t.FloatData is { Length: 1 } f ? f[0] : MemoryMarshal.Read<float>(t.RawData.Span);
        }

        OnnxNode Single(string value, string opType, string context)
        {
            var list = (consumers.GetValueOrDefault(value) ?? []).Where(n => n.OpType == opType).ToList();
            return list.Count == 1 ? list[0] : throw fail($"{context}: expected one {opType} consuming '{value}', found {list.Count}.");
        }

        OnnxNode AddOfBias(string bias) => Single(bias, "Add", $"bias '{bias}'");

        // Heads: the Q/K/V projections are reshaped to [batch, seq, heads, head_dim] by a Concat of the shape.
        var heads = new HashSet<(long Heads, long HeadDim)>();
        for (var l = 0; l < layers; l++)
        {
            foreach (var qkv in new[] { "query", "key", "value" })
            {
                var bias = $"encoder.layer.{l}.attention.self.{qkv}.bias";
                var add = AddOfBias(bias);
                var reshape = Single(add.Outputs[0], "Reshape", $"{qkv} projection of layer {l}");
                if (!producers.TryGetValue(reshape.Inputs[1], out var concat) || concat.OpType != "Concat" || concat.Inputs.Length != 4)
                    throw fail($"the {qkv} reshape of layer {l} ('{reshape.Name}') does not take a 4-part Concat shape.");
                heads.Add((ConstantInt(concat.Inputs[2]), ConstantInt(concat.Inputs[3])));
            }
        }
        if (heads.Count != 1) throw fail($"the layers disagree about heads × head size: {string.Join(", ", heads)}.");
        var (numHeads, headDim) = heads.Single();
        if (numHeads <= 0 || numHeads * headDim != hidden)
            throw fail($"{numHeads} heads × {headDim} does not make the hidden size {hidden}.");

        // LayerNorm epsilon: x̂ = (x − mean) / sqrt(mean((x − mean)²) + eps), then Mul(weight), Add(bias).
        var lnWeights = new List<string> { "embeddings.LayerNorm.weight" };
        for (var l = 0; l < layers; l++)
        {
            lnWeights.Add($"encoder.layer.{l}.attention.output.LayerNorm.weight");
            lnWeights.Add($"encoder.layer.{l}.output.LayerNorm.weight");
        }
        var epsilons = new HashSet<float>();
        foreach (var ln in lnWeights)
        {
            var mul = Single(ln, "Mul", $"LayerNorm '{ln}'");
            var div = producers.GetValueOrDefault(mul.Inputs.First(i => i != ln));
            var sqrt = div is { OpType: "Div" } ? producers.GetValueOrDefault(div.Inputs[1]) : null;
            var add = sqrt is { OpType: "Sqrt" } ? producers.GetValueOrDefault(sqrt.Inputs[0]) : null;
            if (add is not { OpType: "Add" })
                throw fail($"LayerNorm '{ln}' is not the Div/Sqrt/Add(eps) pattern of a PyTorch LayerNorm export.");
            var epsInput = add.Inputs.FirstOrDefault(i => producers.GetValueOrDefault(i)?.OpType != "ReduceMean")
                ?? throw fail($"LayerNorm '{ln}': no epsilon input on Add '{add.Name}'.");
            epsilons.Add(ConstantFloat(epsInput));
        }
        if (epsilons.Count != 1) throw fail($"the LayerNorms disagree about epsilon: {string.Join(", ", epsilons)}.");
        // The graph holds eps as float32; report the decimal float32 rounds from (1e-12 rather than 9.99999996e-13).
        var eps = double.Parse(epsilons.Single().ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

        // Activation: exact (erf) GELU in every layer: x · (erf(x / √2) + 1) · 0.5.
        for (var l = 0; l < layers; l++)
        {
            var add = AddOfBias($"encoder.layer.{l}.intermediate.dense.bias");
            var div = Single(add.Outputs[0], "Div", $"intermediate activation of layer {l}");
            Single(div.Outputs[0], "Erf", $"intermediate activation of layer {l}");
            if (Math.Abs(ConstantFloat(div.Inputs[1]) - Math.Sqrt(2)) > 1e-6)
                throw fail($"layer {l}'s activation divides by {ConstantFloat(div.Inputs[1])}, not √2: not erf GELU.");
        }

        return dims with { NumAttentionHeads = (int)numHeads, LayerNormEps = eps };
    }

    private static ReadOnlyMemory<byte> FloatBytes(OnnxTensor t, string source)
    {
        var count = t.ElementCount;
        if (t.RawData.Length > 0)
        {
            if (t.RawData.Length != count * 4)
                throw new ModelFormatException($"{source}: initializer '{t.Name}' has {t.RawData.Length} bytes of raw_data, " +
                    $"but shape [{string.Join(", ", t.Dims)}] needs {count * 4}.")
                { FilePath = source, TensorName = t.Name };
            return t.RawData;
        }
        var floats = t.FloatData ?? [];
        if (floats.Length != count)
            throw new ModelFormatException($"{source}: initializer '{t.Name}' has {floats.Length} float_data values, " +
                $"but shape [{string.Join(", ", t.Dims)}] needs {count}.")
            { FilePath = source, TensorName = t.Name };
        return MemoryMarshal.AsBytes(floats.AsSpan()).ToArray();
    }

    /// <summary>[rows, cols] row-major float32 → [cols, rows].</summary>
    private static byte[] Transpose(ReadOnlyMemory<byte> data, int rows, int cols)
    {
        var source = MemoryMarshal.Cast<byte, float>(data.Span);
        var result = new byte[(long)rows * cols * 4];
        var target = MemoryMarshal.Cast<byte, float>(result.AsSpan());
        const int Block = 32;
        for (var r0 = 0; r0 < rows; r0 += Block)
            for (var c0 = 0; c0 < cols; c0 += Block)
                for (var r = r0; r < Math.Min(r0 + Block, rows); r++)
                    for (var c = c0; c < Math.Min(c0 + Block, cols); c++)
                        target[c * rows + r] = source[r * cols + c];
        return result;
    }

    private static string ConfigJson(BertGraphConfig c)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("architectures");
            json.WriteStringValue("BertModel");
            json.WriteEndArray();
            json.WriteString("model_type", "bert");
            json.WriteNumber("hidden_size", c.HiddenSize);
            json.WriteNumber("num_hidden_layers", c.NumHiddenLayers);
            json.WriteNumber("num_attention_heads", c.NumAttentionHeads);
            json.WriteNumber("intermediate_size", c.IntermediateSize);
            json.WriteString("hidden_act", "gelu"); // checked in the graph: erf GELU in every layer
            json.WriteNumber("vocab_size", c.VocabSize);
            json.WriteNumber("max_position_embeddings", c.MaxPositionEmbeddings);
            json.WriteNumber("type_vocab_size", c.TypeVocabSize);
            json.WriteNumber("layer_norm_eps", c.LayerNormEps);
            // Training-only hyperparameters have no trace in an inference graph: these are BERT's defaults.
            json.WriteNumber("hidden_dropout_prob", 0.1);
            json.WriteNumber("attention_probs_dropout_prob", 0.1);
            json.WriteNumber("initializer_range", 0.02);
            json.WriteNumber("pad_token_id", c.PadTokenId);
            json.WriteString("position_embedding_type", "absolute"); // learned table gathered by position id
            json.WriteString("torch_dtype", "float32");
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static string TokenizerConfigJson(BertGraphConfig c) =>
        JsonSerializer.Serialize(new Dictionary<string, object> { ["do_lower_case"] = true, ["model_max_length"] = c.MaxPositionEmbeddings },
            new JsonSerializerOptions { WriteIndented = true }) + "\n";

    private static void WriteVocabulary(string path, IReadOnlyList<string> vocabulary)
    {
        var text = new StringBuilder(vocabulary.Count * 8);
        foreach (var token in vocabulary)
        {
            if (token.Contains('\n') || token.Contains('\r'))
                throw new ModelFormatException($"vocabulary token '{token.ReplaceLineEndings("\\n")}' contains a line break.");
            text.Append(token).Append('\n');
        }
        File.WriteAllText(path, text.ToString(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    }
}
