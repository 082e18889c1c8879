using System.Text;

namespace AttentionViz.Backend.Tokenization;

/// <summary>
/// Canonical decomposition (NFD) of single code points through .NET's normalization (ICU on Linux). Decomposing code
/// point by code point omits canonical reordering of combining marks ACROSS original characters; BERT drops every
/// nonspacing mark after NFD, so that only matters for the rare spacing marks with a combining class.
/// </summary>
internal static class CanonicalDecomposition
{
    /// <summary>The longest full canonical decomposition of one code point (Unicode: 4).</summary>
    public const int MaxLength = 4;

    /// <summary>Writes the full canonical decomposition of <paramref name="cp"/> (itself when it has none) to
    /// <paramref name="destination"/> (at least <see cref="MaxLength"/> long) and returns how many code points it wrote.</summary>
    public static int Decompose(int cp, Span<int> destination)
    {
        if (cp < 0xC0 || !Rune.IsValid(cp)) { destination[0] = cp; return 1; }
        var text = char.ConvertFromUtf32(cp);
        if (text.IsNormalized(NormalizationForm.FormD)) { destination[0] = cp; return 1; }
        var count = 0;
        foreach (var rune in text.Normalize(NormalizationForm.FormD).EnumerateRunes())
        {
            if (count == MaxLength) throw new InvalidOperationException($"U+{cp:X4} decomposes into more than {MaxLength} code points.");
            destination[count++] = rune.Value;
        }
        return count;
    }
}
