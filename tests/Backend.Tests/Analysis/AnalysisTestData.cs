using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>Small hand-built attention tensors and token lists for the analysis tests.</summary>
internal static class AnalysisTestData
{
    /// <summary>An attention tensor whose entry [layer, head, query, key] is value(layer, head, query, key).</summary>
    public static AttentionTensor Build(int layers, int heads, int n, Func<int, int, int, int, double> value)
    {
        var tensor = new AttentionTensor(layers, heads, n);
        for (var l = 0; l < layers; l++)
        {
            var span = tensor.Layer(l);
            for (var h = 0; h < heads; h++)
                for (var i = 0; i < n; i++)
                    for (var j = 0; j < n; j++)
                        span[(h * n + i) * n + j] = (float)value(l, h, i, j);
        }
        return tensor;
    }

    /// <summary>One head per matrix, one layer.</summary>
    public static AttentionTensor Heads(int n, params Func<int, int, double>[] heads) =>
        Build(1, heads.Length, n, (_, h, i, j) => heads[h](i, j));

    public static Func<int, int, double> Uniform(int n) => (_, _) => 1.0 / n;
    public static Func<int, int, double> Identity => (i, j) => i == j ? 1 : 0;
    /// <summary>Row 0 attends to itself, row i to i − 1.</summary>
    public static Func<int, int, double> Previous => (i, j) => j == Math.Max(0, i - 1) ? 1 : 0;
    /// <summary>Causal: row i uniform over keys 0..i.</summary>
    public static Func<int, int, double> CausalUniform => (i, j) => j <= i ? 1.0 / (i + 1) : 0;

    /// <summary>Content tokens with made-up ids (distinct per text), spans from concatenating the given source pieces.</summary>
    public static List<Token> Tokens(params string[] texts) => texts.Select((t, i) => new Token(100 + i, t, 0, 0, false)).ToList();

    /// <summary>Tokens with explicit spans: (text, start, end, special).</summary>
    public static List<Token> Spans(params (string Text, int Start, int End, bool Special)[] tokens) =>
        tokens.Select((t, i) => new Token(100 + i, t.Text, t.Start, t.End, t.Special)).ToList();

    public static float[] Matrix(AttentionTensor tensor, int layer, int head) => tensor.Head(layer, head).ToArray();

    /// <summary>Rows that sum to 1: softmax of seeded random logits, optionally causal.</summary>
    public static AttentionTensor Random(int layers, int heads, int n, int seed, bool causal = false, double sharpness = 3)
    {
        var random = new Random(seed);
        var tensor = new AttentionTensor(layers, heads, n);
        for (var l = 0; l < layers; l++)
        {
            var span = tensor.Layer(l);
            for (var h = 0; h < heads; h++)
                for (var i = 0; i < n; i++)
                {
                    var row = span.Slice((h * n + i) * n, n);
                    double sum = 0;
                    var logits = new double[n];
                    for (var j = 0; j < n; j++)
                    {
                        logits[j] = causal && j > i ? double.NegativeInfinity : random.NextDouble() * sharpness * 2 - sharpness;
                        sum += Math.Exp(logits[j]);
                    }
                    for (var j = 0; j < n; j++) row[j] = (float)(Math.Exp(logits[j]) / sum);
                }
        }
        return tensor;
    }
}
