using AttentionViz.Backend.Analysis;
using SkiaSharp;

namespace AttentionViz.Backend.Rendering;

/// <summary>
/// Colour maps from [0, 1] to sRGB. Viridis (the default) is perceptually uniform, readable in greyscale and by the
/// common forms of colour blindness. Its control points are every 5th entry of the published 256-entry table
/// (mpl-colormaps by Nathaniel J. Smith, Stéfan van der Walt and Eric Firing, CC0), interpolated linearly in sRGB:
/// within 0.7/255 of every table entry and exact at the control points (t = k/51).
/// </summary>
public sealed class ColorMap
{
    public const string ViridisName = "viridis";
    public const string GreysName = "greys";

    private static readonly (double R, double G, double B)[] ViridisTable =
    [
        (0.267004, 0.004874, 0.329415), (0.273809, 0.031497, 0.358853), (0.278791, 0.062145, 0.386592), (0.281924, 0.089666, 0.412415), // 0..15
        (0.283197, 0.115680, 0.436115), (0.282623, 0.140926, 0.457517), (0.280255, 0.165693, 0.476498), (0.276194, 0.190074, 0.493001), // 20..35
        (0.270595, 0.214069, 0.507052), (0.263663, 0.237631, 0.518762), (0.255645, 0.260703, 0.528312), (0.246811, 0.283237, 0.535941), // 40..55
        (0.237441, 0.305202, 0.541921), (0.227802, 0.326594, 0.546532), (0.218130, 0.347432, 0.550038), (0.208623, 0.367752, 0.552675), // 60..75
        (0.199430, 0.387607, 0.554642), (0.190631, 0.407061, 0.556089), (0.182256, 0.426184, 0.557120), (0.174274, 0.445044, 0.557792), // 80..95
        (0.166617, 0.463708, 0.558119), (0.159194, 0.482237, 0.558073), (0.151918, 0.500685, 0.557587), (0.144759, 0.519093, 0.556572), // 100..115
        (0.137770, 0.537492, 0.554906), (0.131172, 0.555899, 0.552459), (0.125394, 0.574318, 0.549086), (0.121148, 0.592739, 0.544641), // 120..135
        (0.119423, 0.611141, 0.538982), (0.121380, 0.629492, 0.531973), (0.128087, 0.647749, 0.523491), (0.140210, 0.665859, 0.513427), // 140..155
        (0.157851, 0.683765, 0.501686), (0.180653, 0.701402, 0.488189), (0.208030, 0.718701, 0.472873), (0.239374, 0.735588, 0.455688), // 160..175
        (0.274149, 0.751988, 0.436601), (0.311925, 0.767822, 0.415586), (0.352360, 0.783011, 0.392636), (0.395174, 0.797475, 0.367757), // 180..195
        (0.440137, 0.811138, 0.340967), (0.487026, 0.823929, 0.312321), (0.535621, 0.835785, 0.281908), (0.585678, 0.846661, 0.249897), // 200..215
        (0.636902, 0.856542, 0.216620), (0.688944, 0.865448, 0.182725), (0.741388, 0.873449, 0.149561), (0.793760, 0.880678, 0.120005), // 220..235
        (0.845561, 0.887322, 0.099702), (0.896320, 0.893616, 0.096335), (0.945636, 0.899815, 0.112838), (0.993248, 0.906157, 0.143936), // 240..255
    ];

    /// <summary>
    /// Viridis' control points in sRGB (0–1), evenly spaced: point k is t = k / (count − 1). The one definition: the
    /// client's copy (extension/src/shared/colour.ts) is generated from it.
    /// </summary>
    public static IReadOnlyList<(double R, double G, double B)> ViridisPoints { get; } = Array.AsReadOnly(ViridisTable);

    public static ColorMap Viridis { get; } = new(ViridisName, ViridisTable);

    /// <summary>White (0) to black (1), as matplotlib's "Greys": for printing.</summary>
    public static ColorMap Greys { get; } = new(GreysName, [(1, 1, 1), (0, 0, 0)]);

    public static IReadOnlyList<string> Names { get; } = [ViridisName, GreysName];

    /// <summary>The map called <paramref name="name"/> (null: viridis); an unknown name is a bad request.</summary>
    public static ColorMap Named(string? name) =>
        RequestChecks.OneOfIgnoringCase("colorMap", name ?? ViridisName, Names) == ViridisName ? Viridis : Greys;

    private readonly (double R, double G, double B)[] _points;
    private readonly uint[] _table = new uint[TableSize];
    private const int TableSize = 4096;

    private ColorMap(string name, (double R, double G, double B)[] points)
    {
        Name = name;
        _points = points;
        for (var i = 0; i < TableSize; i++) _table[i] = (uint)At((double)i / (TableSize - 1));
    }

    public string Name { get; }

    /// <summary>The colour at <paramref name="t"/> (clamped to [0, 1]; NaN maps to 0), each channel rounded to 8 bits.</summary>
    public SKColor At(double t)
    {
        t = double.IsNaN(t) ? 0 : Math.Clamp(t, 0, 1);
        var segments = _points.Length - 1;
        var x = t * segments;
        var k = Math.Min((int)x, segments - 1);
        var f = x - k;
        var (a, b) = (_points[k], _points[k + 1]);
        return new SKColor(Channel(a.R, b.R, f), Channel(a.G, b.G, f), Channel(a.B, b.B, f));
    }

    private static byte Channel(double a, double b, double f) => (byte)Math.Round((a + (b - a) * f) * 255, MidpointRounding.AwayFromZero);

    /// <summary>
    /// The colour of <paramref name="value"/> on the scale [0, <paramref name="max"/>] as a pixel, from a
    /// 4096-entry table (the heatmap paints ~260 k cells at n = 512), packed as <see cref="SKColor"/> is (BGRA8888 in memory).
    /// Within one 8-bit level of <see cref="At"/>.
    /// </summary>
    public uint Pixel(float value, float max)
    {
        var t = max > 0 ? value / max : 0;
        if (!(t > 0)) return _table[0];
        if (t >= 1) return _table[TableSize - 1];
        return _table[(int)(t * (TableSize - 1) + 0.5f)];
    }
}
