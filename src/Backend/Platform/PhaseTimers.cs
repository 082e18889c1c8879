using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace AttentionViz.Backend.Platform;

/// <summary>
/// Wall time per phase of a long forward, summed on the model thread, printed to stderr after each analysis when
/// ATTENTIONVIZ_PHASES=1 (for docs/performance.md's breakdown; off, each call is one branch).
/// </summary>
public static partial class PhaseTimers
{
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("ATTENTIONVIZ_PHASES") == "1";
    private static readonly Dictionary<string, (long Wall, long Cpu)> Ticks = [];

    /// <summary>A start mark: wall ticks and the process's CPU time (every thread's, in µs), so that a busy machine's
    /// waiting shows as wall minus CPU.</summary>
    public static (long Wall, long Cpu) Start() => Enabled ? (Stopwatch.GetTimestamp(), CpuMicroseconds()) : default;

    /// <summary>Adds the time since <paramref name="start"/> (from <see cref="Start"/>) to <paramref name="phase"/>.</summary>
    public static void Stop(string phase, (long Wall, long Cpu) start)
    {
        if (!Enabled) return;
        var (wall, cpu) = (Stopwatch.GetTimestamp() - start.Wall, CpuMicroseconds() - start.Cpu);
        lock (Ticks)
        {
            var sum = Ticks.GetValueOrDefault(phase);
            Ticks[phase] = (sum.Wall + wall, sum.Cpu + cpu);
        }
    }

    /// <summary>The calling thread's CPU time (for the bench's single-thread kernels on a shared machine).</summary>
    public static double ThreadCpuMilliseconds() => CpuMicroseconds(who: 1) / 1000.0;   // RUSAGE_THREAD

    private static long CpuMicroseconds(int who = 0)
    {
        var usage = new long[18];
        if (GetResourceUsage(who, usage) != 0) return 0;
        // struct rusage starts with ru_utime and ru_stime, each (tv_sec, tv_usec).
        return (usage[0] + usage[2]) * 1_000_000 + usage[1] + usage[3];
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "getrusage")]
    private static partial int GetResourceUsage(int who, long[] usage);

    /// <summary>Prints the phases (ms) with the process's peak RSS and starts over.</summary>
    public static void Report(string what)
    {
        if (!Enabled) return;
        var line = new StringBuilder($"phases {what}:");
        lock (Ticks)
        {
            foreach (var (phase, (wall, cpu)) in Ticks.OrderBy(p => p.Key, StringComparer.Ordinal))
                line.Append(CultureInfo.InvariantCulture, $" {phase}={wall * 1000.0 / Stopwatch.Frequency:F0}ms(cpu {cpu / 1000.0:F0})");
            Ticks.Clear();
        }
        line.Append(CultureInfo.InvariantCulture, $" rss={Status("VmRSS")}MB hwm={Status("VmHWM")}MB");
        Console.Error.WriteLine(line);
    }

    private static long Status(string field)
    {
        try
        {
            var entry = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
            return entry is null ? -1 : long.Parse(entry.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        }
        catch (IOException)
        {
            return -1;
        }
    }
}
