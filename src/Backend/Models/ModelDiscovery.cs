using AttentionViz.Backend.Platform;

namespace AttentionViz.Backend.Models;

/// <summary>
/// Finds model folders without loading weights: folders the client configured, and the Hugging Face cache
/// ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), laid out as models--org--name/snapshots/REV/.
/// </summary>
public static class ModelDiscovery
{
    public static string HuggingFaceHubCache(Func<string, string?> environment)
    {
        if (environment("HF_HUB_CACHE") is { Length: > 0 } hub) return hub;
        if (environment("HF_HOME") is { Length: > 0 } home) return Path.Combine(home, "hub");
        var xdg = environment("XDG_CACHE_HOME") is { Length: > 0 } cache ? cache
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(xdg, "huggingface", "hub");
    }

    /// <summary>One (name, folder) per cached model: the most recently written snapshot that has a config.json.</summary>
    public static IReadOnlyList<(string Name, string Folder)> ScanHubCache(string hubCache)
    {
        var found = new List<(string, string)>();
        if (!Directory.Exists(hubCache)) return found;
        foreach (var repo in SafeEnumerate(hubCache, "models--*").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(repo)["models--".Length..].Replace("--", "/");
            var snapshot = SafeEnumerate(Path.Combine(repo, "snapshots"), "*")
                .Where(s => File.Exists(Path.Combine(s, "config.json")))
                .OrderByDescending(s => Directory.GetLastWriteTimeUtc(s))
                .FirstOrDefault();
            if (snapshot is not null) found.Add((name, snapshot));
        }
        return found;
    }

    private static IEnumerable<string> SafeEnumerate(string folder, string pattern)
    {
        try
        {
            return Directory.Exists(folder) ? Directory.GetDirectories(folder, pattern) : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warn($"cannot list {folder}: {e.Message}");
            return [];
        }
    }
}
