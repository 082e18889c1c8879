using AttentionViz.Backend.Platform;

namespace AttentionViz.Backend.Export;

/// <summary>
/// Where a client may ask the backend to write (render/png's and attention/export's <c>path</c>, the CLI's
/// <c>--out</c>): an absolute path without <c>..</c> segments, in a folder that exists, reached through no symbolic
/// link (no component is one, the file included), and either missing or a regular file, which is then replaced by
/// renaming (<see cref="Storage.AtomicFile"/>), so nothing is ever written through a link or into a FIFO or device.
/// </summary>
public static class OutputPath
{
    public static string Check(string? path, string? requiredExtension = null)
    {
        if (string.IsNullOrWhiteSpace(path)) throw RequestChecks.Missing("path");
        if (path.IndexOf('\0') >= 0 || !Path.IsPathFullyQualified(path)) throw new InvalidRequestException($"path must be absolute: \"{path}\".");
        if (path.Split('/').Contains(".."))
            throw new InvalidRequestException($"path must not contain '..' segments: \"{path}\".");
        var full = Path.GetFullPath(path);
        if (requiredExtension is not null && !string.Equals(Path.GetExtension(full), requiredExtension, StringComparison.OrdinalIgnoreCase))
            throw new InvalidRequestException($"path must end in {requiredExtension}: {full}");
        var parent = Path.GetDirectoryName(full);
        if (parent is null) throw new InvalidRequestException($"path is a folder, not a file: {full}");
        // Every folder from the root down, then the file: lstat, so that a link anywhere is seen as a link.
        var at = "/";
        foreach (var segment in parent.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            at = Path.Combine(at, segment);
            var (kind, _) = UserFile.Stat(at, followLinks: false);
            if (kind == UserFileKind.SymbolicLink)
                throw new InvalidRequestException($"path must not go through a symbolic link: {at} is one (in {full}).");
            if (kind != UserFileKind.Directory) throw new InvalidRequestException($"The folder of path does not exist: {parent}");
        }
        var (target, _) = UserFile.Stat(full, followLinks: false);
        return target switch
        {
            UserFileKind.Missing or UserFileKind.Regular => full,
            UserFileKind.Directory => throw new InvalidRequestException($"path is a folder, not a file: {full}"),
            UserFileKind.SymbolicLink => throw new InvalidRequestException(
                $"path is a symbolic link: {full}. Give the file it points to, or another name; links are not written through."),
            _ => throw new InvalidRequestException(
                $"path exists and is {UserFile.Describe(target)}, not a regular file: {full}. Only regular files are replaced."),
        };
    }
}
