using AttentionViz.Backend.Analysis;
using SkiaSharp;

namespace AttentionViz.Backend.Rendering;

/// <summary>
/// What a caller may choose about an image. Heatmap: <see cref="CellSize"/> pixels per token, or <see cref="Size"/> for
/// the matrix side (cell = floor(size / tokens)). Grid: <see cref="Size"/> is each thumbnail's side. <see cref="MaxSize"/>
/// max-pools long inputs to at most that many rows and columns (as attention/matrix does). <see cref="ScaleMax"/> is
/// the value drawn at the top of the colour map (default: the largest value shown), so faint heads keep their contrast.
/// </summary>
public sealed record RenderOptions(
    int? CellSize = null,
    int? Size = null,
    int? MaxSize = null,
    string? ColorMap = null,
    string? Theme = null,
    float? ScaleMax = null)
{
    public const int MaxImageSide = 12_000;

    /// <summary>At most 48 M pixels (192 MB of RGBA) per image.</summary>
    public const long MaxImagePixels = 48L << 20;

    internal ColorMap Map => Rendering.ColorMap.Named(ColorMap);

    internal Theme Colors => RequestChecks.OneOfIgnoringCase("theme", Theme ?? "light", "light", "dark") == "light"
        ? Rendering.Theme.Light
        : Rendering.Theme.Dark;

    internal void Validate()
    {
        RequestChecks.Between("cellSize", CellSize, 1, 64, "pixels");
        RequestChecks.Between("size", Size, 8, 8192, "pixels");
        if (CellSize is not null && Size is not null) throw new InvalidRequestException("Give either cellSize or size, not both.");
        RequestChecks.MaxSize(MaxSize);
        if (ScaleMax is { } max && !(max > 0 && float.IsFinite(max)))
            throw new InvalidRequestException($"scaleMax must be a positive number; got {max}.");
        _ = Map;
        _ = Colors;
    }
}

/// <summary>Background and text colours: light for documents, dark for dark editor themes.</summary>
internal sealed record Theme(SKColor Background, SKColor Text, SKColor Muted)
{
    public static Theme Light { get; } = new(SKColors.White, new SKColor(0x20, 0x20, 0x20), new SKColor(0x70, 0x70, 0x70));
    public static Theme Dark { get; } = new(new SKColor(0x1e, 0x1e, 0x1e), new SKColor(0xe6, 0xe6, 0xe6), new SKColor(0xa0, 0xa0, 0xa0));
}

/// <summary>
/// Where things are in a rendered image, in pixels. Heatmap: the matrix's cells start at (<see cref="Left"/>,
/// <see cref="Top"/>), <see cref="Cell"/> pixels each, <see cref="Cells"/> per side. Grid: thumbnail (layer, head)
/// starts at (Left + head·Pitch, Top + layer·Pitch).
/// </summary>
public sealed record RenderLayout(
    int Left, int Top, int Cell, int Cells, int Pitch, SKRectI ColorBar, SKRectI RowLabels, SKRectI ColumnLabels,
    float ScaleMax, int PoolFactor, int LabelStep);

/// <summary>A PNG and its size, with the layout (for tests and callers that map pixels back to tokens) and the title as drawn.</summary>
public sealed record RenderedImage(byte[] Png, int Width, int Height, RenderLayout Layout, string Title);
