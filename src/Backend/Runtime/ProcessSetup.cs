using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace AttentionViz.Backend.Runtime;

public static partial class ProcessSetup
{
    /// <summary>
    /// What libtorch's native code must find in the process environment when it loads (setting it from .NET is not
    /// seen there): OpenMP threads that sleep instead of spinning. (MKL_DISABLE_FAST_MM=1 saved ~100 MB at 4,096 tokens
    /// before the forward reused its buffers, then nothing, and made MiniLM's 128-token analysis ~15% slower.)
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> NativeEnvironment = new Dictionary<string, string>
    {
        ["OMP_WAIT_POLICY"] = "PASSIVE",
    };

    /// <summary>
    /// When a variable of <see cref="NativeEnvironment"/> is missing, runs this same command again as a child with it
    /// set (stdio inherited; values the caller set are kept). Returns the child's exit code, or null when this process
    /// already has the right environment.
    /// </summary>
    public static int? ReexecWithOpenMpSettings(string[] args)
    {
        var missing = NativeEnvironment.Where(v => Environment.GetEnvironmentVariable(v.Key) is null).ToList();
        if (missing.Count == 0 || !OperatingSystem.IsLinux()) return null;
        var processPath = Environment.ProcessPath;
        if (processPath is null) return null;
        var start = new ProcessStartInfo(processPath) { UseShellExecute = false };
        // Under `dotnet x.dll`, ProcessPath is the host: pass the assembly again.
        if (Path.GetFileNameWithoutExtension(processPath) == "dotnet")
            start.ArgumentList.Add(typeof(ProcessSetup).Assembly.Location);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (name, value) in missing) start.Environment[name] = value;
        using var child = Process.Start(start) ?? throw new InvalidOperationException("Could not restart the backend.");
        child.WaitForExit();
        return child.ExitCode;
    }

    /// <summary>
    /// Keeps file descriptor 1 for the protocol alone: the protocol gets a private duplicate of it, and fd 1 itself is
    /// pointed at stderr, so that nothing else (a native library's printf, a stray Console.WriteLine) can corrupt the stream.
    /// </summary>
    public static Stream TakeStdoutForProtocol()
    {
        Console.SetOut(Console.Error);
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return Console.OpenStandardOutput();
        var protocolFd = Dup(1);
        if (protocolFd < 0 || Dup2(2, 1) < 0) return Console.OpenStandardOutput();
        return new FileStream(new SafeFileHandle(protocolFd, ownsHandle: true), FileAccess.Write, bufferSize: 0);
    }

    [LibraryImport("libc", EntryPoint = "dup")]
    private static partial int Dup(int fd);

    [LibraryImport("libc", EntryPoint = "dup2")]
    private static partial int Dup2(int fd, int fd2);
}
