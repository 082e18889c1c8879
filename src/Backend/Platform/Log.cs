namespace AttentionViz.Backend.Platform;

/// <summary>Logs go to stderr: stdout belongs to the JSON-RPC protocol.</summary>
public static class Log
{
    /// <summary>The most one log line keeps: a client's 100 MB string once made a 105 MB log.</summary>
    public const int MaxLineChars = 4096;

    private static readonly Lock Gate = new();

    public static void Info(string message) => Write("info", message);
    public static void Warn(string message) => Write("warn", message);
    public static void Error(string message) => Write("error", message);

    /// <summary>The text cut to <paramref name="max"/> characters, saying how many were left out.</summary>
    public static string Clip(string text, int max) =>
        text.Length <= max ? text : $"{text[..max]}… ({text.Length - max} more characters)";

    private static void Write(string level, string message)
    {
        lock (Gate) Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} [{level}] {Clip(message, MaxLineChars)}");
    }
}
