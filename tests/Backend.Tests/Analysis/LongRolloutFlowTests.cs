using System.Runtime.InteropServices;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Tests.Support;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Tests.Analysis;

/// <summary>
/// Rollout, flow and histograms read attention a block of rows at a time: equal to the whole-matrix computation they
/// replace (kept here as the reference), equal over recomputed and stored sources and to the fixtures, bounded in what
/// they read and allocate, cancellable per block, honest when the time budget runs out.
/// </summary>
[TestClass]
public sealed class LongRolloutFlowTests
{
    /// <summary>The whole-matrix rollout as it was before (torch, (L, n, n) float64): R¹ = Â¹, Rˡ = Âˡ · R^{l−1}.</summary>
    private static double[] ReferenceRollout(IAttentionSource attention, int layer)
    {
        var n = attention.Tokens;
        using var scope = NewDisposeScope();
        var identity = eye(n, dtype: float64);
        Tensor? rollout = null;
        for (var l = 0; l <= layer; l++)
        {
            var mean = attention.LayerTensor(l).mean([0]);
            var adjusted = mean * 0.5 + identity * 0.5;
            adjusted = adjusted / adjusted.sum(-1, keepdim: true);
            rollout = rollout is null ? adjusted : adjusted.matmul(rollout);
        }
        return rollout!.contiguous().data<double>().ToArray();
    }

    /// <summary>The same reference from the fixture's own attentions tensor (L, H, n, n).</summary>
    private static double[] ReferenceRollout(Tensor attentions, int layer)
    {
        using var scope = NewDisposeScope();
        var n = attentions.shape[2];
        var identity = eye(n, dtype: float64);
        Tensor? rollout = null;
        for (var l = 0; l <= layer; l++)
        {
            var adjusted = attentions[l].to(float64).mean([0]) * 0.5 + identity * 0.5;
            adjusted = adjusted / adjusted.sum(-1, keepdim: true);
            rollout = rollout is null ? adjusted : adjusted.matmul(rollout);
        }
        return rollout!.contiguous().data<double>().ToArray();
    }

    private static double MaxDifference(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        Assert.AreEqual(a.Length, b.Length);
        double max = 0;
        for (var i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void MatrixAndEveryRowEqualTheWholeMatrixReference(bool causal)
    {
        using var attention = AnalysisTestData.Random(4, 3, 11, seed: 5, causal: causal);
        for (var layer = 0; layer < 4; layer++)
        {
            var expected = ReferenceRollout(attention, layer);
            var matrix = Rollout.Compute(attention, layer, causal);
            Assert.IsLessThanOrEqualTo(1e-6, MaxDifference(expected, matrix.Select(v => (double)v).ToArray()), $"matrix up to {layer}");
            for (var token = 0; token < 11; token++)
            {
                // Several blocks (3 rows) and one block (all rows) give the same row.
                foreach (var blockRows in new[] { 3, 0 })
                {
                    var row = Rollout.Row(attention, token, layer, causal, blockRows: blockRows);
                    Assert.IsTrue(row.Complete);
                    Assert.AreEqual(0, row.ReachedLayer);
                    Assert.IsLessThanOrEqualTo(1e-12, MaxDifference(expected.AsSpan(token * 11, 11), row.Scores!),
                        $"row {token} up to {layer}, blocks of {blockRows}");
                    CollectionAssert.AreEqual(row.Scores, row.Partial);
                }
            }
        }
    }

    [TestMethod]
    public void AWrongResidualWeightIsCaught()
    {
        // The check above can fail: a rollout without the residual (Â = rownorm(Ā)) is far from the reference.
        using var attention = AnalysisTestData.Random(3, 2, 9, seed: 8, causal: true);
        var expected = ReferenceRollout(attention, 2);
        var r = new double[9];
        r[8] = 1;
        for (var l = 2; l >= 0; l--)
        {
            var next = new double[9];
            for (var h = 0; h < 2; h++)
            {
                var m = attention.Head(l, h);
                for (var k = 0; k < 9; k++)
                    for (var j = 0; j < 9; j++) next[j] += r[k] * m[k * 9 + j] / 2;
            }
            r = next;
        }
        Assert.IsGreaterThan(1e-3, MaxDifference(expected.AsSpan(8 * 9, 9), r));
        Assert.IsLessThanOrEqualTo(1e-12, MaxDifference(expected.AsSpan(8 * 9, 9), Rollout.Row(attention, 8, 2, true).Scores!));
    }

    [TestMethod]
    public void ALongMatrixIsRefusedWithTheWayOut()
    {
        using var source = new ProceduralSource(1, 1, Rollout.MaxMatrixTokens + 1);
        var e = Assert.ThrowsExactly<InvalidRequestException>(() => Rollout.Compute(source, 0, causal: true));
        StringAssert.Contains(e.Message, $"limited to {Rollout.MaxMatrixTokens} tokens");
        StringAssert.Contains(e.Message, "attention/rolloutRow");
        Assert.AreEqual(0, source.Tiles, "refused before reading anything");
    }

    [TestMethod]
    public void ALongRowReadsBlocksAndAllocatesNoLayer()
    {
        const int n = 4096;
        using var source = new ProceduralSource(2, 2, n);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var row = Rollout.Row(source, n - 1, 1, causal: true);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.IsTrue(row.Complete);
        Assert.AreEqual(1.0, row.Scores!.Sum(), 1e-9);
        Assert.IsLessThanOrEqualTo((long)Rollout.BlockCells, source.LargestTile, "tiles stay within a block");
        // One layer's Âˡ would be n² doubles (128 MB); the row holds a block (a few MB) and vectors of n.
        Assert.IsLessThan((long)n * n, allocated, $"allocated {allocated:N0} bytes");
        // Causal: only the keys up to each block's last query are read (the upper triangle costs nothing).
        Assert.IsLessThan(0.6 * 2 * n * (double)n, (double)source.Cells);
    }

    [TestMethod]
    public void CancellationStopsWithinOneBlock()
    {
        const int n = 512;
        using var cts = new CancellationTokenSource();
        using var source = new ProceduralSource(3, 2, n) { OnTile = count => { if (count == 5) cts.Cancel(); } };
        Assert.ThrowsExactly<OperationCanceledException>(() =>
            Rollout.Row(source, n - 1, 2, causal: true, cancellationToken: cts.Token, blockRows: 16));
        // Tiles 1–2: the top layer's one row; cancelled during tile 5 (layer 1's second block, head 0): that block's
        // other head is read, then the check before the next block stops it.
        Assert.AreEqual(6, source.Tiles);
    }

    [TestMethod]
    public void ABudgetThatRunsOutAnswersTheLayersDoneHonestly()
    {
        using var attention = AnalysisTestData.Random(4, 2, 10, seed: 9, causal: true);
        // Tiles take 20 ms each, one block per layer: a 30 ms budget allows two layers (checked before each layer).
        using var slow = new SlowSource(attention, TimeSpan.FromMilliseconds(20));
        var progress = new List<AnalysisProgress>();
        var row = Rollout.Row(slow, 9, 3, causal: true, TimeSpan.FromMilliseconds(30), new SynchronousProgress(progress.Add));
        Assert.IsFalse(row.Complete);
        Assert.IsNull(row.Scores, "no scores unless every layer was applied");
        Assert.IsTrue(row.ReachedLayer is >= 1 and <= 4, $"reached {row.ReachedLayer}");
        Assert.AreEqual(4 - row.ReachedLayer, progress.Count);
        CollectionAssert.AreEqual(Enumerable.Range(1, progress.Count).ToArray(), progress.Select(p => p.LayersDone).ToArray());
        // The partial row is exactly e_9 · Â⁴ ⋯ Â^(reached+1): computed here from the whole matrices.
        var expected = new double[10];
        expected[9] = 1;
        for (var l = 3; l >= row.ReachedLayer; l--)
        {
            var a = new double[100];
            Rollout.Adjusted(attention, l, causal: false, a);
            var next = new double[10];
            for (var k = 0; k < 10; k++)
                for (var j = 0; j < 10; j++) next[j] += expected[k] * a[k * 10 + j];
            expected = next;
        }
        Assert.IsLessThanOrEqualTo(1e-12, MaxDifference(expected, row.Partial));
        var full = Rollout.Row(attention, 9, 3, causal: true);
        Assert.IsGreaterThan(1e-6, MaxDifference(full.Scores!, row.Partial), "the partial row is not the answer");
    }

    [TestMethod]
    [DataRow("s0")]
    [DataRow("s1")]
    public async Task RecomputedEqualsStoredAndTheFixture(string sequence)
    {
        using var thread = new ModelThread();
        using var registry = new ModelRegistry(thread);
        var stored = new AttentionService(registry, new AnalysisCache(1L << 30), thread);
        var recomputed = new AttentionService(registry, new AnalysisCache(1L << 30), thread) { KeepProbabilitiesBytes = 0 };
        var expected = Fixtures.Expected("llama-tiny");
        var ids = Fixtures.Longs(expected[$"{sequence}.input_ids"]);
        var kept = await stored.AnalyzeIdsAsync(ids, Fixtures.Folder("llama-tiny"), CancellationToken.None);
        var onDemand = await recomputed.AnalyzeIdsAsync(ids, Fixtures.Folder("llama-tiny"), CancellationToken.None);
        Assert.IsTrue(kept.Attention.IsStored);
        Assert.IsFalse(onDemand.Attention.IsStored);
        var (n, layers) = (ids.Length, kept.Model.Layers);
        var fixture = ReferenceRollout(expected[$"{sequence}.attentions"], layers - 1);
        var reference = ReferenceRollout(kept.Attention, layers - 1);
        for (var token = 0; token < n; token++)
        {
            var a = Rollout.Row(kept.Attention, token, layers - 1, causal: true, blockRows: 3).Scores!;
            var b = Rollout.Row(onDemand.Attention, token, layers - 1, causal: true, blockRows: 3).Scores!;
            Assert.IsLessThanOrEqualTo(1e-12, MaxDifference(reference.AsSpan(token * n, n), a), $"stored row {token}");
            // Recomputed cells differ from stored ones by up to 1.3e-6 (RecomputedAttentionTests); rows mix them.
            Assert.IsLessThanOrEqualTo(1e-6, MaxDifference(a, b), $"recomputed row {token}");
            Assert.IsLessThanOrEqualTo(1e-4, MaxDifference(fixture.AsSpan(token * n, n), b), $"row {token} vs llama2.c");
        }
        // Flow and histograms over the recomputed source, read in blocks, equal the stored ones.
        var f1 = AttentionFlow.Compute(kept.Attention, n - 1, layers - 1, null, causal: true);
        var f2 = AttentionFlow.Compute(onDemand.Attention, n - 1, layers - 1, null, causal: true);
        var f3 = AttentionFlow.Compute(kept.Attention, n - 1, layers - 1, null, causal: false);
        Assert.IsTrue(f1.Complete && f2.Complete);
        Assert.IsLessThanOrEqualTo(1e-12, MaxDifference(f1.Raw, f3.Raw), "causal reads change nothing");
        Assert.IsLessThanOrEqualTo(1e-5, MaxDifference(f1.Raw, f2.Raw));
        var tokens = kept.Tokens;
        var h1 = Histograms.Weights(kept.Attention, tokens, true, null, null, 50, false, blockRows: 2);
        var h2 = Histograms.Weights(kept.Attention, tokens, true, null, null, 50, false);
        CollectionAssert.AreEqual(h2.Counts, h1.Counts);
        Assert.AreEqual((long)layers * kept.Model.Heads * n * (n + 1) / 2, h1.Total);
    }

    [TestMethod]
    public void HistogramsInBlocksEqualTheWholeLayerCount()
    {
        using var attention = AnalysisTestData.Random(2, 3, 13, seed: 2, causal: true, sharpness: 6);
        var tokens = AnalysisTestData.Spans(Enumerable.Range(0, 13).Select(i => ($"t{i}", i, i + 1, i % 5 == 0)).ToArray());
        foreach (var (layer, head, special) in new (int?, int?, bool)[] { (null, null, false), (1, null, true), (null, 2, true), (0, 1, false) })
        {
            // The reference: one masked_select and histc over each layer's whole (H, n, n), as before.
            var expected = new long[40];
            long total = 0;
            using (NewDisposeScope())
            {
                var index = arange(13);
                var mask = index.unsqueeze(0) <= index.unsqueeze(1);
                if (special)
                {
                    var ordinary = tensor(tokens.Select(t => !t.Special).ToArray());
                    mask = mask.logical_and(ordinary.unsqueeze(0)).logical_and(ordinary.unsqueeze(1));
                }
                for (var l = 0; l < 2; l++)
                {
                    if (layer is { } only && only != l) continue;
                    var a = attention.LayerTensor32(l);
                    if (head is { } h) a = a[h].unsqueeze(0);
                    var values = a.masked_select(mask.expand_as(a));
                    total += values.shape[0];
                    var c = values.histc(40, 0, 1).to(float64).data<double>().ToArray();
                    for (var b = 0; b < 40; b++) expected[b] += (long)Math.Round(c[b]);
                }
            }
            foreach (var blockRows in new[] { 1, 4, 0 })
            {
                var actual = Histograms.Weights(attention, tokens, true, layer, head, 40, special, blockRows: blockRows);
                CollectionAssert.AreEqual(expected, actual.Counts, $"{layer}/{head}/{special}, blocks of {blockRows}");
                Assert.AreEqual(total, actual.Total);
            }
        }
    }

    [TestMethod]
    public void AFlowThatCannotFitIsRefusedWithItsSizeAndTheWayOut()
    {
        // 8,192 tokens of a 30-layer causal model: the graph alone is tens of GB.
        var needed = AttentionFlow.NeededBytes(8192, 30, causal: true);
        Assert.IsGreaterThan(16L << 30, needed);
        var e = Assert.ThrowsExactly<MemoryBudgetException>(() => AttentionFlow.EnsureFits(8192, 30, true, 4096L << 20));
        Assert.AreEqual(AppErrorCode.MemoryBudgetExceeded, e.Code);
        StringAssert.Contains(e.Message, "the budget is 4096 MB");
        StringAssert.Contains(e.Message, "attention/rolloutRow");
        // 512 tokens of 6 layers (MiniLM) fit easily; the estimate grows with the layers asked for.
        AttentionFlow.EnsureFits(512, 6, false, 4096L << 20);
        Assert.IsLessThan(AttentionFlow.NeededBytes(2048, 30, true), AttentionFlow.NeededBytes(2048, 10, true));
        var fewer = Assert.ThrowsExactly<MemoryBudgetException>(() => AttentionFlow.EnsureFits(2048, 30, true, 1024L << 20));
        StringAssert.Contains(fewer.Message, "ask for layer");
    }

    private sealed class SynchronousProgress(Action<AnalysisProgress> report) : IProgress<AnalysisProgress>
    {
        public void Report(AnalysisProgress value) => report(value);
    }

    /// <summary>Another source, slowed down per tile.</summary>
    private sealed class SlowSource(IAttentionSource inner, TimeSpan delay) : IAttentionSource
    {
        public int Layers => inner.Layers;
        public int Heads => inner.Heads;
        public int Tokens => inner.Tokens;
        public long SizeInBytes => inner.SizeInBytes;
        public bool IsStored => false;
        public PooledOverviews? Overviews => null;

        public void Tile(int layer, int head, int rowStart, int rowEnd, int colStart, int colEnd, Span<float> destination)
        {
            Thread.Sleep(delay);
            inner.Tile(layer, head, rowStart, rowEnd, colStart, colEnd, destination);
        }

        public void Dispose() { }
    }

    /// <summary>
    /// Causal rows that sum to 1, computed per tile from a formula: any n without storing n². Counts what is read.
    /// </summary>
    private sealed class ProceduralSource(int layers, int heads, int tokens) : IAttentionSource
    {
        public int Layers => layers;
        public int Heads => heads;
        public int Tokens => tokens;
        public long SizeInBytes => 0;
        public bool IsStored => false;
        public PooledOverviews? Overviews => null;
        public int Tiles;
        public long Cells, LargestTile;
        public Action<int>? OnTile;

        private static float Weight(int l, int h, int i, int j) => 1 + (i * 31 + j * 17 + l * 7 + h * 3) % 11;

        public void Tile(int layer, int head, int rowStart, int rowEnd, int colStart, int colEnd, Span<float> destination)
        {
            var count = ++Tiles;
            var cells = (long)(rowEnd - rowStart) * (colEnd - colStart);
            (Cells, LargestTile) = (Cells + cells, Math.Max(LargestTile, cells));
            OnTile?.Invoke(count);
            var width = colEnd - colStart;
            for (var i = rowStart; i < rowEnd; i++)
            {
                float sum = 0;
                for (var j = 0; j <= i; j++) sum += Weight(layer, head, i, j);
                for (var j = colStart; j < colEnd; j++)
                    destination[(i - rowStart) * width + j - colStart] = j <= i ? Weight(layer, head, i, j) / sum : 0;
            }
        }

        public void Dispose() { }
    }
}
