using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace AttentionViz.Backend.Rpc;

/// <summary>
/// StreamJsonRpc's System.Text.Json formatter, except for a request whose <c>params</c> is neither an object nor an
/// array: the base formatter throws while reading the frame, which ends the connection. Here the value is wrapped in
/// an array instead, so binding fails the usual way and the caller gets -32602 from <see cref="BackendJsonRpc"/>.
/// </summary>
internal sealed class BackendFormatter : SystemTextJsonFormatter, IJsonRpcMessageTextFormatter
{
    JsonRpcMessage IJsonRpcMessageFormatter.Deserialize(ReadOnlySequence<byte> contentBuffer) =>
        ((IJsonRpcMessageTextFormatter)this).Deserialize(contentBuffer, Encoding);

    JsonRpcMessage IJsonRpcMessageTextFormatter.Deserialize(ReadOnlySequence<byte> contentBuffer, Encoding encoding)
    {
        try
        {
            return Deserialize(contentBuffer, encoding);
        }
        // Not only JsonException: the base's type for this case is an implementation detail. Only a frame whose params
        // are a scalar is read again; any other failure stays the base's.
        catch (Exception) when (WithScalarParamsWrapped(contentBuffer, encoding) is { } wrapped)
        {
            return Deserialize(new ReadOnlySequence<byte>(wrapped), encoding);
        }
    }

    /// <summary>The frame with <c>"params": x</c> as <c>[x]</c>, or null when its params are not the problem.</summary>
    private static byte[]? WithScalarParamsWrapped(ReadOnlySequence<byte> contentBuffer, Encoding encoding)
    {
        JsonNode? frame;
        try
        {
            frame = JsonNode.Parse(encoding.GetString(contentBuffer));
        }
        catch (JsonException)
        {
            return null;
        }
        if (frame is not JsonObject request || !request.TryGetPropertyValue("params", out var parameters)
            || parameters is null or JsonObject or JsonArray)
            return null;
        request["params"] = new JsonArray(parameters.DeepClone());
        return encoding.GetBytes(request.ToJsonString());
    }
}
