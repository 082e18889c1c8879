using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace AttentionViz.Backend.Models.Core;

/// <summary>
/// The threads that run the kernels' parallel loops: the calling thread and <see cref="Workers"/> dedicated ones, which
/// spin briefly after each loop and then sleep. A short prompt's forward runs ~40 parallel loops tens of microseconds
/// apart; handing each to the .NET pool (Parallel.For) cost a wake-up or a pool spin per loop, and the pool's idle
/// threads spun in sched_yield for a fifth of the CPU time at 16 tokens (issue #15). A spinning worker yields, so
/// libtorch's sleeping OpenMP threads (OMP_WAIT_POLICY=PASSIVE) get the core whenever they have work: never two teams
/// spinning at once.
/// </summary>
internal static class KernelTeam
{
    /// <summary>How long a worker spins for the next loop before it sleeps: longer than the gaps inside a forward.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 5_000;              // 200 µs

    public static int Workers { get; } = Math.Max(0, ComputeThreads.Count - 1);

    private static readonly SemaphoreSlim Start = new(0);
    private static readonly object Gate = new();
    [ThreadStatic] private static bool _onTeam;
    private static Action<long>? _body;
    private static long _count, _next;
    private static int _pending;
    private static ExceptionDispatchInfo? _failure;

    static KernelTeam()
    {
        for (var i = 0; i < Workers; i++)
            new Thread(Work) { IsBackground = true, Name = $"attentionviz-kernel-{i + 1}" }.Start();
    }

    /// <summary>body(0) … body(count − 1), each index once, on the team; serially when the team is busy (a nested or a
    /// concurrent loop) or there is nothing to share.</summary>
    public static void For(long count, Action<long> body)
    {
        if (count <= 0) return;
        if (count == 1 || Workers == 0 || _onTeam || !Monitor.TryEnter(Gate))
        {
            for (var i = 0L; i < count; i++) body(i);
            return;
        }
        try
        {
            (_body, _count, _next, _failure) = (body, count, 0, null);
            Volatile.Write(ref _pending, Workers);
            Start.Release(Workers);
            _onTeam = true;
            try { Share(); }
            finally { _onTeam = false; }
            // A worker that has not woken yet would only find the loop done: take its start back instead of waiting.
            while (Start.Wait(0)) Interlocked.Decrement(ref _pending);
            var wait = new SpinWait();
            while (Volatile.Read(ref _pending) != 0) wait.SpinOnce(sleep1Threshold: -1);
            _body = null;
            _failure?.Throw();
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    private static void Share()
    {
        var body = _body!;
        try
        {
            for (long i; (i = Interlocked.Increment(ref _next) - 1) < _count;) body(i);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null);
            Interlocked.Exchange(ref _next, _count);                                  // the others stop taking work
        }
    }

    private static void Work()
    {
        _onTeam = true;
        while (true)
        {
            var until = Stopwatch.GetTimestamp() + SpinTicks;
            while (Start.CurrentCount == 0 && Stopwatch.GetTimestamp() < until) Thread.Yield();
            Start.Wait();
            Share();
            Interlocked.Decrement(ref _pending);
        }
    }
}

/// <summary>How many threads compute, libtorch's and the kernel team's alike.</summary>
public static class ComputeThreads
{
    /// <summary>ATTENTIONVIZ_THREADS, else the core count capped at 8 (attention matrices of one prompt are small; more
    /// threads mostly add synchronisation).</summary>
    public static int Count =>
        int.TryParse(Environment.GetEnvironmentVariable("ATTENTIONVIZ_THREADS"), out var n) && n > 0
            ? n
            : Math.Clamp(Environment.ProcessorCount, 1, 8);
}
