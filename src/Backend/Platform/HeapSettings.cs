using System.Runtime.InteropServices;

namespace AttentionViz.Backend.Platform;

/// <summary>How glibc's malloc treats the big tensors of a long forward.</summary>
public static partial class HeapSettings
{
    /// <summary>Tensors from this size are mapped on their own and unmapped when freed.</summary>
    public const int MapFromBytes = 16 << 20;

    /// <summary>
    /// Fixes malloc's mmap threshold at <see cref="MapFromBytes"/>. By default glibc raises the threshold to the size
    /// of each mapped block freed (up to 32 MB), so after the first 19 MB temporary of an 8,192-token layer every later
    /// one came from the heap, whose freed space stays resident: ~300 MB more than the forward ever held at once.
    /// Mapping costs page faults on first touch: at 8 MB, a 4,096-token forward of the SmolLM2 shape mapped and
    /// first-touched ~180 tensors of 9.4 MB (a layer's hidden states, q, context; 1.0 M faults, ~10 % of its time); at
    /// 16 MB those come from the heap (0.5 M faults) and its 8,192-token tensors (19 MB) are still mapped. The long
    /// forward hands the heap's free pages back when it ends (<see cref="ReturnFreedMemory"/>). No-op off Linux/glibc.
    /// </summary>
    public static void MapBigAllocations()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            const int mmapThreshold = -3;                                              // M_MMAP_THRESHOLD in malloc.h
            SetOption(mmapThreshold, MapFromBytes);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no mallopt): its malloc keeps its own policy.
        }
    }

    /// <summary>
    /// Hands the heap's free pages back to the system (glibc's malloc_trim), after a long forward, after an analysis is
    /// released and after a forward is cancelled: the blocks under <see cref="MapFromBytes"/> that it freed otherwise
    /// stay resident, and a cancelled 2,048-token analysis then left RSS 19 % above the steady state in one of five CI
    /// runs.
    /// </summary>
    public static void ReturnFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            Trim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: nothing to hand back this way.
        }
    }

    private static int _collecting;

    /// <summary>
    /// After a large analysis is released or evicted: soon, on a pool thread, a compacting collection (the managed
    /// arrays the analysis and its answers left are garbage until a collection runs, and the heap keeps their pages
    /// committed), then <see cref="ReturnFreedMemory"/> for the native heap. One at a time: releases close together
    /// share one collection, which costs tens of milliseconds on a heap of a few hundred MB.
    /// </summary>
    public static void ReturnFreedMemorySoon()
    {
        if (Interlocked.Exchange(ref _collecting, 1) == 1) return;
        _ = Task.Run(async () =>
        {
            await Task.Delay(50);
            Volatile.Write(ref _collecting, 0);
            var before = Environment.WorkingSet;
            CollectAndTrim(GCCollectionMode.Aggressive);
            Log.Info($"returned memory after a released analysis: RSS {before >> 20} MB -> {Environment.WorkingSet >> 20} MB " +
                $"(managed heap {GC.GetGCMemoryInfo().TotalCommittedBytes >> 20} MB committed)");
        });
    }

    /// <summary>
    /// Now, on this thread: a compacting collection and <see cref="ReturnFreedMemory"/>. After a model is loaded (the
    /// checkpoint's and tokenizer's parsing garbage: 26 MB for the SmolLM2 shape) and before a long analysis (what
    /// earlier requests left), so that the forward's peak does not stand on garbage.
    /// </summary>
    public static void CollectAndTrim(GCCollectionMode mode = GCCollectionMode.Forced)
    {
        GC.Collect(GC.MaxGeneration, mode, blocking: true, compacting: true);
        ReturnFreedMemory();
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int Trim(nuint pad);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int SetOption(int option, int value);
}
