using SkiaSharp;

namespace AttentionViz.Backend.Rendering;

/// <summary>
/// The typeface every label is drawn with: DejaVu Sans, embedded in the assembly (Fonts/, with its licence).
/// SkiaSharp's NoDependencies native library has no usable default typeface (text would silently draw nothing),
/// so the font is loaded explicitly and a failure to load it is an error, never a silent fallback.
/// </summary>
public static class LabelFont
{
    public const string ResourceName = "AttentionViz.Rendering.DejaVuSans.ttf";

    private static readonly Lazy<SKTypeface> Loaded = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    public static SKTypeface Typeface => Loaded.Value;

    public static SKFont Create(float size) => new(Typeface, size) { Edging = SKFontEdging.Antialias, Subpixel = true };

    private static SKTypeface Load()
    {
        using var stream = typeof(LabelFont).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The label font resource {ResourceName} is missing from the backend assembly.");
        return Load(stream, ResourceName);
    }

    /// <summary>A typeface from font file bytes; throws unless it loads and has the glyphs labels need.</summary>
    internal static SKTypeface Load(Stream stream, string name)
    {
        using var data = SKData.Create(stream)
            ?? throw new InvalidOperationException($"The label font {name} could not be read.");
        var typeface = SKTypeface.FromData(data)
            ?? throw new InvalidOperationException($"SkiaSharp could not load the label font {name}: labels would not draw.");
        using var font = new SKFont(typeface, 12);
        if (typeface.GlyphCount < 1000 || !font.ContainsGlyphs("Aa0#…"))
        {
            typeface.Dispose();
            throw new InvalidOperationException($"The label font {name} lacks basic glyphs: labels would not draw.");
        }
        return typeface;
    }
}
