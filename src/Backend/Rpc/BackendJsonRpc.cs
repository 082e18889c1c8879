using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using AttentionViz.Backend.Platform;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace AttentionViz.Backend.Rpc;

/// <summary>
/// The one place where JSON-RPC error replies are made: every handler's exception goes through
/// <see cref="ErrorMapping"/> here, so handlers just throw. Error replies never carry <c>data</c> (StreamJsonRpc's
/// default puts the .NET type and stack there).
/// </summary>
internal sealed class BackendJsonRpc : JsonRpc
{
    private readonly Dictionary<string, Type> _paramsTypes;

    public BackendJsonRpc(IJsonRpcMessageHandler handler, IEnumerable<object> targets) : base(handler)
    {
        _paramsTypes = targets
            .SelectMany(t => t.GetType().GetMethods())
            .Select(m => (Attribute: m.GetCustomAttribute<JsonRpcMethodAttribute>(), Parameters: m.GetParameters()))
            .Where(m => m.Attribute is { UseSingleObjectParameterDeserialization: true, Name: not null }
                && m.Parameters.Length > 0)
            .ToDictionary(m => m.Attribute!.Name!, m => m.Parameters[0].ParameterType);
    }

    protected override JsonRpcError.ErrorDetail CreateErrorDetails(JsonRpcRequest request, Exception exception)
    {
        var failure = exception is JsonException json && IsParameterBinding(json)
            ? new Failure(AppErrorCode.InvalidParams, ParameterTypeMessage(request.Method, json), null)
            : ErrorMapping.Describe(exception);
        if (failure.LogLine is { } line) Log.Error(line);
        var message = failure.Code == AppErrorCode.InternalError
            ? $"{failure.Message} (details in the backend log)"
            : failure.Message;
        return new JsonRpcError.ErrorDetail { Code = (JsonRpcErrorCode)failure.Code, Message = message };
    }

    /// <summary>
    /// StreamJsonRpc binds the params before any handler runs: a JSON exception thrown with none of the backend's
    /// frames on its stack is the caller's params, not a file the backend read.
    /// </summary>
    private static bool IsParameterBinding(JsonException e) =>
        !new StackTrace(e).GetFrames().Any(f =>
            f.GetMethod()?.DeclaringType?.Namespace?.StartsWith("AttentionViz.", StringComparison.Ordinal) == true);

    /// <summary>"'layer' must be an integer": the parameter and its type in plain words, no .NET type names.</summary>
    private string ParameterTypeMessage(string? method, JsonException e)
    {
        var prefix = $"Invalid params for '{method}'";
        var name = e.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal)
            ? path[2..].Split('.', '[')[0]
            : null;
        if (name is null || method is null || !_paramsTypes.TryGetValue(method, out var paramsType))
            return $"{prefix}: params must be an object of named parameters.";
        var property = paramsType.GetProperties()
            .FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
        return property is null
            ? $"{prefix}: '{name}' has the wrong type."
            : $"{prefix}: '{name}' must be {PlainType(property.PropertyType)}.";
    }

    private static string PlainType(Type type)
    {
        var nullable = Nullable.GetUnderlyingType(type) is not null;
        type = Nullable.GetUnderlyingType(type) ?? type;
        var words = type == typeof(int) || type == typeof(long) ? "an integer"
            : type == typeof(float) || type == typeof(double) ? "a number"
            : type == typeof(bool) ? "true or false"
            : type == typeof(string) ? "a string"
            : type == typeof(string[]) ? "an array of strings"
            : type.IsArray ? "an array"
            : "an object";
        return nullable ? $"{words} (or left out)" : words;
    }
}
