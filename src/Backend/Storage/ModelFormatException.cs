namespace AttentionViz.Backend.Storage;

/// <summary>
/// A model or weights file is malformed, truncated, hostile, or does not contain what the caller needs.
/// The message names the file and, where there is one, the tensor, and says what is wrong.
/// </summary>
public sealed class ModelFormatException : Exception
{
    public ModelFormatException(string message) : base(message) { }
    public ModelFormatException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The file concerned, when known.</summary>
    public string? FilePath { get; init; }

    /// <summary>The tensor concerned, when there is one.</summary>
    public string? TensorName { get; init; }

    internal static ModelFormatException For(string path, string? tensor, string what, Exception? inner = null)
    {
        var message = tensor is null ? $"{path}: {what}" : $"{path}: tensor '{tensor}': {what}";
        return inner is null
            ? new ModelFormatException(message) { FilePath = path, TensorName = tensor }
            : new ModelFormatException(message, inner) { FilePath = path, TensorName = tensor };
    }
}
