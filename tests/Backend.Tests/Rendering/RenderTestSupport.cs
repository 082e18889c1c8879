using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Tokenization;
using SkiaSharp;

namespace AttentionViz.Backend.Tests.Rendering;

/// <summary>Hand-made analyses with known values, PNG decoding, and a folder the rendered images are kept in.</summary>
internal static class RenderTestSupport
{
    /// <summary>Rendered images land here so that a person can look at them after a run.</summary>
    public static string OutputFolder { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "rendering-output")).FullName;

    public static string Save(string name, byte[] png)
    {
        var path = Path.Combine(OutputFolder, name);
        File.WriteAllBytes(path, png);
        return path;
    }

    /// <summary>
    /// An analysis of <paramref name="texts"/> with <paramref name="layers"/>×<paramref name="heads"/> matrices whose
    /// entries are <paramref name="value"/>(layer, head, query, key).
    /// </summary>
    public static StoredAnalysis HandMade(string[] texts, int layers, int heads, Func<int, int, int, int, float> value, string modelId = "test-model",
        Token[]? tokens = null)
    {
        var n = texts.Length;
        var tensor = new AttentionTensor(layers, heads, n);
        for (var l = 0; l < layers; l++)
        {
            var layer = tensor.Layer(l);
            for (var h = 0; h < heads; h++)
                for (var q = 0; q < n; q++)
                    for (var k = 0; k < n; k++)
                        layer[(h * n + q) * n + k] = value(l, h, q, k);
        }
        return new StoredAnalysis
        {
            Id = "hand-made",
            Model = new ModelSummary(modelId, "bert", layers, heads, false),
            Tokens = tokens ?? texts.Select((t, i) => new Token(i, t, 0, 0, false)).ToArray(),
            Truncated = false,
            Attention = tensor,
            LastHiddenState = new float[n * 2],
            HiddenSize = 2,
        };
    }

    /// <summary>Softmax-like rows from a seeded generator: positive, each row summing to 1.</summary>
    public static Func<int, int, int, int, float> RandomRows(int n, int seed)
    {
        var cache = new Dictionary<(int, int, int), float[]>();
        return (l, h, q, k) =>
        {
            if (!cache.TryGetValue((l, h, q), out var row))
            {
                var random = new Random(HashCode.Combine(seed, l, h, q));
                row = Enumerable.Range(0, n).Select(_ => (float)Math.Exp(random.NextDouble() * 4)).ToArray();
                var sum = row.Sum();
                for (var i = 0; i < n; i++) row[i] /= sum;
                cache[(l, h, q)] = row;
            }
            return row[k];
        };
    }

    public static SKBitmap Decode(byte[] png) => SKBitmap.Decode(png) ?? throw new AssertFailedException("the PNG does not decode");

    public static SKColor CellColor(SKBitmap image, int left, int top, int cell, int row, int col) =>
        image.GetPixel(left + col * cell + cell / 2, top + row * cell + cell / 2);

    public static void AssertColor(SKColor expected, SKColor actual, int tolerance, string what)
    {
        var diff = Math.Max(Math.Abs(expected.Red - actual.Red),
            Math.Max(Math.Abs(expected.Green - actual.Green), Math.Abs(expected.Blue - actual.Blue)));
        Assert.IsLessThanOrEqualTo(tolerance, diff, $"{what}: expected {expected}, got {actual}");
    }

    /// <summary>Pixels inside <paramref name="rect"/> that differ from the background.</summary>
    public static int Ink(SKBitmap image, SKRectI rect, SKColor background)
    {
        var count = 0;
        for (var y = rect.Top; y < rect.Bottom; y++)
            for (var x = rect.Left; x < rect.Right; x++)
                if (image.GetPixel(x, y) != background) count++;
        return count;
    }
}
