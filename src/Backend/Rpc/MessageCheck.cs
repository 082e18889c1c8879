using System.Buffers;
using System.Text.Json;
using System.Text.Unicode;

namespace AttentionViz.Backend.Rpc;

/// <summary>
/// What to do with one complete body: forward it to StreamJsonRpc, or answer it here (JSON-RPC 2.0, section 5.1).
/// Read with <see cref="Utf8JsonReader"/>, not JsonDocument: the document's index of a large body of many tokens would
/// be rented from the shared ArrayPool and stay resident long after the request.
/// </summary>
internal sealed class MessageCheck
{
    // Deep enough never to throw before the depth check below can name the depth.
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = FrameGuard.MaxMessageBytes };

    public bool Forward { get; private init; }
    /// <summary>The forwarded request's id as <see cref="RequestId.Key"/>; null for a notification.</summary>
    public string? Id { get; private init; }
    public AppErrorCode? Error { get; private init; }
    public string? Dropped { get; private init; }
    public List<byte[]> Replies { get; } = [];
    private bool _batch;

    /// <summary>A valid id: an integer, a string, or null.</summary>
    internal readonly record struct RequestId(long? Number, string? Text)
    {
        public string? Key => Number is { } n ? $"n:{n}" : Text is { } t ? $"s:{t}" : null;

        public void WriteTo(Utf8JsonWriter writer)
        {
            if (Number is { } n) writer.WriteNumberValue(n);
            else if (Text is { } t) writer.WriteStringValue(t);
            else writer.WriteNullValue();
        }
    }

    /// <summary>The reply frame's body: one error object, or an array of them for a batch.</summary>
    public byte[] Reply()
    {
        if (!_batch) return Replies[0];
        var joined = new ArrayBufferWriter<byte>();
        joined.Write("["u8);
        for (var i = 0; i < Replies.Count; i++)
        {
            if (i > 0) joined.Write(","u8);
            joined.Write(Replies[i]);
        }
        joined.Write("]"u8);
        return joined.WrittenSpan.ToArray();
    }

    public static MessageCheck Check(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty) return Refuse(null, AppErrorCode.ParseError, "Parse error: the message is empty.");
        if (body.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
            return Refuse(null, AppErrorCode.ParseError, "Parse error: the message starts with a byte order mark; send UTF-8 without one.");
        if (!Utf8.IsValid(body)) return Refuse(null, AppErrorCode.ParseError, "Parse error: the message is not valid UTF-8.");
        var depth = 0;
        try
        {
            var reader = new Utf8JsonReader(body, ReaderOptions);
            while (reader.Read())
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) depth = Math.Max(depth, reader.CurrentDepth + 1);
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
            return Refuse(null, AppErrorCode.ParseError, $"Parse error: the message is not valid JSON{where}.");
        }
        if (depth > FrameGuard.MaxDepth)
            return Refuse(null, AppErrorCode.InvalidRequest,
                $"Invalid request: the message nests {depth} levels deep; the most is {FrameGuard.MaxDepth}.");

        var json = new Utf8JsonReader(body, ReaderOptions);
        json.Read();
        if (json.TokenType != JsonTokenType.StartArray) return One(ref json);
        var batch = new MessageCheck { Error = AppErrorCode.InvalidRequest, _batch = true };
        var elements = 0;
        while (json.Read() && json.TokenType != JsonTokenType.EndArray)
        {
            elements++;
            var single = One(ref json);
            if (single.Replies.Count > 0) batch.Replies.AddRange(single.Replies);
            else if (single.Forward && single.RequestIdValue is { } id)
                batch.Replies.Add(ErrorReply(id, AppErrorCode.InvalidRequest,
                    "Invalid request: batches are not supported; send each request in its own message."));
        }
        return elements == 0
            ? Refuse(null, AppErrorCode.InvalidRequest, "Invalid request: an empty batch.")
            : batch;
    }

    private RequestId? RequestIdValue { get; init; }

    /// <summary>One message of a frame or a batch; the reader is on its first token and is left on its last.</summary>
    private static MessageCheck One(ref Utf8JsonReader json)
    {
        if (json.TokenType != JsonTokenType.StartObject)
        {
            json.Skip();
            return Refuse(null, AppErrorCode.InvalidRequest, "Invalid request: a message must be a JSON object.");
        }
        var depth = json.CurrentDepth;
        RequestId? id = null;
        bool hasId = false, badId = false, hasMethod = false, methodString = false, hasResult = false, twice = false;
        string? version = null;
        var seen = new HashSet<string>();
        while (json.Read() && !(json.TokenType == JsonTokenType.EndObject && json.CurrentDepth == depth))
        {
            var name = json.GetString()!;
            json.Read();
            if (name is "id" or "jsonrpc" or "method" or "params" or "result" or "error" && !seen.Add(name)) twice = true;
            switch (name)
            {
                case "id":
                    hasId = true;
                    if (json.TokenType == JsonTokenType.String) id = new RequestId(null, json.GetString());
                    else if (json.TokenType == JsonTokenType.Number && json.TryGetInt64(out var n)) id = new RequestId(n, null);
                    else if (json.TokenType == JsonTokenType.Null) id = new RequestId(null, null);
                    else badId = true;
                    break;
                case "jsonrpc":
                    version = json.TokenType == JsonTokenType.String ? json.GetString() : null;
                    break;
                case "method":
                    hasMethod = true;
                    methodString = json.TokenType == JsonTokenType.String;
                    break;
                case "result" or "error":
                    hasResult = true;
                    break;
            }
            json.Skip();
        }
        if (twice) return Refuse(null, AppErrorCode.InvalidRequest, "Invalid request: a member appears twice in one message.");
        if (badId) return Refuse(null, AppErrorCode.InvalidRequest, "Invalid request: 'id' must be a string, an integer or null.");
        if (version != "2.0") return Refuse(id, AppErrorCode.InvalidRequest, "Invalid request: 'jsonrpc' must be \"2.0\".");
        if (hasMethod)
            // Scalar params pass: BackendFormatter turns them into -32602 naming the method.
            return methodString
                ? new MessageCheck { Forward = true, Id = id?.Key, RequestIdValue = hasId ? id : null }
                : Refuse(id, AppErrorCode.InvalidRequest, "Invalid request: 'method' must be a string.");
        if (hasId && hasResult)
            return new MessageCheck { Dropped = "ignored a response from the client: the backend sends no requests" };
        return Refuse(id, AppErrorCode.InvalidRequest, "Invalid request: 'method' is missing.");
    }

    private static MessageCheck Refuse(RequestId? id, AppErrorCode code, string message)
    {
        var check = new MessageCheck { Error = code };
        check.Replies.Add(ErrorReply(id, code, message));
        return check;
    }

    public static byte[] ErrorReply(RequestId? id, AppErrorCode code, string message)
    {
        var output = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(output))
        {
            writer.WriteStartObject();
            writer.WriteString("jsonrpc", "2.0");
            writer.WritePropertyName("id");
            (id ?? new RequestId(null, null)).WriteTo(writer);
            writer.WriteStartObject("error");
            writer.WriteNumber("code", (int)code);
            writer.WriteString("message", message);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return output.WrittenSpan.ToArray();
    }

    /// <summary>The id of a response StreamJsonRpc wrote, read from its first bytes only (it writes the id early).</summary>
    public static string? LeadingId(ReadOnlySequence<byte> body)
    {
        var reader = new Utf8JsonReader(body.Slice(0, Math.Min(body.Length, 512)), isFinalBlock: false, default);
        try
        {
            while (reader.Read())
            {
                if (reader.CurrentDepth != 1 || reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("id"u8))
                    continue;
                if (!reader.Read()) return null;
                return reader.TokenType switch
                {
                    JsonTokenType.Number when reader.TryGetInt64(out var n) => new RequestId(n, null).Key,
                    JsonTokenType.String => new RequestId(null, reader.GetString()).Key,
                    _ => null,
                };
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }
}
