using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>
/// Bad frames against the real backend process (docs/protocol.md, "Transport"): each class gets its JSON-RPC error
/// (or, for a response from the client, nothing), the process stays alive, and the next valid request is answered.
/// Before the frame guard, every class here ended the process (exit code 0) or stalled it.
/// </summary>
[TestClass]
public sealed class FrameGuardProcessTests
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(20);
    private const int ProbeId = 1000;

    public TestContext TestContext { get; set; } = null!;

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);
    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
    private static byte[] Cat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
    private static byte[] Framed(byte[] body, string extraHeader = "") =>
        Cat(Ascii($"Content-Length: {body.Length}\r\n{extraHeader}\r\n"), body);
    private static byte[] Framed(string json) => Framed(Utf8(json));

    private const string Valid = """{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}}""";

    /// <summary>One class of bad input: its bytes and the replies expected, each as (code, id as JSON).</summary>
    private sealed record BadFrame(string Name, byte[] Bytes, params (int Code, string Id)[] Replies);

    private static readonly (int, string) ParseError = (-32700, "null");

    /// <summary>A request whose params hold arrays nested this deep (two more levels for the envelope and params).</summary>
    private static string Deep(int depth) =>
        """{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"x":""" + new string('[', depth) + new string(']', depth) + "}}";

    private static string Initialize(string clientName) =>
        """{"jsonrpc":"2.0","id":9,"method":"initialize","params":{"clientName":""" + $"\"{clientName}\"}}}}";

    private static readonly BadFrame[] Cases =
    [
        // Framing.
        new("length missing", Cat(Ascii("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"), Utf8(Valid)), ParseError),
        new("length negative", Cat(Ascii("Content-Length: -5\r\n\r\n"), Utf8(Valid)), ParseError),
        new("length not a number", Cat(Ascii("Content-Length: abc\r\n\r\n"), Utf8(Valid)), ParseError),
        new("length 2^31", Cat(Ascii("Content-Length: 2147483648\r\n\r\n"), Utf8(Valid)), (-32600, "null")),
        new("length duplicated", Framed(Utf8(Valid), $"Content-Length: {Valid.Length}\r\n"), ParseError),
        // Read as a frame cut short in its header, then a frame of 7 bytes (a frame cut short runs into the next one).
        new("length duplicated, different", Framed(Utf8(Valid), "Content-Length: 7\r\n"), ParseError, ParseError),
        new("length shorter than the body", Cat(Ascii("Content-Length: 10\r\n\r\n"), Utf8(Valid)), ParseError),
        new("length longer than the body", Cat(Ascii($"Content-Length: {Valid.Length + 40}\r\n\r\n"), Utf8(Valid)), ParseError),
        new("LF-only line ends", Cat(Ascii($"Content-Length: {Valid.Length}\n\n"), Utf8(Valid)), ParseError),
        new("charset not utf-8", Framed(Utf8(Valid), "Content-Type: application/vscode-jsonrpc; charset=iso-8859-1\r\n"), ParseError),
        new("no header", Utf8(Valid), ParseError),
        new("header garbage", Cat(Ascii("Hello there\r\n\r\n"), Utf8(Valid)), ParseError),
        new("header over 8 KiB", Cat(Ascii("X-Padding: " + new string('x', 9000) + "\r\n\r\n"), Utf8(Valid)), ParseError),
        new("empty body", Ascii("Content-Length: 0\r\n\r\n"), ParseError),
        // Not JSON.
        new("invalid UTF-8", Framed(Cat(Utf8("""{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"clientName":" """),
            [0xC3, 0x28], Utf8("\"}}"))), ParseError),
        new("byte order mark", Framed(Cat([0xEF, 0xBB, 0xBF], Utf8(Valid))), ParseError),
        new("comment", Framed("""{"jsonrpc":"2.0","id":3,/* c */"method":"initialize"}"""), ParseError),
        new("trailing comma", Framed("""{"jsonrpc":"2.0","id":3,"method":"initialize",}"""), ParseError),
        new("NaN", Framed("""{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"x":NaN}}"""), ParseError),
        new("truncated JSON", Framed("""{"jsonrpc":"2.0","id":3,"""), ParseError),
        // JSON, but not a JSON-RPC 2.0 request.
        new("empty batch", Framed("[]"), (-32600, "null")),
        new("batch of one request", Framed($"[{Valid}]"), (-32600, "3")),
        new("batch of two", Framed("""[1,{"jsonrpc":"2.0","id":"b","method":"initialize"}]"""), (-32600, "null"), (-32600, "\"b\"")),
        new("batch of a notification", Framed("""[{"jsonrpc":"2.0","method":"initialized"}]""")),
        new("id an object", Framed("""{"jsonrpc":"2.0","id":{"a":1},"method":"initialize"}"""), (-32600, "null")),
        new("id an array", Framed("""{"jsonrpc":"2.0","id":[1],"method":"initialize"}"""), (-32600, "null")),
        new("id a float", Framed("""{"jsonrpc":"2.0","id":1.5,"method":"initialize"}"""), (-32600, "null")),
        new("id a boolean", Framed("""{"jsonrpc":"2.0","id":true,"method":"initialize"}"""), (-32600, "null")),
        new("id beyond 64 bits", Framed("""{"jsonrpc":"2.0","id":123456789012345678901234,"method":"initialize"}"""), (-32600, "null")),
        new("id twice", Framed("""{"jsonrpc":"2.0","id":3,"id":4,"method":"initialize"}"""), (-32600, "null")),
        new("params a string", Framed("""{"jsonrpc":"2.0","id":3,"method":"initialize","params":"x"}"""), (-32602, "3")),
        new("params a number", Framed("""{"jsonrpc":"2.0","id":3,"method":"initialize","params":5}"""), (-32602, "3")),
        new("jsonrpc 1.0", Framed("""{"jsonrpc":"1.0","id":3,"method":"initialize"}"""), (-32600, "3")),
        new("jsonrpc a number", Framed("""{"jsonrpc":2.0,"id":3,"method":"initialize"}"""), (-32600, "3")),
        new("jsonrpc missing", Framed("""{"id":3,"method":"initialize"}"""), (-32600, "3")),
        new("method missing", Framed("""{"jsonrpc":"2.0","id":3,"params":{}}"""), (-32600, "3")),
        new("method a number", Framed("""{"jsonrpc":"2.0","id":"m","method":7}"""), (-32600, "\"m\"")),
        new("not an object", Framed("42"), (-32600, "null")),
        new("null", Framed("null"), (-32600, "null")),
        new("response with an unknown id", Framed("""{"jsonrpc":"2.0","id":77,"result":null}""")),
        new("error response with an unknown id", Framed("""{"jsonrpc":"2.0","id":78,"error":{"code":1,"message":"x"}}""")),
        new("nesting 64", Framed(Deep(62)), (-32600, "null")),
        new("nesting 10000", Framed(Deep(10_000)),
            (-32600, "null")),
    ];

    public static IEnumerable<object[]> CaseNames => Cases.Select(c => new object[] { c.Name });

    [TestMethod]
    [DynamicData(nameof(CaseNames))]
    public async Task EachBadFrameClassIsAnsweredAndTheServerGoesOn(string name)
    {
        var bad = Cases.Single(c => c.Name == name);
        await using var client = RawRpcClient.Start("serve");
        await SendAndExpect(client, bad);
        Assert.IsFalse(client.Process.HasExited, client.Stderr);
    }

    /// <summary>All classes in one process, in a seeded random order: each leaves the stream in step for the next.</summary>
    [TestMethod]
    public async Task AllClassesInOneProcessInSeededOrder()
    {
        await using var client = RawRpcClient.Start("serve");
        var random = new Random(12);
        foreach (var bad in Cases.OrderBy(_ => random.Next())) await SendAndExpect(client, bad);
        var shutdown = await client.CallAsync("shutdown", null);
        Assert.IsTrue(shutdown.ContainsKey("result"), shutdown.ToJsonString());
    }

    /// <summary>Sends the bad bytes and then a valid request: the expected errors come first, then the request's answer.</summary>
    private static async Task SendAndExpect(RawRpcClient client, BadFrame bad)
    {
        Write(client, Cat(bad.Bytes, Framed($"{{\"jsonrpc\":\"2.0\",\"id\":{ProbeId},\"method\":\"initialize\",\"params\":{{}}}}")));
        var replies = new List<JsonNode>();
        while (true)
        {
            var message = await ReadFrameAsync(client, ReplyTimeout);
            if (message is JsonObject o && o["id"]?.ToJsonString() == ProbeId.ToString()) break;
            if (message is JsonArray batch) replies.AddRange(batch.Select(m => m!));
            else replies.Add(message);
        }
        var got = replies.Select(r => (Code: r["error"]?["code"]?.GetValue<int>() ?? 0, Id: r["id"]?.ToJsonString() ?? "null")).ToArray();
        CollectionAssert.AreEqual(bad.Replies.Select(r => $"{r.Code} {r.Id}").ToArray(), got.Select(r => $"{r.Code} {r.Id}").ToArray(),
            $"{bad.Name}: {string.Join(" | ", replies.Select(r => r.ToJsonString()))}\nstderr:\n{client.Stderr}");
        foreach (var reply in replies)
        {
            Assert.AreEqual("2.0", reply["jsonrpc"]?.GetValue<string>(), bad.Name);
            ErrorModelTests.AssertPlain(reply["error"]!["message"]!.GetValue<string>(), reply["error"]!["data"]);
        }
    }

    [TestMethod]
    public async Task SeededMutationsOfAValidFrameNeverStopTheServer()
    {
        // 300 frames, each a valid one with a byte flipped, dropped or inserted, or cut short; each followed by a valid
        // request. Whatever a mutation makes, the answer is a whole frame, an error has one of the transport or request
        // codes and no data, and the next request is answered without waiting for a timeout.
        await using var client = RawRpcClient.Start("serve");
        var random = new Random(2024);
        var frame = Framed(Valid);
        var codes = new Dictionary<int, int>();
        for (var i = 0; i < 300; i++)
        {
            var bytes = frame.ToList();
            var at = random.Next(bytes.Count);
            switch (random.Next(4))
            {
                case 0: bytes[at] = (byte)random.Next(256); break;
                case 1: bytes.RemoveAt(at); break;
                case 2: bytes.Insert(at, (byte)random.Next(256)); break;
                default: bytes.RemoveRange(at, bytes.Count - at); break;
            }
            var clock = Stopwatch.StartNew();
            Write(client, Cat(bytes.ToArray(), Framed($"{{\"jsonrpc\":\"2.0\",\"id\":{ProbeId},\"method\":\"initialize\"}}")));
            while (true)
            {
                JsonNode message;
                try
                {
                    message = await ReadFrameAsync(client, ReplyTimeout);
                }
                catch (AssertFailedException e)
                {
                    throw new AssertFailedException($"mutation {i}: {Printable(bytes)}: {e.Message}");
                }
                foreach (var reply in message is JsonArray batch ? batch.Select(m => m!) : [message])
                {
                    var code = reply["error"]?["code"]?.GetValue<int>() ?? 0;
                    codes[code] = codes.GetValueOrDefault(code) + 1;
                    if (code != 0)
                    {
                        CollectionAssert.Contains(new[] { -32700, -32600, -32601, -32602 }, code, reply.ToJsonString());
                        ErrorModelTests.AssertPlain(reply["error"]!["message"]!.GetValue<string>(), reply["error"]!["data"]);
                    }
                }
                if (message is JsonObject o && o["id"]?.ToJsonString() == ProbeId.ToString()) break;
            }
            Assert.IsLessThan(TimeSpan.FromSeconds(3), clock.Elapsed, $"mutation {i} stalled the stream: {Printable(bytes)}");
        }
        TestContext.WriteLine(string.Join(", ", codes.OrderBy(c => c.Key).Select(c => $"{c.Key}: {c.Value}")));
        Assert.IsFalse(client.Process.HasExited, client.Stderr);
    }

    private static string Printable(IEnumerable<byte> bytes) =>
        string.Concat(bytes.Select(b => b is >= 32 and < 127 ? ((char)b).ToString() : $"\\x{b:X2}"));

    [TestMethod]
    public async Task RepliesOfTheGuardAndOfStreamJsonRpcNeverInterleave()
    {
        // 300 frames in one write, seeded mix of valid requests (answered by StreamJsonRpc) and bad ones (answered by
        // the guard while StreamJsonRpc writes): every reply must arrive as a whole frame, each id exactly once.
        await using var client = RawRpcClient.Start("serve");
        var random = new Random(7);
        var expected = new Dictionary<string, int>();
        var bytes = new List<byte>();
        for (var i = 0; i < 300; i++)
        {
            var valid = random.Next(2) == 0;
            var version = valid ? "2.0" : "1.0";
            bytes.AddRange(Framed($"{{\"jsonrpc\":\"{version}\",\"id\":{i},\"method\":\"models/list\",\"params\":{{}}}}"));
            expected[i.ToString()] = valid ? 0 : -32600;
        }
        Write(client, bytes.ToArray());
        var got = new Dictionary<string, int>();
        while (got.Count < expected.Count)
        {
            var reply = (JsonObject)await ReadFrameAsync(client, ReplyTimeout);
            var id = reply["id"]!.ToJsonString();
            Assert.IsTrue(got.TryAdd(id, reply["error"]?["code"]?.GetValue<int>() ?? 0), $"id {id} answered twice");
        }
        CollectionAssert.AreEquivalent(expected.ToList(), got.ToList());
    }

    [TestMethod]
    public async Task AnIncompleteFrameTimesOutAndTheNextRequestIsServed()
    {
        // Before: the request stalled forever. The guard answers after 5 s without progress (FrameGuard.IncompleteTimeout).
        await using var client = RawRpcClient.Start("serve");
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
        var clock = Stopwatch.StartNew();
        Write(client, Cat(Ascii("Content-Length: 200\r\n\r\n"), Utf8(Valid)));
        var reply = (JsonObject)await ReadFrameAsync(client, ReplyTimeout);
        var elapsed = clock.Elapsed;
        Assert.AreEqual(-32700, reply["error"]!["code"]!.GetValue<int>(), reply.ToJsonString());
        Assert.IsTrue(reply.ContainsKey("id") && reply["id"] is null, reply.ToJsonString());
        StringAssert.Contains(reply["error"]!["message"]!.GetValue<string>(), "of 200 bytes");
        Assert.IsTrue(elapsed >= TimeSpan.FromSeconds(4.5) && elapsed < TimeSpan.FromSeconds(9), $"answered after {elapsed}");
        TestContext.WriteLine($"incomplete body answered after {elapsed.TotalMilliseconds:F0} ms");

        // An incomplete header times out the same way.
        clock.Restart();
        Write(client, Ascii("Content-Length: 2"));
        reply = (JsonObject)await ReadFrameAsync(client, ReplyTimeout);
        Assert.AreEqual(-32700, reply["error"]!["code"]!.GetValue<int>(), reply.ToJsonString());
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromSeconds(4.5) && clock.Elapsed < TimeSpan.FromSeconds(9), $"answered after {clock.Elapsed}");
        TestContext.WriteLine($"incomplete header answered after {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
        Assert.IsFalse(client.Process.HasExited);
    }

    [TestMethod]
    public async Task AMessageOverTheMaximumIsRefusedWithoutHoldingIt()
    {
        // Before: the 100 MB clientName went into the log (105 MB) and RSS stayed at 1.06 GB.
        await using var client = RawRpcClient.Start("serve");
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
        await client.WaitForLogAsync("prewarmed", TimeSpan.FromSeconds(60));                // libtorch's own memory first
        var before = RssMb(client.Process);
        var huge = Framed(Initialize(new string('n', 100 << 20)));
        var writing = Task.Run(() => Write(client, huge));
        var reply = (JsonObject)await ReadFrameAsync(client, ReplyTimeout);
        await writing;
        Assert.AreEqual(-32600, reply["error"]!["code"]!.GetValue<int>(), reply.ToJsonString());
        Assert.IsTrue(reply.ContainsKey("id") && reply["id"] is null, reply.ToJsonString());
        StringAssert.Contains(reply["error"]!["message"]!.GetValue<string>(), "64 MiB");
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
        var after = RssMb(client.Process);
        TestContext.WriteLine($"RSS before {before} MB, after a refused 100 MB message {after} MB");
        Assert.IsLessThan(before + 32, after, $"RSS grew from {before} MB to {after} MB");
        Assert.IsLessThan(64 << 10, client.Stderr.Length, "the log holds the message");
    }

    [TestMethod]
    public async Task ALargeMessageUnderTheMaximumIsServedCappedInTheLogAndItsMemoryReturned()
    {
        await using var client = RawRpcClient.Start("serve");
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
        await client.WaitForLogAsync("prewarmed", TimeSpan.FromSeconds(60));                // libtorch's own memory first
        var before = RssMb(client.Process);
        var name = new string('n', 48 << 20);
        var request = Framed(Initialize(name));
        var writing = Task.Run(() => Write(client, request));
        var reply = (JsonObject)await ReadFrameAsync(client, TimeSpan.FromSeconds(60));
        await writing;
        Assert.IsNotNull(reply["result"], reply.ToJsonString());
        var peak = RssMb(client.Process);
        // The backend returns the memory of a large message after answering it: give it a moment.
        var after = peak;
        for (var i = 0; i < 50 && after > before + 100; i++)
        {
            await Task.Delay(100);
            after = RssMb(client.Process);
        }
        TestContext.WriteLine($"RSS before {before} MB, right after a 48 MB message {peak} MB, then {after} MB");
        Assert.IsLessThan(before + 100, after, $"RSS stayed at {after} MB (before: {before} MB)");
        Assert.IsLessThan(64 << 10, client.Stderr.Length, "the log holds the client name");
        StringAssert.Contains(client.Stderr, "more characters");
        Assert.IsNotNull((await client.CallAsync("initialize", new { }))["result"], client.Stderr);
    }

    private static long RssMb(Process process)
    {
        var line = File.ReadAllLines($"/proc/{process.Id}/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
    }

    private static void Write(RawRpcClient client, byte[] bytes)
    {
        var stdin = client.Process.StandardInput.BaseStream;
        stdin.Write(bytes);
        stdin.Flush();
    }

    /// <summary>The next frame on stdout, object or batch; fails on anything that is not a well-formed frame.</summary>
    private static async Task<JsonNode> ReadFrameAsync(RawRpcClient client, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var stdout = client.Process.StandardOutput.BaseStream;
        var header = new StringBuilder();
        var one = new byte[1];
        try
        {
            while (!header.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await stdout.ReadAsync(one, cts.Token) == 0)
                    throw new AssertFailedException($"backend closed stdout (exited: {client.Process.HasExited}). stderr:\n{client.Stderr}");
                header.Append((char)one[0]);
            }
            var length = header.ToString().Split("\r\n", StringSplitOptions.RemoveEmptyEntries)
                .Single(l => l.StartsWith("Content-Length:", StringComparison.Ordinal))["Content-Length:".Length..].Trim();
            var body = new byte[int.Parse(length)];
            await stdout.ReadExactlyAsync(body, cts.Token);
            return JsonNode.Parse(body)!;
        }
        catch (OperationCanceledException)
        {
            throw new AssertFailedException($"no reply within {timeout} (exited: {client.Process.HasExited}). stderr:\n{client.Stderr}");
        }
    }
}
