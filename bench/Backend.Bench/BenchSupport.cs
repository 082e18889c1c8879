using System.Diagnostics;

namespace AttentionViz.Backend.Bench;

internal readonly record struct Stats(double Median, double P90)
{
    public override string ToString() => $"{Median:F1} ({P90:F1})";

    /// <summary>Median and p90 of samples already taken, milliseconds.</summary>
    public static Stats Of(IReadOnlyCollection<double> samples)
    {
        var sorted = samples.Order().ToArray();
        return new Stats(sorted[sorted.Length / 2], sorted[(int)Math.Min(sorted.Length - 1, Math.Ceiling(sorted.Length * 0.9) - 1)]);
    }

    /// <summary>Median and p90 of <paramref name="runs"/> timed calls after 3 untimed ones, milliseconds.</summary>
    public static Stats Measure(int runs, Action action)
    {
        for (var i = 0; i < 3; i++) action();
        return Of(Enumerable.Range(0, runs).Select(_ => TimeMs(action)).ToArray());
    }

    /// <summary>
    /// Sleeps until this process's threads have gone idle: two 5 ms windows in a row with under 0.5 ms of CPU (getrusage,
    /// microseconds), at least <paramref name="minimumMs"/>, at most 250 ms. ONNX Runtime's intra-op worker spins on
    /// for ~35 ms of CPU after each Run (measured: 28 ms of CPU in a 30 ms sleep, none with spinning off), and a call
    /// measured during that spin has one core of two. The backend's own kernel worker spins 200 µs, under the minimum.
    /// </summary>
    public static void Quiesce(int minimumMs = 3)
    {
        Thread.Sleep(minimumMs);
        var idleWindows = 0;
        for (var waited = minimumMs; waited < 250 && idleWindows < 2; waited += 5)
        {
            var before = Environment.CpuUsage.TotalTime;
            Thread.Sleep(5);
            idleWindows = (Environment.CpuUsage.TotalTime - before).TotalMilliseconds < 0.5 ? idleWindows + 1 : 0;
        }
    }

    public static double TimeMs(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalMilliseconds;
    }
}

internal static class BenchArgs
{
    public static string? Value(string name)
    {
        var args = Environment.GetCommandLineArgs();
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public static bool Has(string name) => Environment.GetCommandLineArgs().Contains(name);
}

/// <summary>What the numbers depend on: the CPU, its vector instructions, how busy the machine was.</summary>
internal static class Machine
{
    public static string CpuModel =>
        CpuInfoLines().FirstOrDefault(l => l.StartsWith("model name"))?.Split(':', 2)[1].Trim() ?? "unknown CPU";

    /// <summary>The ISA extensions that decide which matmul kernels run, e.g. "AVX2, FMA, AVX-512F".</summary>
    public static string VectorExtensions
    {
        get
        {
            var flags = CpuInfoLines().FirstOrDefault(l => l.StartsWith("flags"))?.Split(':', 2)[1].Split(' ') ?? [];
            var known = new[] { ("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"), ("avx512_bf16", "AVX-512 BF16"), ("amx_tile", "AMX") };
            var present = known.Where(k => flags.Contains(k.Item1)).Select(k => k.Item2).ToList();
            if (!flags.Contains("avx512f")) present.Add("no AVX-512");
            return string.Join(", ", present);
        }
    }

    /// <summary>The 1-minute load average (/proc/loadavg), or NaN.</summary>
    public static double LoadAverage =>
        File.Exists("/proc/loadavg") && double.TryParse(File.ReadAllText("/proc/loadavg").Split(' ')[0],
            System.Globalization.CultureInfo.InvariantCulture, out var load) ? load : double.NaN;

    private static long _childTicks;

    /// <summary>CPU ticks so far: the whole machine's busy and total ticks (/proc/stat), and this process's own
    /// (/proc/self/stat utime, stime) with those of the backends it has ended (<see cref="AddChildTicks"/>; the kernel's
    /// cutime would count them only once reaped, which .NET does some time after the exit).</summary>
    public readonly record struct CpuTicks(long MachineBusy, long MachineTotal, long Own)
    {
        /// <summary>The share of all CPUs that other processes used between <paramref name="start"/> and this, in percent.</summary>
        public double OthersPercentSince(CpuTicks start) => MachineTotal == start.MachineTotal ? 0
            : Math.Max(0, 100.0 * (MachineBusy - start.MachineBusy - (Own - start.Own)) / (MachineTotal - start.MachineTotal));
    }

    public static CpuTicks Ticks()
    {
        if (!File.Exists("/proc/stat")) return default;
        var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
        var total = cpu.Take(8).Sum();        // user nice system idle iowait irq softirq steal
        var busy = total - cpu[3] - cpu[4];
        return new CpuTicks(busy, total, ProcessTicks(Environment.ProcessId) + Interlocked.Read(ref _childTicks));
    }

    /// <summary>Counts a child's CPU ticks as the bench's own: call it just before the child is ended.</summary>
    public static void AddChildTicks(int pid) => Interlocked.Add(ref _childTicks, ProcessTicks(pid));

    /// <summary>utime + stime of a process (its threads, not its children), in clock ticks; 0 when it is gone.</summary>
    private static long ProcessTicks(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return 0; }
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');   // from the 3rd field on: utime is the 14th
        return long.Parse(fields[11]) + long.Parse(fields[12]);
    }

    /// <summary>A field of /proc/PID/status in bytes (VmHWM = peak resident set, VmRSS = now), or -1.</summary>
    public static long StatusBytes(int pid, string field)
    {
        var path = $"/proc/{pid}/status";
        if (!File.Exists(path)) return -1;
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith(field + ":"));
        return line is null ? -1 : long.Parse(line.Split(':')[1].Trim().Split(' ')[0]) * 1024;
    }

    private static IEnumerable<string> CpuInfoLines() => File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo") : [];
}

internal static class PerformanceDoc
{
    /// <summary>Replaces the block between <c>&lt;!-- {marker}:begin --&gt;</c> and its end marker, keeping the rest.</summary>
    public static void Update(string path, string marker, string content)
    {
        string begin = $"<!-- {marker}:begin -->", end = $"<!-- {marker}:end -->";
        var doc = File.ReadAllText(path);
        var start = doc.IndexOf(begin, StringComparison.Ordinal);
        var stop = doc.IndexOf(end, StringComparison.Ordinal);
        if (start < 0 || stop < start) throw new InvalidOperationException($"{path} lacks the {begin} … {end} markers.");
        File.WriteAllText(path, doc[..(start + begin.Length)] + "\n" + content.TrimEnd('\n') + "\n" + doc[stop..]);
    }
}
