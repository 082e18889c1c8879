using System.Globalization;
using System.Runtime.InteropServices;
using AttentionViz.Backend.Analysis;
using SkiaSharp;

namespace AttentionViz.Backend.Rendering;

/// <summary>
/// Draws attention as PNG images with SkiaSharp: one layer/head as a labelled heatmap (rows = query tokens top to
/// bottom, columns = key tokens left to right, a colour bar with the scale, a title), or every layer × head as a grid of
/// thumbnails. Cells are painted as pixels and scaled by whole numbers with nearest sampling, so every cell has exactly
/// the colour map's colour.
/// </summary>
public static class AttentionRenderer
{
    private const int Pad = 10;
    private const int TitleSize = 14;
    private const int MaxLabelWidth = 160;
    private const int BarWidth = 14;
    private const int BarGap = 12;

    /// <summary>
    /// One layer and head of an analysis (-1 = the mean, as in attention/matrix), with the view options applied as in
    /// attention/view (special tokens hidden and rows renormalised; subwords merged into words).
    /// </summary>
    public static RenderedImage Heatmap(StoredAnalysis analysis, int layer, int head, RenderOptions options, ViewOptions? view = null)
    {
        options.Validate();
        var shown = view ?? new ViewOptions();
        var viewed = AttentionViews.View(analysis, new ViewRequest(layer, head, shown, options.MaxSize));
        var title = $"{ModelTitle(analysis.Model)} · {(layer < 0 ? "mean of layers" : $"layer {layer}")} · " +
            $"{(head < 0 ? "mean of heads" : $"head {head}")}{ViewCaption(view)}";
        if (viewed.Units.Length == 0) throw new InvalidRequestException(NothingLeft);
        // Token units keep their markers (so Ġ/▁ still show as the space marker), a byte-level token's characters
        // decoded (Token.Readable); words show their joined text.
        var labels = viewed.Units.Select(u => shown.WordLevel ? u.Text : analysis.Tokens[u.FirstToken] is var t ? t.Readable ?? t.Text : "")
            .ToArray();
        return Draw(viewed.Data, viewed.Rows, viewed.PoolFactor, labels, labels, title, options);
    }

    private const string NothingLeft = "Every token is a special token: with hideSpecial there is nothing left to draw.";

    private static string ViewCaption(ViewOptions? view) =>
        (view?.HideSpecial == true ? " · special tokens hidden" : "") + (view?.WordLevel == true ? " · words" : "");

    /// <summary>
    /// An n×n row-major matrix with raw token texts as labels (shown through <see cref="TokenLabels.Display"/>; empty
    /// strings draw nothing).
    /// </summary>
    public static RenderedImage Heatmap(ReadOnlySpan<float> matrix, int n, IReadOnlyList<string> rowTokens, IReadOnlyList<string> columnTokens,
        string title, RenderOptions options)
    {
        options.Validate();
        if (n < 1 || matrix.Length < n * n) throw new ArgumentException("matrix must hold n×n values", nameof(matrix));
        var (pooled, cells, factor) = MatrixOps.Pool(matrix[..(n * n)].ToArray(), n, options.MaxSize);
        return Draw(pooled, cells, factor, rowTokens, columnTokens, title, options);
    }

    /// <summary>A pooled cells×cells matrix; the labels are per token (n = cells × factor at most).</summary>
    private static RenderedImage Draw(float[] shown, int cells, int factor, IReadOnlyList<string> rowTokens,
        IReadOnlyList<string> columnTokens, string title, RenderOptions options)
    {
        var n = rowTokens.Count;
        if (n < 1 || columnTokens.Count != n || (n + factor - 1) / factor != cells)
            throw new ArgumentException("one label per token is needed");
        var (map, theme) = (options.Map, options.Colors);
        if (factor > 1) title += $" · max-pooled ×{factor}";
        var cell = options.CellSize ?? (options.Size is { } size ? Math.Max(1, size / cells) : Math.Clamp(640 / cells, 1, 28));
        var side = cell * cells;
        var scaleMax = options.ScaleMax ?? Math.Max(Max(shown), float.Epsilon);

        using var labelFont = LabelFont.Create(Math.Clamp(cell - 3, 9, 12));
        using var titleFont = LabelFont.Create(TitleSize);
        var step = cell >= labelFont.Size + 1 ? 1 : (int)Math.Ceiling((labelFont.Size + 1) / cell);
        var rowLabels = BlockLabels(rowTokens, factor, cells, step, labelFont);
        var columnLabels = BlockLabels(columnTokens, factor, cells, step, labelFont);
        var captionWidth = (int)Math.Ceiling(Math.Max(labelFont.MeasureText("query ↓"), labelFont.MeasureText("key →")));
        var rowGutter = Math.Max(captionWidth, (int)Math.Ceiling(Widest(rowLabels, step, labelFont))) + 6;
        var columnGutter = Math.Max((int)(labelFont.Spacing * 3), (int)Math.Ceiling(Widest(columnLabels, step, labelFont))) + 6;

        var left = Pad + rowGutter;
        var top = Pad + TitleSize + 10 + columnGutter;
        using var frame = new Frame(left, top, side, side, title, 1200, scaleMax, theme, titleFont, labelFont);
        var (canvas, text, bar) = (frame.Canvas, frame.Text, frame.Bar);
        using var muted = new SKPaint { Color = theme.Muted, IsAntialias = true };
        DrawCells(canvas, shown, cells, map, scaleMax, SKRectI.Create(left, top, side, side));

        var centre = Baseline(labelFont);
        for (var i = 0; i < cells; i += step)
        {
            var y = top + (i + 0.5f) * cell + centre;
            canvas.DrawText(TokenLabels.Fit(rowLabels[i], labelFont, MaxLabelWidth), left - 4, y, SKTextAlign.Right, labelFont, text);
            canvas.Save();
            canvas.Translate(left + (i + 0.5f) * cell + centre, top - 4);
            canvas.RotateDegrees(-90);
            canvas.DrawText(TokenLabels.Fit(columnLabels[i], labelFont, MaxLabelWidth), 0, 0, SKTextAlign.Left, labelFont, text);
            canvas.Restore();
        }
        // Axis captions in the corner between the two label gutters, clear of the first row's label.
        var captionBaseline = top - Math.Max(4, labelFont.Size / 2 + 3) - labelFont.Metrics.Descent;
        canvas.DrawText("query ↓", left - 4, captionBaseline, SKTextAlign.Right, labelFont, muted);
        canvas.DrawText("key →", left - 4, captionBaseline - labelFont.Spacing, SKTextAlign.Right, labelFont, muted);

        frame.DrawColorBar(map);
        var layout = new RenderLayout(left, top, cell, cells, 0, bar,
            SKRectI.Create(Pad, top, rowGutter - 4, side), SKRectI.Create(left, Pad + TitleSize + 10, side, columnGutter - 4),
            scaleMax, factor, step);
        return frame.Finish(layout);
    }

    /// <summary>
    /// Every layer × head as thumbnails (layers down, heads across), on one shared colour scale, with the view options
    /// applied to each head as in <see cref="Heatmap(StoredAnalysis, int, int, RenderOptions, ViewOptions?)"/>.
    /// </summary>
    public static RenderedImage Grid(StoredAnalysis analysis, RenderOptions options, ViewOptions? view = null)
    {
        options.Validate();
        if (options.CellSize is not null) throw new InvalidRequestException("cellSize applies to a single heatmap; " +
            "give size (the thumbnail side) for the grid.");
        var (map, theme) = (options.Map, options.Colors);
        var a = analysis.Attention;
        var thumbTarget = options.Size ?? 72;
        var maxSize = Math.Min(options.MaxSize ?? thumbTarget, thumbTarget);
        var request = new ViewRequest(0, 0, view ?? new ViewOptions(), maxSize);
        var views = new ViewResult[a.Layers * a.Heads];
        for (var k = 0; k < views.Length; k++)
            views[k] = AttentionViews.View(analysis, request with { Layer = k / a.Heads, Head = k % a.Heads });
        var (n, factor, cells) = (views[0].Units.Length, views[0].PoolFactor, views[0].Rows);
        if (n == 0) throw new InvalidRequestException(NothingLeft);
        var cell = Math.Max(1, thumbTarget / cells);
        var thumb = cell * cells;
        var gap = Math.Max(4, thumb / 12);
        var pitch = thumb + gap;
        var thumbnails = views.Select(v => v.Data).ToArray();
        var scaleMax = options.ScaleMax ?? Math.Max(thumbnails.Max(Max), float.Epsilon);

        using var labelFont = LabelFont.Create(11);
        using var titleFont = LabelFont.Create(TitleSize);
        var model = ModelTitle(analysis.Model);
        var units = view?.WordLevel == true ? "words" : "tokens";
        var pooled = factor > 1 ? $" · max-pooled ×{factor}" : "";
        var caption = ViewCaption(view is null ? null : view with { WordLevel = false });
        var title = $"{model} · {a.Layers} layers × {a.Heads} heads · {n} {units}{pooled}{caption}";
        var rowGutter = (int)Math.Ceiling(labelFont.MeasureText($"L{a.Layers - 1}")) + 8;
        var columnGutter = (int)labelFont.Spacing + 4;
        var left = Pad + rowGutter;
        var top = Pad + TitleSize + 10 + columnGutter;
        var gridWidth = a.Heads * pitch - gap;
        var gridHeight = a.Layers * pitch - gap;
        using var frame = new Frame(left, top, gridWidth, gridHeight, title, 1600, scaleMax, theme, titleFont, labelFont);
        var (canvas, text, bar) = (frame.Canvas, frame.Text, frame.Bar);
        var centre = Baseline(labelFont);
        for (var h = 0; h < a.Heads; h++)
            canvas.DrawText($"H{h}", left + h * pitch + thumb / 2f, top - 4 - labelFont.Metrics.Descent, SKTextAlign.Center, labelFont, text);
        for (var l = 0; l < a.Layers; l++)
        {
            canvas.DrawText($"L{l}", left - 6, top + l * pitch + thumb / 2f + centre, SKTextAlign.Right, labelFont, text);
            for (var h = 0; h < a.Heads; h++)
                DrawCells(canvas, thumbnails[l * a.Heads + h], cells, map, scaleMax, SKRectI.Create(left + h * pitch, top + l * pitch, thumb, thumb));
        }
        frame.DrawColorBar(map);
        var layout = new RenderLayout(left, top, cell, cells, pitch, bar,
            SKRectI.Create(Pad, top, rowGutter - 4, gridHeight), SKRectI.Create(left, Pad + TitleSize + 10, gridWidth, columnGutter), scaleMax,
                factor, 1);
        return frame.Finish(layout);
    }

    /// <summary>Paints cells×cells values as pixels, scaled by a whole number into <paramref name="target"/>.</summary>
    private static void DrawCells(SKCanvas canvas, float[] values, int cells, ColorMap map, float scaleMax, SKRectI target)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(cells, cells, SKColorType.Bgra8888, SKAlphaType.Opaque));
        var rowPixels = bitmap.RowBytes / 4;
        var pixels = MemoryMarshal.Cast<byte, uint>(bitmap.GetPixelSpan());
        for (var row = 0; row < cells; row++)
        {
            var source = values.AsSpan(row * cells, cells);
            var destination = pixels.Slice(row * rowPixels, cells);
            for (var col = 0; col < cells; col++) destination[col] = map.Pixel(source[col], scaleMax);
        }
        using var image = SKImage.FromBitmap(bitmap);
        canvas.DrawImage(image, target, new SKSamplingOptions(SKFilterMode.Nearest));
    }

    /// <summary>
    /// What both images share: the canvas with the title at the top, the content at (left, top), and the colour bar to
    /// its right with ticks. Sizes the image from the content and checks it against the limits.
    /// </summary>
    private sealed class Frame : IDisposable
    {
        private readonly SKBitmap _bitmap;
        private readonly float _scaleMax;
        private readonly (float Value, string Text)[] _ticks;
        private readonly SKFont _labelFont;
        private readonly string _title;
        public SKCanvas Canvas { get; }
        public SKPaint Text { get; }
        public SKRectI Bar { get; }

        public Frame(int left, int top, int contentWidth, int contentHeight, string title, int maxTitleWidth, float scaleMax, Theme theme,
            SKFont titleFont, SKFont labelFont)
        {
            (_scaleMax, _labelFont) = (scaleMax, labelFont);
            var barHeight = Math.Max(contentHeight, 120);
            Bar = SKRectI.Create(left + contentWidth + BarGap, top, BarWidth, barHeight);
            _ticks = Ticks(scaleMax);
            var tickWidth = (int)Math.Ceiling(_ticks.Max(t => labelFont.MeasureText(t.Text)));
            var width = Math.Max(Bar.Right + 6 + tickWidth + Pad, Math.Min((int)titleFont.MeasureText(title) + 2 * Pad, maxTitleWidth));
            var height = top + barHeight + Pad + (int)labelFont.Spacing / 2;
            CheckSize(width, height);
            _bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
            Canvas = new SKCanvas(_bitmap);
            Canvas.Clear(theme.Background);
            Text = new SKPaint { Color = theme.Text, IsAntialias = true };
            _title = TokenLabels.Fit(title, titleFont, width - 2 * Pad);
            Canvas.DrawText(_title, Pad, Pad + TitleSize, SKTextAlign.Left, titleFont, Text);
        }

        public void DrawColorBar(ColorMap map) => AttentionRenderer.DrawColorBar(Canvas, Bar, map, _scaleMax, _ticks, _labelFont, Text);

        public RenderedImage Finish(RenderLayout layout) => new(Encode(_bitmap), _bitmap.Width, _bitmap.Height, layout, _title);

        public void Dispose()
        {
            Text.Dispose();
            Canvas.Dispose();
            _bitmap.Dispose();
        }
    }

    /// <summary>A vertical colour bar: the map's top (<paramref name="scaleMax"/>) at the top, 0 at the bottom, with ticks.</summary>
    private static void DrawColorBar(SKCanvas canvas, SKRectI bar, ColorMap map, float scaleMax, (float Value, string Text)[] ticks, SKFont font,
        SKPaint text)
    {
        using var gradient = new SKBitmap(new SKImageInfo(1, bar.Height, SKColorType.Bgra8888, SKAlphaType.Opaque));
        for (var y = 0; y < bar.Height; y++)
            gradient.SetPixel(0, y, map.At(1 - (double)y / (bar.Height - 1)));
        using var image = SKImage.FromBitmap(gradient);
        canvas.DrawImage(image, bar, new SKSamplingOptions(SKFilterMode.Nearest));
        using var line = new SKPaint { Color = text.Color, Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        canvas.DrawRect(bar.Left - 0.5f, bar.Top - 0.5f, bar.Width + 1, bar.Height + 1, line);
        var centre = Baseline(font);
        foreach (var (value, label) in ticks)
        {
            var y = bar.Bottom - value / scaleMax * bar.Height;
            canvas.DrawLine(bar.Right, y, bar.Right + 3, y, line);
            canvas.DrawText(label, bar.Right + 5, y + centre, SKTextAlign.Left, font, text);
        }
    }

    private static (float Value, string Text)[] Ticks(float scaleMax) =>
        [(0, "0"), (scaleMax / 2, Format(scaleMax / 2)), (scaleMax, Format(scaleMax))];

    private static string Format(float value) => value.ToString("G3", CultureInfo.InvariantCulture);

    /// <summary>Offset from a line's centre to its baseline.</summary>
    private static float Baseline(SKFont font) => (-font.Metrics.Ascent - font.Metrics.Descent) / 2;

    /// <summary>
    /// The label of every <paramref name="step"/>-th block (the ones drawn; the others stay empty): the token's, or for
    /// a max-pooled block its first token's followed by "…". When not every token is labelled, the token's index comes
    /// first, so that a position in a long input can be read off.
    /// </summary>
    private static string[] BlockLabels(IReadOnlyList<string> tokens, int factor, int cells, int step, SKFont font)
    {
        var labels = new string[cells];
        Array.Fill(labels, "");
        for (var i = 0; i < cells; i += step)
        {
            var label = TokenLabels.Display(tokens[i * factor], font);
            if (factor > 1 && label.Length > 0) label += "…";
            labels[i] = step > 1 || factor > 1 ? $"{i * factor} {label}" : label;
        }
        return labels;
    }

    private static float Widest(string[] labels, int step, SKFont font)
    {
        var widest = 0f;
        for (var i = 0; i < labels.Length; i += step) widest = Math.Max(widest, font.MeasureText(labels[i]));
        return Math.Min(widest, MaxLabelWidth);
    }

    private static float Max(float[] values) => values.Length == 0 ? 0 : System.Numerics.Tensors.TensorPrimitives.Max(values);

    private static void CheckSize(int width, int height)
    {
        if (width > RenderOptions.MaxImageSide || height > RenderOptions.MaxImageSide || (long)width * height > RenderOptions.MaxImagePixels)
            throw new InvalidRequestException($"The image would be {width}×{height} pixels (at most {RenderOptions.MaxImageSide} per side and " +
                $"{RenderOptions.MaxImagePixels >> 20} M pixels): lower cellSize or size, or set maxSize.");
    }

    /// <summary>A model folder's name rather than its whole path.</summary>
    /// <summary>The model as a person reads it (a hub snapshot by its repo, not its hash): Models/ModelName.</summary>
    private static string ModelTitle(ModelSummary model) => Models.ModelName.Display(model.Id);

    /// <summary>
    /// PNG with the Sub filter and zlib level 3: on a 512×512 heatmap about twice as fast as all filters at level 6,
    /// and no bigger (measured in the rendering tests).
    /// </summary>
    private static byte[] Encode(SKBitmap bitmap)
    {
        using var pixmap = bitmap.PeekPixels();
        using var data = pixmap.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.Sub, zLibLevel: 3))
            ?? throw new InvalidOperationException("PNG encoding failed.");
        return data.ToArray();
    }
}
