namespace AttentionViz.Backend.Errors;

/// <summary>
/// An expected failure: its message is for the user as it stands (no stack), and its code says what kind it is, for
/// the RPC reply and the CLI's exit code alike (<see cref="ErrorMapping"/>).
/// </summary>
public abstract class AppException(AppErrorCode code, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public AppErrorCode Code => code;
}

/// <summary>A request the caller got wrong (unknown analysis, layer out of range, …): -32602, CLI exit 2.</summary>
public sealed class InvalidRequestException(string message) : AppException(AppErrorCode.InvalidParams, message);

/// <summary>A model folder that cannot be loaded: the message names the path and the reason.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null)
    : AppException(AppErrorCode.ModelLoadFailed, message, inner);

/// <summary>
/// A model or weights file is malformed, truncated, hostile, or does not contain what the caller needs.
/// The message names the file and, where there is one, the tensor, and says what is wrong.
/// </summary>
public sealed class ModelFormatException : AppException
{
    public ModelFormatException(string message) : base(AppErrorCode.ModelFileInvalid, message) { }

    public ModelFormatException(string message, Exception innerException)
        : base(AppErrorCode.ModelFileInvalid, message, innerException) { }

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

/// <summary>
/// An analysis that would not fit the attention memory budget, refused before anything is allocated: the message gives
/// both sizes and the way out. -32004, CLI exit 2.
/// </summary>
public sealed class MemoryBudgetException(long neededBytes, long budgetBytes, string advice)
    : AppException(AppErrorCode.MemoryBudgetExceeded,
        $"This analysis needs {Megabytes(neededBytes)} MB; the budget is {Megabytes(budgetBytes)} MB: "
        + $"{advice}.")
{
    public long NeededBytes => neededBytes;
    public long BudgetBytes => budgetBytes;

    private static string Megabytes(long bytes) =>
        (bytes / (1024.0 * 1024.0)).ToString("0", System.Globalization.CultureInfo.InvariantCulture);
}
