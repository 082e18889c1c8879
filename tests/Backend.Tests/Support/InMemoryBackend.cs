using System.Diagnostics;
using System.Text.Json;
using AttentionViz.Backend.Rpc;
using AttentionViz.Backend.Runtime;
using Nerdbank.Streams;
using StreamJsonRpc;

namespace AttentionViz.Backend.Tests.Support;

/// <summary>The whole backend in this process, served over an in-memory duplex stream pair to a StreamJsonRpc client.</summary>
public sealed class InMemoryBackend : IDisposable
{
    private readonly JsonRpc _client;

    public BackendHost Host { get; } = new();

    /// <summary>The client end, for tests that look at the whole error reply.</summary>
    public JsonRpc Client => _client;
    public Task<int> Serving { get; }

    public InMemoryBackend()
    {
        var (serverStream, clientStream) = FullDuplexStream.CreatePair();
        Serving = Host.Server.RunAsync(serverStream, serverStream);
        _client = new JsonRpc(new HeaderDelimitedMessageHandler(clientStream, clientStream, BackendServer.CreateFormatter()));
        _client.StartListening();
    }

    public Task<JsonElement> Call(string method, object? parameters = null, CancellationToken cancellationToken = default) =>
        _client.InvokeWithParameterObjectAsync<JsonElement>(method, parameters ?? new { }, cancellationToken);

    /// <summary>The JSON-RPC error code the call fails with; the test fails if it succeeds or has no message.</summary>
    public async Task<int> ErrorCode(string method, object? parameters)
    {
        var error = await Assert.ThrowsAsync<RemoteRpcException>(() => Call(method, parameters));
        Assert.IsFalse(string.IsNullOrWhiteSpace(error.Message));
        return error switch
        {
            RemoteInvocationException invocation => invocation.ErrorCode,
            RemoteMethodNotFoundException notFound => (int)notFound.ErrorCode,
            _ => throw new AssertFailedException($"unexpected {error.GetType().Name}: {error.Message}"),
        };
    }

    public void Dispose()
    {
        _client.Dispose();
        Host.Dispose();
    }
}

/// <summary>The real executable's command line.</summary>
public static class BackendCli
{
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) => RunWith(null, args);

    /// <summary>The command line with extra environment variables (the memory budget, …).</summary>
    public static (int ExitCode, string Stdout, string Stderr) RunWith(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(RawRpcClient.BackendDll);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in ProcessSetup.NativeEnvironment) start.Environment[name] = value;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.IsTrue(process.WaitForExit(120_000), "CLI did not finish");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
