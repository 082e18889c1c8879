using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>The real backend process over stdio, byte for byte as the extension drives it.</summary>
[TestClass]
public sealed class BackendProcessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [TestMethod]
    public async Task ServesOverStdioCancelsAndExitsCleanly()
    {
        await using var client = RawRpcClient.Start("serve");
        var init = await client.CallAsync("initialize", new { clientName = "process-test" });
        Assert.AreEqual("default", init["result"]!["defaultModel"]!.GetValue<string>(), client.Stderr);

        var analysis = await client.CallAsync("attention/analyze", new { text = "Hello world" }, Timeout);
        var id = analysis["result"]!["analysisId"]!.GetValue<string>();
        var matrix = await client.CallAsync("attention/matrix", new { analysisId = id, layer = 0, head = 0 });
        Assert.AreEqual(4, matrix["result"]!["rows"]!.GetValue<int>());
        Assert.AreEqual(4 * 4 * 4, Convert.FromBase64String(matrix["result"]!["data"]!.GetValue<string>()).Length);

        // $/cancelRequest: the second analyze waits behind the first and is cancelled → -32800.
        var longText = string.Concat(Enumerable.Repeat("every token attends to every other token ", 120));
        var busy = client.Send("attention/analyze", new { text = longText });
        var doomed = client.Send("attention/analyze", new { text = longText });
        client.Send("$/cancelRequest", new { id = doomed }, notification: true);
        var responses = new Dictionary<int, System.Text.Json.Nodes.JsonObject>();
        while (responses.Count < 2)
        {
            var message = await client.ReadAsync(Timeout);
            if (message["id"] is { } messageId) responses[messageId.GetValue<int>()] = message;
        }
        Assert.AreEqual(-32800, responses[doomed]["error"]!["code"]!.GetValue<int>());
        Assert.IsNotNull(responses[busy]["result"]);

        var unknown = await client.CallAsync("no/such/method", new { });
        Assert.AreEqual(-32601, unknown["error"]!["code"]!.GetValue<int>());
        var stillAlive = await client.CallAsync("models/list", new { });
        Assert.IsNotNull(stillAlive["result"]);

        var shutdown = await client.CallAsync("shutdown", null);
        Assert.IsTrue(shutdown.ContainsKey("result"));
        Assert.IsNull(shutdown["result"]);
        client.Send("exit", null, notification: true);
        Assert.IsTrue(client.Process.WaitForExit(10_000), "backend did not exit after exit");
        Assert.AreEqual(0, client.Process.ExitCode);
        // Nothing but frames on stdout: the stream must end exactly here.
        Assert.AreEqual(-1, client.Process.StandardOutput.BaseStream.ReadByte(), "stdout carried bytes outside the protocol");
    }

    [TestMethod]
    public async Task EndOfInputEndsTheProcess()
    {
        await using var client = RawRpcClient.Start();
        var init = await client.CallAsync("initialize", new { });
        Assert.IsNotNull(init["result"]);
        client.CloseInput();
        Assert.IsTrue(client.Process.WaitForExit(10_000), "backend did not exit at end of input");
        Assert.AreEqual(0, client.Process.ExitCode);
    }

    [TestMethod]
    public async Task MalformedFrameDoesNotKillTheServer()
    {
        await using var client = RawRpcClient.Start("serve");
        client.WriteFrame("{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"attention/matrix\",\"params\":{\"analysisId\":\"x\",\"layer\":\"not a " +
            "number\",\"head\":0}}");
        var bad = await client.ResponseAsync(99);
        Assert.IsNotNull(bad["error"], bad.ToJsonString());
        var ok = await client.CallAsync("initialize", new { });
        Assert.IsNotNull(ok["result"], client.Stderr);
    }

    [TestMethod]
    public async Task ErrorRepliesCarryNoStackAndNoDotNetTypeNames()
    {
        await using var client = RawRpcClient.Start("serve");
        client.WriteFrame("""{"jsonrpc":"2.0","id":7,"method":"attention/export","params":{"analysisId":"x","layer":"one"}}""");
        var wrongType = (await client.ResponseAsync(7))["error"]!;
        // Before: -32000 "could not be converted to AttentionViz.Backend.Rpc.ExportParams", the stack in data.
        Assert.AreEqual(-32602, wrongType["code"]!.GetValue<int>(), wrongType.ToJsonString());
        StringAssert.Contains(wrongType["message"]!.GetValue<string>(), "'layer' must be an integer");
        var unknown = (await client.CallAsync("attention/matrix", new { analysisId = "nope", layer = 0, head = 0 }))["error"]!;
        Assert.AreEqual(-32602, unknown["code"]!.GetValue<int>());
        foreach (var error in new[] { wrongType, unknown })
        {
            Assert.IsNull(error["data"], $"error.data must stay empty: {error.ToJsonString()}");
            Assert.DoesNotContain("AttentionViz.", error["message"]!.GetValue<string>());
            Assert.DoesNotContain("System.", error["message"]!.GetValue<string>());
        }
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
    }

    [TestMethod]
    [DataRow("\"a string\"")]
    [DataRow("42")]
    [DataRow("true")]
    public async Task ParamsThatAreNotAnObjectAreInvalidParams(string parameters)
    {
        // Before: "connection closed with an error: Unexpected value kind" and the server exited.
        await using var client = RawRpcClient.Start("serve");
        client.WriteFrame($$"""{"jsonrpc":"2.0","id":5,"method":"attention/export","params":{{parameters}}}""");
        var error = (await client.ResponseAsync(5))["error"]!;
        Assert.AreEqual(-32602, error["code"]!.GetValue<int>(), error.ToJsonString());
        StringAssert.Contains(error["message"]!.GetValue<string>(), "params must be an object of named parameters");
        Assert.IsNull(error["data"]);
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
    }
}
