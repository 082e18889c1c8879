using System.Diagnostics;
using System.Text;
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

    /// <summary>Sends every request before reading any answer (as the panel's grid does), and returns the results in order.</summary>
    public JsonNode[] CallAll(string method, IReadOnlyList<JsonObject> parameters)
    {
        var first = _id + 1;
        foreach (var p in parameters) Send(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = ++_id, ["method"] = method, ["params"] = p });
        var results = new JsonNode[parameters.Count];
        for (var answered = 0; answered < results.Length;)
        {
            var message = Receive();
            if (message["id"]?.GetValue<int>() is not { } id || message["method"] is not null || id < first || id > _id) continue;
            if (message["error"] is { } error)
                throw new RpcException(error["code"]!.GetValue<int>(), error["message"]?.GetValue<string>() ?? error.ToJsonString());
            results[id - first] = message["result"]!;
            answered++;
        }
        return results;
    }

    private void Send(JsonObject message)
    {
        var body = Encoding.UTF8.GetBytes(message.ToJsonString());
        var stdin = process.StandardInput.BaseStream;
        stdin.Write(Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n"));
        stdin.Write(body);
        stdin.Flush();
    }

    private JsonNode Receive()
    {
        var stdout = process.StandardOutput.BaseStream;
        var header = new StringBuilder();
        while (!header.ToString().EndsWith("\r\n\r\n"))
        {
            var b = stdout.ReadByte();
            if (b < 0) throw new IOException($"the backend ended{(process.WaitForExit(5_000) ? $" with exit code {process.ExitCode}" : "")}.");
            header.Append((char)b);
        }
        var length = int.Parse(header.ToString().Split("\r\n").First(l => l.StartsWith("Content-Length")).Split(':')[1]);
        var buffer = new byte[length];
        stdout.ReadExactly(buffer);
        return JsonNode.Parse(buffer)!;
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
