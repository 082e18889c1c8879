using TorchSharp;

namespace AttentionViz.Backend.Storage;

/// <summary>The safetensors element types this backend understands, with their sizes and TorchSharp equivalents.</summary>
public static class SafetensorsDtype
{
    public const string F64 = "F64", F32 = "F32", F16 = "F16", BF16 = "BF16";
    public const string I64 = "I64", I32 = "I32", I16 = "I16", I8 = "I8", U8 = "U8", BOOL = "BOOL";

    /// <summary>All known dtype names.</summary>
    public static IReadOnlyList<string> All { get; } = [F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL];

    /// <summary>Size of one element in bytes, or 0 when the dtype is not known.</summary>
    public static int SizeOf(string dtype) => dtype switch
    {
        F64 or I64 => 8,
        F32 or I32 => 4,
        F16 or BF16 or I16 => 2,
        I8 or U8 or BOOL => 1,
        _ => 0,
    };

    public static bool IsKnown(string dtype) => SizeOf(dtype) != 0;

    public static bool IsFloatingPoint(string dtype) => dtype is F64 or F32 or F16 or BF16;

    public static torch.ScalarType ToScalarType(string dtype) => dtype switch
    {
        F64 => torch.ScalarType.Float64,
        F32 => torch.ScalarType.Float32,
        F16 => torch.ScalarType.Float16,
        BF16 => torch.ScalarType.BFloat16,
        I64 => torch.ScalarType.Int64,
        I32 => torch.ScalarType.Int32,
        I16 => torch.ScalarType.Int16,
        I8 => torch.ScalarType.Int8,
        U8 => torch.ScalarType.Byte,
        BOOL => torch.ScalarType.Bool,
        _ => throw new ArgumentException($"Unknown safetensors dtype '{dtype}'.", nameof(dtype)),
    };

    public static string FromScalarType(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float64 => F64,
        torch.ScalarType.Float32 => F32,
        torch.ScalarType.Float16 => F16,
        torch.ScalarType.BFloat16 => BF16,
        torch.ScalarType.Int64 => I64,
        torch.ScalarType.Int32 => I32,
        torch.ScalarType.Int16 => I16,
        torch.ScalarType.Int8 => I8,
        torch.ScalarType.Byte => U8,
        torch.ScalarType.Bool => BOOL,
        _ => throw new ArgumentException($"TorchSharp dtype {type} has no safetensors equivalent here.", nameof(type)),
    };

    /// <summary>Product of the dims times the element size, or null on overflow or a negative dim.</summary>
    internal static long? ByteLength(ReadOnlySpan<long> shape, int elementSize)
    {
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) return null;
            try { count = checked(count * d); }
            catch (OverflowException) { return null; }
        }
        try { return checked(count * elementSize); }
        catch (OverflowException) { return null; }
    }
}
