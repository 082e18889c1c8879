using AttentionViz.Backend.Platform;
using AttentionViz.Backend.Runtime;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>The frame guard in this process: what the process tests cannot provoke from outside.</summary>
[TestClass]
public sealed class FrameGuardTests
{
    /// <summary>Input that fails as a broken pipe would.</summary>
    private sealed class BrokenInput : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => 0; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new IOException("input broke");
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [TestMethod]
    public async Task ALostInputStreamEndsServingWithCodeOne()
    {
        // Before: "connection closed with an error" and exit code 0, so a client would not restart the backend.
        using var host = new BackendHost();
        var code = await host.Server.RunAsync(new BrokenInput(), new MemoryStream()).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.AreEqual(1, code);
    }

    [TestMethod]
    public async Task EndOfInputInsideAFrameEndsServingWithCodeZero()
    {
        using var host = new BackendHost();
        var input = new MemoryStream("Content-Length: 100\r\n\r\n{\"jsonrpc\""u8.ToArray());
        var output = new MemoryStream();
        Assert.AreEqual(0, await host.Server.RunAsync(input, output).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.AreEqual(0, output.ToArray().Length, "nothing to answer: the client is gone");
    }

    [TestMethod]
    [DataRow(10, 10, "0123456789")]
    [DataRow(12, 4, "0123… (8 more characters)")]
    public void LoggedStringsAreClipped(int length, int max, string expected) =>
        Assert.AreEqual(expected, Log.Clip("0123456789ab"[..length], max));
}
