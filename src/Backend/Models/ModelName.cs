namespace AttentionViz.Backend.Models;

/// <summary>
/// How a person reads a model's id (an absolute folder, or "default"): the Hugging Face repo of a hub-cache snapshot
/// (<c>…/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/9f8e7d6c</c> → <c>Qwen/Qwen2.5-0.5B-Instruct</c>), else the
/// folder's name; the embedded model by its name. The extension has the same rule (shared/modelName.ts, for the panel
/// and the status bar); both are held to tests/reference/model-names/cases.json.
/// </summary>
public static class ModelName
{
    private const string RepoPrefix = "models--";

    public static string Display(string? id)
    {
        if (string.IsNullOrEmpty(id) || id == ModelRegistry.DefaultId) return ModelRegistry.DefaultInfo.Name;
        // Both separators, as the extension splits them: a Windows path reads the same on any backend.
        var parts = id.TrimEnd('/', '\\').Split('/', '\\');
        var at = Array.LastIndexOf(parts, "snapshots");
        // The hub cache keeps repo "org/name" as models--org--name/snapshots/<revision> (and "gpt2" as models--gpt2).
        if (at > 0 && at == parts.Length - 2 && parts[at - 1].StartsWith(RepoPrefix, StringComparison.Ordinal)
            && parts[at - 1].Length > RepoPrefix.Length)
            return parts[at - 1][RepoPrefix.Length..].Replace("--", "/", StringComparison.Ordinal);
        return parts[^1] is { Length: > 0 } last ? last : id;
    }
}
