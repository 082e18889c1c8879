using System.Text.RegularExpressions;
using AttentionViz.Backend.Platform;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// A file written beside its path under a temporary name and renamed into place, so that readers never see a partial
/// file and a failed or cancelled write leaves nothing behind (nor replaces the previous file). A process killed
/// mid-write cannot clean up, so each write first removes this class's own stale temporaries from the folder.
/// </summary>
public static partial class AtomicFile
{
    /// <summary>
    /// A temporary not written to for this long is stale: a live write streams into its file continuously, so an
    /// abandoned one (its process killed) is the only kind that sits untouched this long.
    /// </summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(10);

    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        RemoveStaleTemporaries(directory);
        var temp = TemporaryName(full);
        try
        {
            // CreateNew is O_CREAT|O_EXCL: never opens an existing file or follows a link placed at the name.
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            // rename(2) replaces whatever is at the name (a link itself, not its target).
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>.NAME.PID.GUID.tmp beside NAME.</summary>
    public static string TemporaryName(string path) => Path.Combine(Path.GetDirectoryName(path)!,
        $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    [GeneratedRegex(@"^\..+\.[0-9]+\.[0-9a-f]{32}\.tmp$")]
    private static partial Regex OwnTemporary();

    /// <summary>
    /// Deletes the regular files of <paramref name="directory"/> named as <see cref="TemporaryName"/> names them and
    /// untouched for <see cref="StaleAfter"/>; nothing else. Failures only log: the write itself goes on.
    /// </summary>
    public static void RemoveStaleTemporaries(string directory)
    {
        try
        {
            var cutoff = DateTime.UtcNow - StaleAfter;
            foreach (var file in Directory.EnumerateFiles(directory, ".*.tmp"))
            {
                if (!OwnTemporary().IsMatch(Path.GetFileName(file))) continue;
                if (UserFile.Stat(file, followLinks: false).Kind != UserFileKind.Regular) continue;
                if (File.GetLastWriteTimeUtc(file) > cutoff) continue;
                File.Delete(file);
                Log.Info($"removed a stale temporary file of an interrupted write: {file}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warn($"could not clean stale temporary files in {directory}: {e.Message}");
        }
    }
}
