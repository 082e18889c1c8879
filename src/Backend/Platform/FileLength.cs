namespace AttentionViz.Backend.Platform;

/// <summary>File sizes that follow symbolic links (the Hugging Face cache links snapshot files to ../../blobs).</summary>
public static class FileLength
{
    /// <summary>The size in bytes of the file <paramref name="path"/> refers to, following links.</summary>
    public static long Of(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target) info = target;
        return info.Length;
    }
}
