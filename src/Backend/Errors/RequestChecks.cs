namespace AttentionViz.Backend.Errors;

/// <summary>
/// The checks of the parameters many requests share (analysisId, layer, head, token, maxSize, choices among words),
/// written once so that every method words the same mistake the same way. Each throws
/// <see cref="InvalidRequestException"/>.
/// </summary>
public static class RequestChecks
{
    /// <summary>What -1 stands for as a layer or head, said in the message when it is accepted.</summary>
    public const string MinusOneIsMean = "the mean";
    public const string MinusOneIsMax = "the maximum";
    public const string MinusOneIsLast = "the last";

    public static InvalidRequestException Missing(string name) => new($"Missing parameter '{name}'.");

    public static string AnalysisId(string? id) => id ?? throw Missing("analysisId");

    /// <summary>Layer and head in [0, count), and -1 too when <paramref name="minusOne"/> says what it means.</summary>
    public static void LayerHead(int layers, int heads, int layer, int head, string? minusOne)
    {
        Layer(layers, layer, minusOne);
        Head(heads, head, minusOne);
    }

    public static void Layer(int layers, int layer, string? minusOne = null) =>
        InRange("layer", layer, layers, "the model", "layers", minusOne);

    public static void Head(int heads, int head, string? minusOne = null) =>
        InRange("head", head, heads, "the model", "heads", minusOne);

    public static void Token(int tokens, int token) => InRange("token", token, tokens, "the analysis", "tokens", null);

    public static void MaxSize(int? maxSize) => AtLeast("maxSize", maxSize, 1);

    /// <summary>A window [start, end) within [0, count), non-empty; null is the whole axis.</summary>
    public static (int Start, int End) Range(string name, int[]? range, int count, string plural)
    {
        if (range is null) return (0, count);
        if (range.Length != 2) throw new InvalidRequestException($"{name} must be [start, end); got {range.Length} numbers.");
        var (start, end) = (range[0], range[1]);
        if (start < 0 || end > count || start >= end)
            throw new InvalidRequestException(
                $"{name} [{start}, {end}) is not a window of the view's {count} {plural}: give 0 ≤ start < end ≤ {count}.");
        return (start, end);
    }

    /// <summary>An integer of at least <paramref name="min"/>, when given.</summary>
    public static void AtLeast(string name, int? value, int min)
    {
        if (value < min) throw new InvalidRequestException($"{name} must be at least {min}; got {value}.");
    }

    /// <summary>An integer in [min, max]; <paramref name="unit"/> (e.g. "pixels") follows the bounds.</summary>
    public static void Between(string name, int? value, int min, int max, string? unit = null)
    {
        if (value is not { } v || (v >= min && v <= max)) return;
        var bounds = unit is null ? $"{min} and {max}" : $"{min} and {max} {unit}";
        throw new InvalidRequestException($"{name} must be between {bounds}; got {v}.");
    }

    /// <summary>One of <paramref name="allowed"/> (compared exactly), or the message listing them.</summary>
    public static string OneOf(string name, string? value, params IReadOnlyList<string> allowed) =>
        Choose(name, value, StringComparer.Ordinal, allowed);

    /// <summary>One of <paramref name="allowed"/> in any case, returned as listed there, or the message listing them.</summary>
    public static string OneOfIgnoringCase(string name, string? value, params IReadOnlyList<string> allowed) =>
        Choose(name, value, StringComparer.OrdinalIgnoreCase, allowed);

    private static string Choose(string name, string? value, StringComparer comparer, IReadOnlyList<string> allowed)
    {
        if (value is not null && allowed.FirstOrDefault(a => comparer.Equals(a, value)) is { } match) return match;
        var quoted = allowed.Select(a => $"\"{a}\"").ToArray();
        var list = quoted.Length == 1 ? quoted[0] : $"{string.Join(", ", quoted[..^1])} or {quoted[^1]}";
        throw new InvalidRequestException($"{name} must be {list}; got \"{value}\".");
    }

    private static void InRange(string name, int value, int count, string owner, string plural, string? minusOne)
    {
        var low = minusOne is null ? 0 : -1;
        if (value >= low && value < count) return;
        var alternative = minusOne is null ? "" : $", or -1 for {minusOne}";
        throw new InvalidRequestException(
            $"{name} {value} is out of range: {owner} has {count} {plural} (0..{count - 1}{alternative}).");
    }
}
