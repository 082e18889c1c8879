namespace AttentionViz.Backend.Tokenization;

/// <summary>
/// Canonical decomposition (NFD) of single code points, without ICU. The backend runs with
/// InvariantGlobalization=true, where <c>string.Normalize(NormalizationForm.FormD)</c> silently returns its input
/// unchanged, so BERT's accent stripping needs its own table (<see cref="Data"/>, generated from Node's ICU by
/// tests/reference/tokenizer/make-nfd-table.mjs). Hangul syllables decompose algorithmically (Unicode §3.12).
/// Decomposing code point by code point omits canonical reordering of combining marks ACROSS original characters;
/// BERT drops every nonspacing mark after NFD, so that only matters for the rare spacing marks with a combining class.
/// </summary>
internal static partial class CanonicalDecomposition
{
    /// <summary>The longest full canonical decomposition of one code point.</summary>
    public const int MaxLength = 4;

    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = 11172;

    // Code point → (offset into Data of its decomposition, length).
    private static readonly Dictionary<int, (int Offset, int Length)> Index = BuildIndex();

    private static Dictionary<int, (int, int)> BuildIndex()
    {
        ReadOnlySpan<int> data = Data;
        var index = new Dictionary<int, (int, int)>(2200);
        for (int i = 0; i < data.Length;)
        {
            int cp = data[i], n = data[i + 1];
            if (n is < 1 or > MaxLength) throw new InvalidDataException($"Bad decomposition row for U+{cp:X4}.");
            index.Add(cp, (i + 2, n));
            i += 2 + n;
        }
        return index;
    }

    /// <summary>Writes the full canonical decomposition of <paramref name="cp"/> (itself when it has none) to
    /// <paramref name="destination"/> (at least <see cref="MaxLength"/> long) and returns how many code points it wrote.</summary>
    public static int Decompose(int cp, Span<int> destination)
    {
        if (cp < 0xC0) { destination[0] = cp; return 1; }
        int s = cp - SBase;
        if ((uint)s < SCount)
        {
            destination[0] = LBase + s / NCount;
            destination[1] = VBase + s % NCount / TCount;
            int t = s % TCount;
            if (t == 0) return 2;
            destination[2] = TBase + t;
            return 3;
        }
        if (!Index.TryGetValue(cp, out var row)) { destination[0] = cp; return 1; }
        Data.Slice(row.Offset, row.Length).CopyTo(destination);
        return row.Length;
    }
}
