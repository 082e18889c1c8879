using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttentionViz.Backend.Bench;

/// <summary>An error reply of the backend: its JSON-RPC code and message.</summary>
internal sealed class RpcException(int code, string message) : Exception(message)
{
    public int Code { get; } = code;
}

/// <summary>A minimal LSP-framed JSON-RPC client for the real backend process.</summary>
internal sealed class StdioClient(Process process) : IDisposable
{
    private const int StderrLinesKept = 20;
    private readonly Queue<string> _stderrTail = new();
    // Buffered: reading the header a byte at a time from the pipe was a read(2) per byte, the client's own cost in
    // every measured call.
    private readonly BufferedStream _stdout = new(process.StandardOutput.BaseStream, 1 << 16);
    private int _id;

    public int ProcessId => process.Id;

    /// <summary>Called with each notification the server sends while a call waits for its answer ($/progress).</summary>
    public Action<string, JsonNode?>? OnNotification { get; set; }

    public static StdioClient Start(string dll)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("serve");
        foreach (var (name, value) in Runtime.ProcessSetup.NativeEnvironment) start.Environment[name] = value;
        var p = Process.Start(start)!;
        var client = new StdioClient(p);
        p.ErrorDataReceived += (_, e) => client.KeepStderr(e.Data);
        p.BeginErrorReadLine();
        return client;
    }

    /// <summary>The backend's last lines on stderr, for a failure message.</summary>
    public string StderrTail
    {
        get { lock (_stderrTail) return string.Join("\n", _stderrTail); }
    }

    /// <exception cref="RpcException">The backend answered an error.</exception>
    /// <exception cref="IOException">The backend process ended before it answered.</exception>
    public JsonNode Call(string method, JsonObject parameters)
    {
        var id = ++_id;
        Send(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = parameters });
        while (true)
        {
            var message = Receive();
            if (message["method"]?.GetValue<string>() is { } incoming)
            {
                // A request from the server (none is in the protocol today) gets an empty answer rather than a deadlock.
                if (message["id"] is { } requestId) Send(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = requestId.DeepClone(), ["result"] = null });
                else OnNotification?.Invoke(incoming, message["params"]);
                continue;
            }
            if (message["id"]?.GetValue<int>() != id) continue;
            if (message["error"] is { } error)
                throw new RpcException(error["code"]!.GetValue<int>(), error["message"]?.GetValue<string>() ?? error.ToJsonString());
            return message["result"] ?? throw new InvalidOperationException(message.ToJsonString());
        }
    }

    /// <summary>One call whose answer is read with JsonDocument (a large matrix: a JsonNode tree of its 1.4 MB of base64
    /// at 512 tokens was the client's cost, not the backend's).</summary>
    public JsonElement CallElement(string method, JsonObject parameters) => CallAll(method, [parameters])[0];

    /// <summary>Sends every request before reading any answer (as the panel's grid does), and returns the results in order
    /// (read with JsonDocument, as a client that only hands the answers on would: a JsonNode tree per answer cost more
    /// than the backend's work for it).</summary>
    public JsonElement[] CallAll(string method, IReadOnlyList<JsonObject> parameters)
    {
        var first = _id + 1;
        // One write, as Node's stream buffers the messages a webview posts in a burst (a flush per message measured the
        // client's pipe writes against the backend's reads).
        var burst = new MemoryStream();
        foreach (var p in parameters) Frame(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = ++_id, ["method"] = method, ["params"] = p }, burst);
        var stdin = process.StandardInput.BaseStream;
        burst.WriteTo(stdin);
        stdin.Flush();
        var results = new JsonElement[parameters.Count];
        for (var answered = 0; answered < results.Length;)
        {
            using var message = JsonDocument.Parse(ReceiveBytes());
            var root = message.RootElement;
            if (!root.TryGetProperty("id", out var idElement) || root.TryGetProperty("method", out _)) continue;
            var id = idElement.GetInt32();
            if (id < first || id > _id) continue;
            if (root.TryGetProperty("error", out var error))
                throw new RpcException(error.GetProperty("code").GetInt32(), error.GetProperty("message").GetString() ?? error.ToString());
            results[id - first] = root.GetProperty("result").Clone();
            answered++;
        }
        return results;
    }

    private void Send(JsonObject message)
    {
        var stdin = process.StandardInput.BaseStream;
        Frame(message, stdin);
        stdin.Flush();
    }

    private static void Frame(JsonObject message, Stream to)
    {
        var body = Encoding.UTF8.GetBytes(message.ToJsonString());
        to.Write(Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n"));
        to.Write(body);
    }

    private JsonNode Receive() => JsonNode.Parse(ReceiveBytes())!;

    private byte[] ReceiveBytes()
    {
        var header = new StringBuilder();
        while (header.Length < 4 || header[^1] != '\n' || header[^2] != '\r' || header[^3] != '\n' || header[^4] != '\r')
        {
            var b = _stdout.ReadByte();
            if (b < 0) throw new IOException($"the backend ended{(process.WaitForExit(5_000) ? $" with exit code {process.ExitCode}" : "")}.");
            header.Append((char)b);
        }
        var length = int.Parse(header.ToString().Split("\r\n").First(l => l.StartsWith("Content-Length")).Split(':')[1]);
        var buffer = new byte[length];
        _stdout.ReadExactly(buffer);
        return buffer;
    }

    private void KeepStderr(string? line)
    {
        if (line is null) return;
        lock (_stderrTail)
        {
            _stderrTail.Enqueue(line);
            while (_stderrTail.Count > StderrLinesKept) _stderrTail.Dequeue();
        }
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            Machine.AddChildTicks(process.Id);
            process.Kill();
        }
        process.WaitForExit();
        process.Dispose();
    }
}
