using Google.Protobuf;

namespace AttentionViz.Backend.Storage;

/// <summary>An ONNX initializer. Its data stays in the model buffer: <see cref="RawData"/> or <see cref="FloatData"/>.</summary>
internal sealed record OnnxTensor(string Name, int DataType, long[] Dims, ReadOnlyMemory<byte> RawData, float[]? FloatData)
{
    public const int Float = 1;

    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);
}

/// <summary>An ONNX node: op type, inputs, outputs, its integer attributes and its "value" tensor attribute (Constant).</summary>
internal sealed record OnnxNode(string Name, string OpType, string[] Inputs, string[] Outputs,
    IReadOnlyDictionary<string, long> IntAttributes, IReadOnlyDictionary<string, float> FloatAttributes, OnnxTensor? ValueAttribute);

internal sealed record OnnxGraph(IReadOnlyList<OnnxTensor> Initializers, IReadOnlyList<OnnxNode> Nodes);

/// <summary>
/// Reads just enough of an ONNX ModelProto (onnx.proto3) to extract a graph's initializers and nodes, using
/// Google.Protobuf's <see cref="CodedInputStream"/>. Tensor data is not copied: raw_data refers into the buffer.
/// </summary>
internal static class OnnxGraphReader
{
    // Field numbers from onnx/onnx.proto3.
    private const int ModelGraph = 7;
    private const int GraphNode = 1, GraphInitializer = 5;
    private const int NodeInput = 1, NodeOutput = 2, NodeName = 3, NodeOpType = 4, NodeAttribute = 5;
    private const int AttributeName = 1, AttributeFloat = 2, AttributeInt = 3, AttributeTensor = 5;
    private const int TensorDims = 1, TensorDataType = 2, TensorFloatData = 4, TensorName = 8, TensorRawData = 9,
        TensorExternalData = 13, TensorDataLocation = 14;

    public static OnnxGraph Read(byte[] model, string sourceName)
    {
        try
        {
            OnnxGraph? graph = null;
            foreach (var (field, segment) in Fields(model, 0, model.Length))
                if (field == ModelGraph && segment is { } g)
                    graph = ReadGraph(model, g);
            return graph ?? throw new ModelFormatException($"{sourceName}: the ONNX model has no graph.") { FilePath = sourceName };
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or ArgumentException)
        {
            throw new ModelFormatException($"{sourceName}: not a valid ONNX protobuf: {e.Message}", e) { FilePath = sourceName };
        }
    }

    /// <summary>
    /// Enumerates a message's fields. Length-delimited fields come back as the (offset, length) of their payload
    /// within <paramref name="buffer"/>; the others are skipped (null).
    /// </summary>
    private static IEnumerable<(int Field, (int Offset, int Length)? Payload)> Fields(byte[] buffer, int offset, int length)
    {
        var input = new CodedInputStream(buffer, offset, length);
        var origin = offset - input.Position; // Position may or may not count the offset: normalise to absolute.
        var list = new List<(int, (int, int)?)>();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                var before = (int)(origin + input.Position);
                input.SkipLastField();
                var after = (int)(origin + input.Position);
                var payloadLength = new CodedInputStream(buffer, before, after - before).ReadLength();
                list.Add((field, (after - payloadLength, payloadLength)));
            }
            else
            {
                input.SkipLastField();
                list.Add((field, null));
            }
        }
        return list;
    }

    private static OnnxGraph ReadGraph(byte[] buffer, (int Offset, int Length) graph)
    {
        var initializers = new List<OnnxTensor>();
        var nodes = new List<OnnxNode>();
        foreach (var (field, payload) in Fields(buffer, graph.Offset, graph.Length))
        {
            if (payload is not { } p) continue;
            if (field == GraphInitializer) initializers.Add(ReadTensor(buffer, p));
            else if (field == GraphNode) nodes.Add(ReadNode(buffer, p));
        }
        return new OnnxGraph(initializers, nodes);
    }

    private static string Utf8(byte[] buffer, (int Offset, int Length) p) =>
        System.Text.Encoding.UTF8.GetString(buffer, p.Offset, p.Length);

    private static OnnxNode ReadNode(byte[] buffer, (int Offset, int Length) node)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        string name = "", opType = "";
        OnnxTensor? value = null;
        var ints = new Dictionary<string, long>(StringComparer.Ordinal);
        var floats = new Dictionary<string, float>(StringComparer.Ordinal);
        foreach (var (field, payload) in Fields(buffer, node.Offset, node.Length))
        {
            if (payload is not { } p) continue;
            switch (field)
            {
                case NodeInput: inputs.Add(Utf8(buffer, p)); break;
                case NodeOutput: outputs.Add(Utf8(buffer, p)); break;
                case NodeName: name = Utf8(buffer, p); break;
                case NodeOpType: opType = Utf8(buffer, p); break;
                case NodeAttribute:
                    var (attributeName, intValue, floatValue, tensor) = ReadAttribute(buffer, p);
                    if (attributeName == "value" && tensor is not null) value = tensor;
                    if (attributeName is not null && intValue is { } i) ints[attributeName] = i;
                    if (attributeName is not null && floatValue is { } f) floats[attributeName] = f;
                    break;
            }
        }
        return new OnnxNode(name, opType, [.. inputs], [.. outputs], ints, floats, value);
    }

    private static (string? Name, long? Int, float? Float, OnnxTensor? Tensor) ReadAttribute(byte[] buffer, (int Offset, int Length) attribute)
    {
        var input = new CodedInputStream(buffer, attribute.Offset, attribute.Length);
        var origin = attribute.Offset - input.Position;
        string? name = null;
        long? intValue = null;
        float? floatValue = null;
        OnnxTensor? tensor = null;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            var wire = WireFormat.GetTagWireType(tag);
            if (field == AttributeName && wire == WireFormat.WireType.LengthDelimited) name = input.ReadString();
            else if (field == AttributeInt && wire == WireFormat.WireType.Varint) intValue = input.ReadInt64();
            else if (field == AttributeFloat && wire == WireFormat.WireType.Fixed32) floatValue = input.ReadFloat();
            else if (field == AttributeTensor && wire == WireFormat.WireType.LengthDelimited) tensor = ReadTensor(buffer,
                PayloadOf(buffer, origin, input));
            else input.SkipLastField();
        }
        return (name, intValue, floatValue, tensor);
    }

    private static OnnxTensor ReadTensor(byte[] buffer, (int Offset, int Length) tensor)
    {
        var input = new CodedInputStream(buffer, tensor.Offset, tensor.Length);
        var origin = tensor.Offset - input.Position;
        var dims = new List<long>();
        var floats = new List<float>();
        var dataType = 0;
        var name = "";
        var raw = ReadOnlyMemory<byte>.Empty;
        var external = false;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            var wire = WireFormat.GetTagWireType(tag);
            switch (field)
            {
                case TensorDims when wire == WireFormat.WireType.Varint:
                    dims.Add(input.ReadInt64());
                    break;
                case TensorDims when wire == WireFormat.WireType.LengthDelimited:
                    ReadPacked(buffer, origin, input, sub => { while (!sub.IsAtEnd) dims.Add(sub.ReadInt64()); });
                    break;
                case TensorDataType when wire == WireFormat.WireType.Varint:
                    dataType = input.ReadInt32();
                    break;
                case TensorFloatData when wire == WireFormat.WireType.Fixed32:
                    floats.Add(input.ReadFloat());
                    break;
                case TensorFloatData when wire == WireFormat.WireType.LengthDelimited:
                    ReadPacked(buffer, origin, input, sub => { while (!sub.IsAtEnd) floats.Add(sub.ReadFloat()); });
                    break;
                case TensorName when wire == WireFormat.WireType.LengthDelimited:
                    name = input.ReadString();
                    break;
                case TensorRawData when wire == WireFormat.WireType.LengthDelimited:
                    var (o, l) = PayloadOf(buffer, origin, input);
                    raw = new ReadOnlyMemory<byte>(buffer, o, l);
                    break;
                case TensorExternalData:
                    external = true;
                    input.SkipLastField();
                    break;
                case TensorDataLocation when wire == WireFormat.WireType.Varint:
                    external |= input.ReadInt32() == 1;
                    break;
                default:
                    input.SkipLastField();
                    break;
            }
        }
        if (external)
            throw new ModelFormatException($"ONNX initializer '{name}' keeps its data in an external file, which is not supported.");
        return new OnnxTensor(name, dataType, [.. dims], raw, floats.Count > 0 ? [.. floats] : null);
    }

    /// <summary>Skips the current length-delimited field and returns its payload's (offset, length) in the buffer.</summary>
    private static (int Offset, int Length) PayloadOf(byte[] buffer, long origin, CodedInputStream input)
    {
        var before = (int)(origin + input.Position);
        input.SkipLastField();
        var after = (int)(origin + input.Position);
        var length = new CodedInputStream(buffer, before, after - before).ReadLength();
        return (after - length, length);
    }

    private static void ReadPacked(byte[] buffer, long origin, CodedInputStream input, Action<CodedInputStream> read)
    {
        var (o, l) = PayloadOf(buffer, origin, input);
        read(new CodedInputStream(buffer, o, l));
    }
}
