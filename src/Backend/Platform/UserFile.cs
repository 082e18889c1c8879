using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace AttentionViz.Backend.Platform;

/// <summary>What a path names, as lstat (links not followed) or stat (followed) sees it.</summary>
public enum UserFileKind { Missing, Regular, Directory, SymbolicLink, Fifo, CharacterDevice, BlockDevice, Socket }

/// <summary>
/// The one way the backend opens a file a user named (config.json, weights, tokenizer files): only regular files, with
/// their size bounded before anything is read. A FIFO or device is refused, never waited on: the type is checked
/// before opening, and the open itself is non-blocking (O_NONBLOCK) and checked again on the descriptor, so a file
/// swapped for a FIFO in between cannot stall the model thread either. Links are followed for reading (the Hugging
/// Face cache links snapshot files to ../../blobs).
/// </summary>
public static partial class UserFile
{
    /// <summary>The kind and size of <paramref name="path"/>; a symbolic link itself unless <paramref name="followLinks"/>.</summary>
    public static (UserFileKind Kind, long Length) Stat(string path, bool followLinks)
    {
        var flags = followLinks ? 0 : AtSymlinkNoFollow;
        if (Statx(AtFdCwd, path, flags, StatxType | StatxSize, out var status) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is ENoEnt or ENotDir) return (UserFileKind.Missing, 0);
            throw new IOException($"{path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        return (KindOf(status.Mode), (long)status.Size);
    }

    /// <summary>"a FIFO", "a folder", …: the words for a kind in messages.</summary>
    public static string Describe(UserFileKind kind) => kind switch
    {
        UserFileKind.Missing => "missing",
        UserFileKind.Regular => "a regular file",
        UserFileKind.Directory => "a folder",
        UserFileKind.SymbolicLink => "a symbolic link",
        UserFileKind.Fifo => "a FIFO (named pipe)",
        UserFileKind.CharacterDevice => "a character device",
        UserFileKind.BlockDevice => "a block device",
        _ => "a socket",
    };

    /// <summary>
    /// Opens the regular file <paramref name="path"/> for reading, refusing anything else and anything over
    /// <paramref name="maxBytes"/>. <paramref name="error"/> turns the problem (a sentence without the path) into the
    /// caller's exception, which names the file.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static FileStream OpenRead(string path, long maxBytes, string what, Func<string, Exception> error)
    {
        var (kind, _) = Stat(path, followLinks: true);
        if (kind == UserFileKind.Missing) throw new FileNotFoundException($"{path} does not exist.", path);
        if (kind != UserFileKind.Regular) throw error(NotRegular(kind, what));
        var fd = Open(path, ORdOnly | ONonBlock | OCloExec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENoEnt) throw new FileNotFoundException($"{path} does not exist.", path);
            throw error($"it cannot be opened: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            // Checked again on the descriptor: the path may have been replaced since the first look.
            if (Statx(fd, "", AtEmptyPath, StatxType | StatxSize, out var status) != 0)
                throw error($"it cannot be examined: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            var opened = KindOf(status.Mode);
            if (opened != UserFileKind.Regular) throw error(NotRegular(opened, what));
            if ((long)status.Size > maxBytes)
                throw error($"it is {Size((long)status.Size)}, more than the {Size(maxBytes)} a {what} may take.");
            return new FileStream(handle, FileAccess.Read);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The whole regular file, at most <paramref name="maxBytes"/> (see <see cref="OpenRead"/>).</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what, Func<string, Exception> error)
    {
        using var stream = OpenRead(path, maxBytes, what, error);
        var bytes = new byte[stream.Length];
        var read = 0;
        // A file that shrinks while read ends early; one that grows is read to the length it had when opened.
        while (read < bytes.Length && stream.Read(bytes, read, bytes.Length - read) is var n and > 0) read += n;
        return read == bytes.Length ? bytes : bytes[..read];
    }

    /// <summary>The whole regular file as text (UTF-8, or the encoding its byte order mark names).</summary>
    public static string ReadAllText(string path, long maxBytes, string what, Func<string, Exception> error)
    {
        using var reader = new StreamReader(new MemoryStream(ReadAllBytes(path, maxBytes, what, error)), Encoding.UTF8, true);
        return reader.ReadToEnd();
    }

    /// <summary>"64 MB", "12 bytes": sizes in messages.</summary>
    public static string Size(long bytes) => bytes >= 1 << 20
        ? (bytes / (double)(1 << 20)).ToString("0.#", CultureInfo.InvariantCulture) + " MB"
        : $"{bytes} bytes";

    private static string NotRegular(UserFileKind kind, string what) =>
        $"it is {Describe(kind)}, not a regular file; a {what} must be a regular file.";

    private static UserFileKind KindOf(ushort mode) => (mode & 0xF000) switch
    {
        0x8000 => UserFileKind.Regular,
        0x4000 => UserFileKind.Directory,
        0xA000 => UserFileKind.SymbolicLink,
        0x1000 => UserFileKind.Fifo,
        0x2000 => UserFileKind.CharacterDevice,
        0x6000 => UserFileKind.BlockDevice,
        _ => UserFileKind.Socket,
    };

    // Linux constants, the same on x86-64 and arm64.
    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, AtEmptyPath = 0x1000;
    private const uint StatxType = 0x1, StatxSize = 0x200;
    private const int ORdOnly = 0, ONonBlock = 0x800, OCloExec = 0x80000;
    private const int ENoEnt = 2, ENotDir = 20;

    /// <summary>struct statx: its layout is the same on every Linux architecture (unlike struct stat).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(40)] public ulong Size;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirFd, string path, int flags, uint mask, out StatxBuffer buffer);

    // open(2) is variadic; called with its two fixed arguments only, which is safe when O_CREAT is not given.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);
}
