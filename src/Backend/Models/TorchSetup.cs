using TorchSharp;

namespace AttentionViz.Backend.Models;

/// <summary>Process-wide libtorch settings, applied once before the first model runs.</summary>
public static class TorchSetup
{
    private static int _done;

    /// <summary>Threads for libtorch, as many as the kernels' (<see cref="Core.ComputeThreads.Count"/>).</summary>
    public static int ThreadCount => Core.ComputeThreads.Count;

    public static void EnsureInitialized()
    {
        if (Interlocked.Exchange(ref _done, 1) == 1) return;
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null)
            Console.Error.WriteLine("warning: OMP_WAIT_POLICY is not set; libtorch's threads will busy-wait. " +
                "Start the backend with OMP_WAIT_POLICY=PASSIVE.");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Platform.HeapSettings.MapBigAllocations();
        torch.set_num_threads(ThreadCount);
        torch.set_grad_enabled(false);
        Platform.Log.Info($"libtorch ready in {clock.ElapsedMilliseconds} ms");
    }
}
