using System.Text;
using static AttentionViz.Backend.Bench.LongInputBench;

namespace AttentionViz.Backend.Bench;

/// <summary>The Markdown block of docs/performance.md for a long-input run, with the issue's targets beside the numbers.</summary>
internal static class LongInputReport
{
    /// <summary>Issue 10's targets on a 2-core machine, per shape: at which size, and the limits (null: no target).</summary>
    private sealed record Target(int Size, double AnalyzeS, double? ViewMs, double? HoverMs, double? ReanalyzePercent, double PeakMb);

    private static readonly Dictionary<string, Target> Targets = new()
    {
        [DecoderShape.SmolLm2.Name] = new(8192, 60, 500, 50, 10, 2048),
        [DecoderShape.Qwen25.Name] = new(4096, 90, null, null, null, 4096),
    };

    public static string Markdown(LongRun run, IReadOnlyList<DecoderShape> shapes, LongRun? before)
    {
        var md = new StringBuilder();
        md.AppendLine(Wrap($"Measured {run.Measured} at `{run.Commit}` on {run.Machine}; load average {run.LoadAtStart:F2} at the start, " +
            $"other processes took {run.OthersCpuPercent:F0}% of the CPUs during the run ({OthersMost(run)} in the busiest row); " +
            $"budget ATTENTIONVIZ_CACHE_MB={run.CacheMb ?? "unset (the backend's default)"}. Random weights with the real shapes, " +
            "real tokenizers (Llama-2's for the SmolLM2 shape, Qwen's for the Qwen2.5 shape); one fresh backend process per row, " +
            $"everything over JSON-RPC on stdio. Single calls, except analyze up to {AnalyzeRepeatsUpTo:N0} tokens (median of 3) " +
            $"and row and column (median of {HoverSamples}); MB are 2²⁰ bytes."));
        md.AppendLine();
        if (run.GemmGflops is { Count: > 0 } gemm)
        {
            md.AppendLine(Wrap("fp32 GEMM in the same run (the backend's linear path, " + run.GemmPath + ", both threads, the shape's " +
                "MLP product at 1,024 rows, median of 15): " + string.Join("; ", shapes.Where(s => gemm.ContainsKey(s.Name))
                    .Select(s => $"{s.Label.Replace(" shape", "")} {1024}×{s.Hidden} · {s.Hidden}×{s.Intermediate} {gemm[s.Name]:F0} GFLOP/s")) +
                ". *of GEMM* is the forward's GFLOP/s over it (issue #15's target: ≥ 50 %)."));
            md.AppendLine();
        }
        md.AppendLine("| shape | tokens | analyze, s | GFLOP/s | of GEMM | first pooled head, ms | pooled mean of all, ms | row, ms | column, ms " +
            "| re-analysis (+1 sentence), s | peak RSS (after load), MB |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var shape in shapes)
        {
            foreach (var row in run.Rows.Where(r => r.Shape == shape.Name)) md.AppendLine(Row(shape, row, run.GemmGflops?.GetValueOrDefault(shape.Name)));
            if (Targets.TryGetValue(shape.Name, out var t))
                md.AppendLine($"| *target* | *{Number(t.Size)}* | *≤ {t.AnalyzeS}* | | *≥ 50 %* | {Limit(t.ViewMs)} | {Limit(t.ViewMs)} " +
                    $"| {Limit(t.HoverMs)} | {Limit(t.HoverMs)} | {Limit(t.ReanalyzePercent, "% of analyze")} | *≤ {Number(t.PeakMb)}* |");
        }
        if (run.MiniLm is not null)
        {
            md.AppendLine();
            md.AppendLine(Wrap($"Short inputs in the same run: {run.MiniLm}." + (before?.MiniLm is { } old ? $" Before: {old}." : "")));
        }
        if (before is not null) AppendBeforeAfter(md, run, shapes, before);
        return md.ToString();
    }

    private static string Row(DecoderShape shape, LongRow row, double? gemmGflops)
    {
        var label = shape.Label.Replace(" shape", "");
        if (row.Refused is not null || row.Failed is not null)
        {
            var why = row.Refused is not null ? $"refused: {row.Refused}" : $"failed: {row.Failed}";
            return $"| {label} | {Number(row.Size)} | {Cell(why)} | | | | | | | | {PeakRss(row)} |";
        }
        var ofGemm = gemmGflops is > 0 && row.Gflops is { } g ? $"{100 * g / gemmGflops.Value:F0} %" : "";
        return $"| {label} | {Number(row.Tokens ?? row.Size)} | {Seconds(row.AnalyzeMs)} | {Number(row.Gflops ?? 0)} | {ofGemm} | {Ms(row.FirstHeadMs)} " +
            $"| {Ms(row.MeanAllMs)} | {Ms(row.RowMs)} | {Ms(row.ColumnMs)} " +
            $"| {Seconds(row.ReanalyzeMs)} ({Percent(row.ReanalyzeMs, row.AnalyzeMs)}{Reused(row)}) | {PeakRss(row)} |";
    }

    private static string Reused(LongRow row) =>
        row.ReusedTokens is { } reused && row.ReanalyzeTokens is { } tokens ? $"; {Number(reused)} of {Number(tokens)} tokens reused" : "";

    /// <summary>Today against the run given with --before, for the sizes both measured.</summary>
    private static void AppendBeforeAfter(StringBuilder md, LongRun run, IReadOnlyList<DecoderShape> shapes, LongRun before)
    {
        md.AppendLine();
        md.AppendLine(Wrap($"Before → now, for the sizes both runs measured (before: {before.Measured} at `{before.Commit}`, " +
            $"other processes {before.OthersCpuPercent:F0}% of the CPUs):"));
        md.AppendLine();
        md.AppendLine("| shape | size | analyze, s | re-analysis, s | first pooled head, ms | row, ms | peak RSS, MB |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var shape in shapes)
            foreach (var now in run.Rows.Where(r => r.Shape == shape.Name))
            {
                if (before.Rows.FirstOrDefault(r => r.Shape == now.Shape && r.Size == now.Size) is not { } old) continue;
                md.AppendLine($"| {shape.Label.Replace(" shape", "")} | {Number(now.Size)} " +
                    $"| {Change(old, now, r => Seconds(r.AnalyzeMs))} | {Change(old, now, r => Seconds(r.ReanalyzeMs))} " +
                    $"| {Change(old, now, r => Ms(r.FirstHeadMs))} | {Change(old, now, r => Ms(r.RowMs))} " +
                    $"| {Mb(old.PeakRssBytes)} → {Mb(now.PeakRssBytes)} |");
            }
    }

    private static string Change(LongRow old, LongRow now, Func<LongRow, string> value) => $"{Outcome(old, value)} → {Outcome(now, value)}";

    private static string Outcome(LongRow row, Func<LongRow, string> value) =>
        row.Refused is not null ? "refused" : row.Failed is not null ? "failed" : value(row);

    private static string OthersMost(LongRun run) => $"{run.Rows.Max(r => r.OthersCpuPercent) ?? 0:F0}%";

    /// <summary>Prose broken at spaces into lines of at most 120 characters, as the docs are.</summary>
    private static string Wrap(string text)
    {
        var lines = new List<string>();
        var line = new StringBuilder();
        foreach (var word in text.Split(' '))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > 120)
            {
                lines.Add(line.ToString());
                line.Clear();
            }
            line.Append(line.Length > 0 ? " " : "").Append(word);
        }
        lines.Add(line.ToString());
        return string.Join("\n", lines);
    }

    private static string Limit(double? limit, string unit = "") => limit is { } l ? $"*≤ {l}{unit}*" : "";
    private static string Seconds(double? ms) => ms is { } v ? Number(v / 1000, "F1") : "–";
    private static string Ms(double? ms) => ms is { } v ? Number(v, v < 100 ? "F1" : "F0") : "–";
    private static string PeakRss(LongRow row) => $"{Mb(row.PeakRssBytes)} ({Mb(row.LoadPeakRssBytes)})";
    private static string Mb(long? bytes) => bytes is > 0 ? Number(bytes.Value / 1048576.0) : "–";
    private static string Percent(double? part, double? whole) => part is { } p && whole is > 0 ? $"{Number(100 * p / whole.Value)}%" : "–";
    private static string Cell(string text) => text.Replace("|", "\\|").Replace("\n", " ");
}
