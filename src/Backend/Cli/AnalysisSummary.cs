using AttentionViz.Backend.Analysis;

namespace AttentionViz.Backend.Cli;

/// <summary>The human-readable result of `analyze` without --out.</summary>
public static class AnalysisSummary
{
    public static void Print(StoredAnalysis analysis, TextWriter output)
    {
        var model = analysis.Model;
        var tokens = analysis.Tokens;
        var n = tokens.Count;
        output.WriteLine($"model      {model.Id} ({model.Architecture}, " +
            $"{model.Layers} layers × {model.Heads} heads{(model.Causal ? ", causal" : "")})");
        output.WriteLine($"tokens     {n}{(analysis.Truncated ? $" (truncated at UTF-16 offset {analysis.TruncatedAt})" : "")}, " +
            $"analyzed in {analysis.ElapsedMs:F1} ms");
        output.WriteLine();
        output.WriteLine("  #  token            span");
        for (var i = 0; i < n; i++)
        {
            var t = tokens[i];
            var span = t.Special ? "special" : $"[{t.Start}, {t.End})";
            output.WriteLine($"{i,3}  {Escape(t.Readable ?? t.Text),-16} {span}");
        }

        if (!analysis.Attention.IsStored)
        {
            // A long analysis: the per-head metrics were summed during the forward; recomputing every cell of every
            // head for a summary would cost as much as the forward's attention.
            output.WriteLine();
            output.WriteLine("layer  mean entropy (nats, head metrics' smoothed entropy, mean over heads; uniform would be "
                + Math.Log(n).ToString("F3") + ")");
            foreach (var layer in analysis.Metrics!.GroupBy(m => m.Layer))
                output.WriteLine($"{layer.Key,5}  {layer.Average(m => m.Entropy):F3}");
            output.WriteLine();
            output.WriteLine("top attended pairs: not listed for a long analysis (see the panel, `render` or `--out`)");
            return;
        }
        output.WriteLine();
        output.WriteLine("layer  mean entropy (nats, mean over heads and query rows; uniform would be " + Math.Log(n).ToString("F3") + ")");
        var matrix = new float[checked(n * n)];
        for (var layer = 0; layer < model.Layers; layer++)
        {
            double total = 0;
            for (var head = 0; head < model.Heads; head++)
            {
                analysis.Attention.Head(layer, head, matrix);
                for (var row = 0; row < n; row++) total += MatrixOps.Entropy(matrix.AsSpan(row * n, n));
            }
            output.WriteLine($"{layer,5}  {total / (model.Heads * n):F3}");
        }

        analysis.Attention.Matrix(-1, -1, matrix);
        var pairs = new List<(int Query, int Key, float Score)>();
        for (var q = 0; q < n; q++)
            for (var k = 0; k < n; k++)
                if (q != k && !tokens[q].Special && !tokens[k].Special) pairs.Add((q, k, matrix[q * n + k]));
        output.WriteLine();
        output.WriteLine("top attended pairs (mean over all layers and heads; special tokens and self-attention left out)");
        foreach (var (q, k, score) in pairs.OrderByDescending(p => p.Score).Take(10))
            output.WriteLine($"  {Escape(tokens[q].Readable ?? tokens[q].Text),14} → {Escape(tokens[k].Readable ?? tokens[k].Text),-14} {score:F4}");
    }

    private static string Escape(string text) =>
        string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
