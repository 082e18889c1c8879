namespace AttentionViz.Backend.Analysis;

/// <summary>Rows [Start, Start + Rows) of one head: the unit of work a block's capture hands to a thread.</summary>
public readonly record struct RowRun(int Index, int Head, int Start, int Rows);

/// <summary>
/// A block of rows of every head cut into runs that start at multiples of <paramref name="runRows"/> (absolute rows),
/// so that two runs never share a pooled bin when runRows is a multiple of the pooling factor, and a fresh analysis and
/// one resumed from a prefix cut the same rows alike. Heads alone are too few to share out: 9 heads on 2 threads
/// left one thread idle a ninth of the time.
/// </summary>
public sealed class RowRuns(int heads, int rowStart, int rows, int runRows)
{
    /// <summary>Runs of this many rows unless the pooling factor is larger.</summary>
    public const int DefaultRows = 16;

    public RowRun[] All { get; } = Cut(heads, rowStart, rows, runRows);

    public int MostRows => All.Length == 0 ? 0 : All.Max(r => r.Rows);

    private static RowRun[] Cut(int heads, int rowStart, int rows, int runRows)
    {
        if (runRows < 1) throw new ArgumentOutOfRangeException(nameof(runRows));
        var spans = new List<(int Start, int Rows)>();
        for (var r = rowStart; r < rowStart + rows;)
        {
            var end = Math.Min(rowStart + rows, (r / runRows + 1) * runRows);
            spans.Add((r, end - r));
            r = end;
        }
        // Runs of one head are adjacent and in row order: Merge walks them so.
        return Enumerable.Range(0, heads).SelectMany(h => spans.Select(s => (h, s)))
            .Select((x, i) => new RowRun(i, x.h, x.s.Start, x.s.Rows)).ToArray();
    }

    public void ForEach(Action<RowRun> work) => Parallel.For(0, All.Length, i => work(All[i]));
}

/// <summary>Per run: its own metric sums, and the sums at each checkpoint row it crosses.</summary>
public sealed class RunSums
{
    private readonly double[] _totals, _marks;
    private readonly int _marksPerRun;

    public RowRuns Runs { get; }

    public RunSums(RowRuns runs)
    {
        Runs = runs;
        _marksPerRun = runs.MostRows / HeadMetricSums.CheckpointRows + 1;
        _totals = new double[runs.All.Length * HeadMetricSums.Stride];
        _marks = new double[runs.All.Length * _marksPerRun * HeadMetricSums.Stride];
    }

    public Span<double> Total(int run) => _totals.AsSpan(run * HeadMetricSums.Stride, HeadMetricSums.Stride);

    public Span<double> Mark(int run, int mark) =>
        _marks.AsSpan((run * _marksPerRun + mark) * HeadMetricSums.Stride, HeadMetricSums.Stride);
}
