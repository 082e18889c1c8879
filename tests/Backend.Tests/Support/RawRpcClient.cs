using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AttentionViz.Backend.Tests.Support;

/// <summary>
/// Drives the real backend process over stdio with LSP framing, byte by byte, the way vscode-jsonrpc does. Every byte
/// the backend writes to stdout must belong to a well-formed frame.
/// </summary>
public sealed class RawRpcClient : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Stream _stdout;
    private readonly StringBuilder _stderr = new();
    private int _nextId;

    private RawRpcClient(Process process)
    {
        _process = process;
        _stdout = process.StandardOutput.BaseStream;
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        process.BeginErrorReadLine();
    }

    public Process Process => _process;
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Waits until the backend's log holds <paramref name="text"/> (e.g. "prewarmed", before measuring RSS).</summary>
    public async Task WaitForLogAsync(string text, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!Stderr.Contains(text, StringComparison.Ordinal))
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"the backend never logged '{text}':\n{Stderr}");
            await Task.Delay(20);
        }
    }

    public static string BackendDll => Path.Combine(AppContext.BaseDirectory, "attentionviz-backend.dll");

    public static RawRpcClient Start(params string[] args) => StartWith(null, args);

    /// <summary>Starts the backend with extra environment variables (e.g. a memory budget).</summary>
    public static RawRpcClient StartWith(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(BackendDll);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in AttentionViz.Backend.Runtime.ProcessSetup.NativeEnvironment) start.Environment[name] = value;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        return new RawRpcClient(Process.Start(start)!);
    }

    public int Send(string method, object? parameters, bool notification = false)
    {
        var id = notification ? 0 : Interlocked.Increment(ref _nextId);
        var message = new JsonObject { ["jsonrpc"] = "2.0", ["method"] = method };
        if (!notification) message["id"] = id;
        if (parameters is not null) message["params"] = JsonSerializer.SerializeToNode(parameters);
        WriteFrame(message.ToJsonString());
        return id;
    }

    public void WriteFrame(string json)
    {
        var body = Encoding.UTF8.GetBytes(json);
        var stdin = _process.StandardInput.BaseStream;
        stdin.Write(Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n"));
        stdin.Write(body);
        stdin.Flush();
    }

    public void CloseInput() => _process.StandardInput.Close();

    /// <summary>Reads the next frame; fails the test on anything that is not a frame.</summary>
    public async Task<JsonObject> ReadAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var header = new StringBuilder();
        var one = new byte[1];
        while (!header.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await _stdout.ReadAsync(one, cts.Token) == 0) throw new EndOfStreamException("backend closed stdout. stderr:\n" + Stderr);
            header.Append((char)one[0]);
        }
        var lines = header.ToString().Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var lengthLine = lines.SingleOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            ?? throw new AssertFailedException($"stdout carried something that is not an LSP frame header: {header}");
        foreach (var line in lines)
            Assert.IsTrue(line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)
                || line.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase),
                $"unexpected header line on stdout: {line}");
        var length = int.Parse(lengthLine["Content-Length:".Length..].Trim());
        var body = new byte[length];
        await _stdout.ReadExactlyAsync(body, cts.Token);
        return JsonNode.Parse(body)!.AsObject();
    }

    /// <summary>Reads frames until the response with this id arrives.</summary>
    public async Task<JsonObject> ResponseAsync(int id, TimeSpan? timeout = null)
    {
        while (true)
        {
            var message = await ReadAsync(timeout ?? TimeSpan.FromSeconds(60));
            if (message["id"]?.GetValue<int>() == id) return message;
        }
    }

    public async Task<JsonObject> CallAsync(string method, object? parameters, TimeSpan? timeout = null) =>
        await ResponseAsync(Send(method, parameters), timeout);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
