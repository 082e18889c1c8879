using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using AttentionViz.Backend.Platform;

namespace AttentionViz.Backend.Rpc;

/// <summary>
/// Reads the client's frames before StreamJsonRpc does and passes on only well-formed JSON-RPC 2.0 messages, each
/// re-framed as <c>Content-Length: N\r\n\r\n</c>. Why a guard in front rather than hooks inside: StreamJsonRpc's
/// header handler ends the connection on a frame it cannot read (a bad header, invalid JSON, a batch, an odd id) and
/// has no way to answer with <c>id: null</c>, so the guard answers those itself (docs/protocol.md, "Transport"). Both
/// writers reach stdout through <see cref="OutputLoopAsync"/>, one whole frame at a time, so replies never interleave.
/// </summary>
internal sealed class FrameGuard
{
    /// <summary>The largest body accepted; a larger one is refused (-32600) and skipped without being held.</summary>
    public const int MaxMessageBytes = 64 << 20;
    public const int MaxHeaderBytes = 8 << 10;
    /// <summary>Deepest nesting accepted (the envelope counts): real params stay under 6; STJ's own default is 64.</summary>
    public const int MaxDepth = 32;
    /// <summary>A frame begun but not finished is given up after this long without a new byte.</summary>
    public static readonly TimeSpan IncompleteTimeout = TimeSpan.FromSeconds(5);
    /// <summary>After a message this big the GC returns its memory to the system once it has been answered.</summary>
    private const int LargeMessageBytes = 4 << 20;
    private const int ChunkBytes = 64 << 10;
    private static readonly byte[] LengthName = "Content-Length:"u8.ToArray();
    /// <summary>Longer than any <c>Content-Length: N\r\n</c> line this guard accepts.</summary>
    private const int HeaderTail = 64;

    private readonly Stream _input;
    private readonly Stream _output;
    private readonly TimeSpan _timeout;
    // No back-pressure (StreamJsonRpc reads a whole message before consuming it, a paused writer would deadlock), and
    // a large message in one plain array: pooled blocks would stay resident, and one segment saves StreamJsonRpc a copy.
    private readonly Pipe _toRpc = new(new PipeOptions(new SmallBlockPool(), pauseWriterThreshold: 0, resumeWriterThreshold: 0,
        useSynchronizationContext: false));
    private readonly Pipe _fromRpc = new(new PipeOptions(useSynchronizationContext: false));
    private readonly SemaphoreSlim _stdout = new(1, 1);
    private readonly byte[] _chunk = new byte[ChunkBytes];
    private byte[] _buffer = new byte[ChunkBytes];
    private int _start, _end;
    private Task<int>? _pendingRead;
    private string? _largeRequestId;
    private int _collecting;

    public FrameGuard(Stream input, Stream output, TimeSpan? timeout = null)
    {
        _input = input;
        // StreamJsonRpc's frames come in blocks of a few KB: one write per block would be one system call each.
        _output = new BufferedStream(output, ChunkBytes);
        _timeout = timeout ?? IncompleteTimeout;
        RpcPipe = new DuplexPipe(_toRpc.Reader, _fromRpc.Writer);
    }

    /// <summary>StreamJsonRpc's end: valid messages come out of <c>Input</c>, its replies go into <c>Output</c>.</summary>
    public IDuplexPipe RpcPipe { get; }

    /// <summary>Completes at the end of the client's input; faults if the guard itself failed (the stream is lost).</summary>
    public Task Reading { get; private set; } = Task.CompletedTask;
    public Task Writing { get; private set; } = Task.CompletedTask;

    public void Start()
    {
        Reading = Task.Run(InputLoopAsync);
        Writing = Task.Run(OutputLoopAsync);
    }

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    /// <summary>The shared pool for blocks up to 1 MiB; the Pipe allocates anything larger itself, unpooled.</summary>
    private sealed class SmallBlockPool : MemoryPool<byte>
    {
        public override int MaxBufferSize => 1 << 20;
        public override IMemoryOwner<byte> Rent(int minBufferSize = -1) => Shared.Rent(minBufferSize);
        protected override void Dispose(bool disposing) { }
    }

    private enum Fill { Data, Ended, TimedOut }

    private ReadOnlySpan<byte> Buffered => _buffer.AsSpan(_start, _end - _start);
    private int Count => _end - _start;

    private void Consume(int n)
    {
        _start += n;
        if (_start == _end) _start = _end = 0;
    }

    /// <summary>One more read from the client; timed only inside a frame, so an idle client is never cut off.</summary>
    private async Task<Fill> FillAsync(bool timed)
    {
        _pendingRead ??= _input.ReadAsync(_chunk, 0, _chunk.Length);
        if (timed)
        {
            using var cancel = new CancellationTokenSource();
            if (await Task.WhenAny(_pendingRead, Task.Delay(_timeout, cancel.Token)) != _pendingRead) return Fill.TimedOut;
            cancel.Cancel();
        }
        var n = await _pendingRead;
        _pendingRead = null;
        if (n == 0) return Fill.Ended;
        if (_end + n > _buffer.Length)
        {
            var target = Count + n > _buffer.Length ? new byte[Math.Max(Count + n, 2 * _buffer.Length)] : _buffer;
            Buffered.CopyTo(target);
            (_buffer, _end, _start) = (target, Count, 0);
        }
        _chunk.AsSpan(0, n).CopyTo(_buffer.AsSpan(_end));
        _end += n;
        return Fill.Data;
    }

    /// <summary>Room for a whole body (and one more read) at once, rather than doubling up to it.</summary>
    private void Reserve(int bytes)
    {
        if (_buffer.Length >= bytes + ChunkBytes) return;
        var large = GC.AllocateUninitializedArray<byte>(bytes + ChunkBytes);
        Buffered.CopyTo(large);
        (_buffer, _end, _start) = (large, Count, 0);
    }

    /// <summary>After a large message: back to a small buffer, so the big one can be collected.</summary>
    private void ShrinkBuffer()
    {
        if (_buffer.Length <= 4 * ChunkBytes || Count > ChunkBytes) return;
        var small = new byte[ChunkBytes];
        Buffered.CopyTo(small);
        (_buffer, _end, _start) = (small, Count, 0);
    }

    private async Task InputLoopAsync()
    {
        try
        {
            while (await NextFrameAsync()) { }
        }
        catch (Exception e)
        {
            Log.Error($"protocol input lost: {e}");
            await _toRpc.Writer.CompleteAsync(e);
            throw;
        }
        await _toRpc.Writer.CompleteAsync();
    }

    /// <summary>Reads and handles one frame (or one stretch of garbage). False at the end of input.</summary>
    private async Task<bool> NextFrameAsync()
    {
        // Stray line breaks between frames are harmless: skip them.
        while (Count > 0 && Buffered[0] is (byte)'\r' or (byte)'\n') Consume(1);
        if (Count == 0) return await FillAsync(timed: false) != Fill.Ended;

        Header header;
        while (true)
        {
            header = Header.Parse(Buffered);
            if (header.Garbage is { } garbage)
            {
                await ReplyAsync(null, AppErrorCode.ParseError, $"Parse error: {garbage}; skipping to the next Content-Length header.");
                await ResyncAsync(1);
                return true;
            }
            if (header.Length > 0) break;
            if (Count > MaxHeaderBytes)
            {
                await ReplyAsync(null, AppErrorCode.ParseError, $"Parse error: the header is longer than {MaxHeaderBytes} bytes.");
                await ResyncAsync(1);
                return true;
            }
            var fill = await FillAsync(timed: true);
            if (fill == Fill.Ended) return Ended("a header");
            if (fill == Fill.TimedOut)
            {
                await ReplyAsync(null, AppErrorCode.ParseError,
                    $"Parse error: an incomplete header, nothing more for {_timeout.TotalSeconds:0} s.");
                // The pause marks the frame's end: what comes next starts a new one.
                Consume(Count);
                return true;
            }
        }
        if (header.Problem is { } problem)
        {
            await ReplyAsync(null, AppErrorCode.ParseError, $"Parse error: {problem}.");
            // With a trustworthy length the body is skipped exactly; otherwise go on from this header's last
            // Content-Length line (a frame cut short inside its header runs into the next one), or after the header.
            if (header.ContentLength is { } skip && skip <= MaxMessageBytes)
            {
                Consume(header.Length);
                await DiscardAsync(skip);
            }
            else await ResyncAsync(GluedHeader(header.Length) ?? header.Length);
            return true;
        }
        Consume(header.Length);
        var length = header.ContentLength!.Value;
        if (length > MaxMessageBytes)
        {
            await ReplyAsync(null, AppErrorCode.InvalidRequest, $"Invalid request: the message has {length} bytes; the maximum is " +
                $"{MaxMessageBytes} bytes (64 MiB). Send large inputs in parts (e.g. a shorter text or maxTokens).");
            Log.Warn($"refused a message of {length} bytes (the maximum is {MaxMessageBytes})");
            await DiscardAsync(length);
            return true;
        }
        return await BodyAsync((int)length);
    }

    private async Task<bool> BodyAsync(int length)
    {
        Reserve(length);
        var scanned = 0;
        while (Count < length)
        {
            // Valid JSON never holds a raw header line: one inside the body means its Content-Length was too long.
            if (HeaderStart(Buffered, Math.Max(0, scanned - 32)) is var inside and >= 0)
            {
                await ReplyAsync(null, AppErrorCode.ParseError,
                    $"Parse error: the message is shorter than its Content-Length ({inside} of {length} bytes before the next header).");
                Consume(inside);
                return true;
            }
            scanned = Count;
            var fill = await FillAsync(timed: true);
            if (fill == Fill.Ended) return Ended("a message body");
            if (fill == Fill.TimedOut)
            {
                await ReplyAsync(null, AppErrorCode.ParseError, $"Parse error: an incomplete message, {Count} of {length} bytes, " +
                    $"nothing more for {_timeout.TotalSeconds:0} s.");
                Consume(Count);
                ShrinkBuffer();
                return true;
            }
        }
        var body = _buffer.AsMemory(_start, length);
        var verdict = MessageCheck.Check(body.Span);
        if (verdict.Replies.Count > 0) await WriteFrameAsync(verdict.Reply());
        if (verdict.Error == AppErrorCode.ParseError)
        {
            await ResyncAsync(0);
            return true;
        }
        if (verdict.Dropped is { } dropped) Log.Warn(Log.Clip(dropped, 200));
        if (verdict.Forward)
        {
            var writer = _toRpc.Writer;
            var header = Encoding.ASCII.GetBytes($"Content-Length: {length}\r\n\r\n");
            var frame = writer.GetSpan(header.Length + length);
            header.CopyTo(frame);
            body.Span.CopyTo(frame[header.Length..]);
            writer.Advance(header.Length + length);
            if (length >= LargeMessageBytes) Large(verdict.Id);
            Consume(length);
            ShrinkBuffer();
            await writer.FlushAsync();
            return true;
        }
        Consume(length);
        ShrinkBuffer();
        return true;
    }

    /// <summary>Skips a body the client declared, without holding it; a header inside it ends the skip there.</summary>
    private async Task DiscardAsync(long length)
    {
        var left = length;
        while (left > 0)
        {
            var window = (int)Math.Min(left, Count);
            if (HeaderStart(Buffered, 0) is var inside and >= 0 && inside < window)
            {
                Log.Warn($"a header started {length - left + inside} bytes into a body declared as {length} bytes: resuming there");
                Consume(inside);
                return;
            }
            if (window == left)
            {
                Consume(window);
                break;
            }
            // Keep a tail that may hold the start of a header cut between two reads.
            var drop = Math.Max(0, Count - HeaderTail);
            Consume(drop);
            left -= drop;
            var fill = await FillAsync(timed: true);
            if (fill != Fill.Data)
            {
                Log.Warn($"a declared body of {length} bytes stopped after {length - left + Count} bytes");
                Consume(Count);
                return;
            }
        }
        ShrinkBuffer();
    }

    /// <summary>
    /// Drops bytes up to the next <c>Content-Length: N</c> line, looking from <paramref name="from"/> on and reading on
    /// until one comes: one reply per stretch of garbage, however long.
    /// </summary>
    private async Task ResyncAsync(int from)
    {
        while (true)
        {
            var at = from < Count ? HeaderStart(Buffered, from) : -1;
            if (at >= 0)
            {
                Consume(at);
                break;
            }
            // Keep a tail that may hold the start of a header cut between two reads.
            var drop = Math.Max(0, Count - HeaderTail);
            Consume(drop);
            from = Math.Max(0, from - drop);
            if (await FillAsync(timed: false) == Fill.Ended) break;
        }
        ShrinkBuffer();
    }

    /// <summary>Where the last <c>Content-Length: N</c> line of this header starts, unless that is its start.</summary>
    private int? GluedHeader(int headerLength)
    {
        var header = Buffered[..headerLength];
        int? last = null;
        for (var from = 1; HeaderStart(header, from) is var at and > 0; from = at + 1) last = at;
        return last;
    }

    private bool Ended(string where)
    {
        Log.Warn($"input ended inside {where} ({Count} bytes): dropped");
        Consume(Count);
        return false;
    }

    /// <summary>
    /// Where a complete <c>Content-Length: digits</c> line starts (a raw line break cannot be inside a JSON string, so
    /// this never matches a valid body), or -1.
    /// </summary>
    private static int HeaderStart(ReadOnlySpan<byte> data, int from)
    {
        for (var offset = from; offset < data.Length;)
        {
            var at = data[offset..].IndexOf(LengthName);
            if (at < 0) return -1;
            var start = offset + at;
            var i = start + LengthName.Length;
            while (i < data.Length && data[i] is (byte)' ' or (byte)'\t') i++;
            var digits = i;
            while (i < data.Length && char.IsAsciiDigit((char)data[i])) i++;
            if (i > digits && i < data.Length && data[i] is (byte)'\r' or (byte)'\n') return start;
            offset = start + 1;
        }
        return -1;
    }

    private void Large(string? id)
    {
        // Answered requests are noticed in OutputLoopAsync; a notification gets no answer: collect now.
        if (id is null) CollectSoon();
        else _largeRequestId = id;
    }

    /// <summary>
    /// A compacting collection that gives the pages back (a 100 MB request left RSS at 1.06 GB before). Only after large
    /// messages: a full blocking collection costs tens of milliseconds.
    /// </summary>
    private void CollectSoon()
    {
        if (Interlocked.Exchange(ref _collecting, 1) == 1) return;
        _ = Task.Run(async () =>
        {
            await Task.Delay(200);
            Volatile.Write(ref _collecting, 0);
            var before = Environment.WorkingSet;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            Log.Info($"returned memory after a large message: RSS {before >> 20} MB -> {Environment.WorkingSet >> 20} MB");
        });
    }

    private Task ReplyAsync(MessageCheck.RequestId? id, AppErrorCode code, string message) =>
        WriteFrameAsync(MessageCheck.ErrorReply(id, code, message));

    /// <summary>One whole frame to stdout under the writer lock.</summary>
    private async Task WriteFrameAsync(byte[] body)
    {
        await _stdout.WaitAsync();
        try
        {
            await _output.WriteAsync(Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n"));
            await _output.WriteAsync(body);
            await _output.FlushAsync();
        }
        finally
        {
            _stdout.Release();
        }
    }

    /// <summary>StreamJsonRpc's frames to stdout, each whole under the lock (its body copied as it comes, not held).</summary>
    private async Task OutputLoopAsync()
    {
        var reader = _fromRpc.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                var buffer = result.Buffer;
                SequencePosition? headerEnd = null;
                // StreamJsonRpc writes "Content-Length: N\r\n\r\n"; find the blank line.
                var seq = new SequenceReader<byte>(buffer);
                if (seq.TryReadTo(out ReadOnlySequence<byte> headerBytes, "\r\n\r\n"u8)) headerEnd = seq.Position;
                if (headerEnd is null)
                {
                    if (result.IsCompleted) break;
                    reader.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }
                var header = Encoding.ASCII.GetString(headerBytes);
                var lengthLine = header.Split("\r\n").First(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
                var left = long.Parse(lengthLine["Content-Length:".Length..].Trim());
                var answered = false;
                await _stdout.WaitAsync();
                try
                {
                    await _output.WriteAsync(Encoding.ASCII.GetBytes($"Content-Length: {left}\r\n\r\n"));
                    buffer = buffer.Slice(headerEnd.Value);
                    var first = true;
                    while (true)
                    {
                        var take = buffer.Slice(0, Math.Min(left, buffer.Length));
                        if (first && _largeRequestId is { } large && take.Length > 0)
                        {
                            answered = MessageCheck.LeadingId(take) == large;
                            first = false;
                        }
                        foreach (var segment in take) await _output.WriteAsync(segment);
                        left -= take.Length;
                        reader.AdvanceTo(take.End);
                        if (left == 0) break;
                        result = await reader.ReadAsync();
                        buffer = result.Buffer;
                        if (result.IsCompleted && buffer.Length < left) throw new EndOfStreamException("StreamJsonRpc's frame was cut off");
                    }
                    await _output.FlushAsync();
                }
                finally
                {
                    _stdout.Release();
                }
                if (answered)
                {
                    _largeRequestId = null;
                    CollectSoon();
                }
            }
            await reader.CompleteAsync();
        }
        catch (Exception e)
        {
            // The client is gone (or stdout broke): StreamJsonRpc's next write fails and it disconnects.
            Log.Warn($"protocol output closed: {e.Message}");
            await reader.CompleteAsync(e);
        }
    }

    /// <summary>The parsed header of one frame, or why it is not one.</summary>
    private readonly record struct Header(int Length, long? ContentLength, string? Problem, string? Garbage)
    {
        /// <summary>
        /// Reads header lines from the start of <paramref name="data"/>. Length 0: not complete yet. Garbage: bytes
        /// that cannot begin a header (nothing can be trusted, not even a length). Problem: a header that ended but
        /// cannot be used.
        /// </summary>
        public static Header Parse(ReadOnlySpan<byte> data)
        {
            long? contentLength = null;
            var lengths = 0;
            string? problem = null;
            var position = 0;
            while (true)
            {
                var rest = data[position..];
                var newline = rest.IndexOf((byte)'\n');
                var line = newline < 0 ? rest : rest[..newline];
                var crlf = line.Length > 0 && line[^1] == '\r';
                if (crlf) line = line[..^1];
                if (newline >= 0 && line.Length == 0)
                {
                    if (position == 0) return new(0, null, null, "a frame cannot start with an empty line");
                    if (!crlf) problem ??= "header lines must end with \\r\\n";
                    if (lengths == 0) problem ??= "the Content-Length header is missing";
                    if (position + newline + 1 > MaxHeaderBytes) problem = $"the header is longer than {MaxHeaderBytes} bytes";
                    return new(position + newline + 1, problem is null || contentLength >= 0 ? contentLength : null, problem, null);
                }
                var colon = line.IndexOf((byte)':');
                // A line is judged once it is complete, or as soon as its name is impossible.
                var nameEnd = colon < 0 ? line.Length : colon;
                for (var i = 0; i < nameEnd; i++)
                    if (!char.IsAsciiLetterOrDigit((char)line[i]) && line[i] != '-')
                        return new(0, null, null, $"'{Printable(line)}' is not a header line");
                if (newline < 0) return default;
                if (colon <= 0) return new(0, null, null, $"'{Printable(line)}' is not a header line");
                if (!crlf) problem ??= "header lines must end with \\r\\n";
                var name = Encoding.ASCII.GetString(line[..colon]);
                var value = Encoding.ASCII.GetString(line[(colon + 1)..]).Trim(' ', '\t');
                if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                {
                    lengths++;
                    var valid = value.Length is > 0 and <= 18 && value.All(char.IsAsciiDigit);
                    if (!valid) problem ??= $"Content-Length '{Log.Clip(value, 40)}' is not a byte count";
                    var parsed = valid ? long.Parse(value) : -1;
                    if (lengths > 1)
                    {
                        problem ??= "the Content-Length header appears twice";
                        if (parsed != contentLength) contentLength = -1;
                    }
                    else contentLength = parsed;
                }
                else if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                {
                    var charset = value.Split(';').Skip(1).Select(p => p.Trim().Split('=', 2))
                        .FirstOrDefault(p => p.Length == 2 && p[0].Trim().Equals("charset", StringComparison.OrdinalIgnoreCase))?[1].Trim('"', ' ');
                    if (charset is not null && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase)
                        && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
                        problem ??= $"charset '{Log.Clip(charset, 40)}' is not supported; send UTF-8";
                }
                position += newline + 1;
            }
        }

        private static string Printable(ReadOnlySpan<byte> line)
        {
            var text = Encoding.ASCII.GetString(line[..Math.Min(line.Length, 40)]);
            return new string(text.Select(c => char.IsControl(c) || c > '~' ? '?' : c).ToArray());
        }
    }
}
