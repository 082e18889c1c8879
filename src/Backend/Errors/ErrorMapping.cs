using System.Reflection;
using System.Text.Json;

namespace AttentionViz.Backend.Errors;

/// <summary>
/// What the user is told about a failure, and what goes to the log. <see cref="LogLine"/> is null for a request the
/// caller got wrong, the message for a model that could not be used, and the whole exception (with its stack) for
/// anything unexpected: the stack never reaches the user.
/// </summary>
public sealed record Failure(AppErrorCode Code, string Message, string? LogLine);

/// <summary>The one mapping from exceptions to failures, used by the JSON-RPC server and by the command line.</summary>
public static class ErrorMapping
{
    public static Failure Describe(Exception exception)
    {
        var e = Unwrap(exception);
        return e switch
        {
            OperationCanceledException => new(AppErrorCode.RequestCanceled, "The request was cancelled.", null),
            InvalidRequestException => new(AppErrorCode.InvalidParams, e.Message, null),
            AppException app => new(app.Code, app.Message, app.Message),
            // Library exceptions from reading a model's files that no reader turned into ours: the file is still the
            // problem, not the backend, but the log keeps the stack so that the reader can be taught to wrap it.
            InvalidDataException or JsonException => new(AppErrorCode.ModelFileInvalid, e.Message, $"unwrapped {e}"),
            NotSupportedException => new(AppErrorCode.ModelLoadFailed, e.Message, $"unwrapped {e}"),
            // A file the user named could not be read or written: the environment, not a bug, so no stack.
            IOException or UnauthorizedAccessException =>
                new(AppErrorCode.InternalError, e.Message, $"file error: {e.Message}"),
            _ => new(AppErrorCode.InternalError, $"Internal error: {e.Message}", $"internal error: {e}"),
        };
    }

    /// <summary>The command line's exit code for a failure (documented in docs/protocol.md, "Errors").</summary>
    public static int ExitCode(AppErrorCode code) => code switch
    {
        AppErrorCode.InvalidParams or AppErrorCode.InvalidRequest or AppErrorCode.ParseError
            or AppErrorCode.MemoryBudgetExceeded => 2,
        AppErrorCode.RequestCanceled => 130,
        _ => 1,
    };

    private static Exception Unwrap(Exception e)
    {
        while (e is TargetInvocationException or AggregateException && e.InnerException is { } inner) e = inner;
        return e;
    }
}
