using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Analysis;

/// <summary>How much one head's attention changed between two analyses: the mean total-variation distance of aligned rows.</summary>
public sealed record HeadChange(int Layer, int Head, double Score);

/// <param name="Alignment">pairs [i, j]: token i of A is token j of B, in order</param>
public sealed record AttentionDiffResult(int[][] Alignment, HeadChange[] Heads);

/// <summary>
/// The attention diff of two analyses of prompts that differ by an edit (docs/protocol.md, attention/diff). Tokens are
/// aligned by a diff over their ids (the common prefix and suffix, then a longest common subsequence of the rest);
/// for each head, each aligned query pair's rows are restricted to the aligned keys and renormalised, and the score is
/// the mean over aligned query pairs of the total-variation distance ½ Σ |a − b| between them (0: unchanged, 1:
/// disjoint).
/// </summary>
public static class AttentionDiff
{
    /// <summary>The middle part (after the common prefix and suffix) is aligned by dynamic programming up to this many
    /// cells (its lengths' product); beyond it its tokens stay unaligned.</summary>
    public const long MaxMiddleCells = 16L << 20;

    /// <summary>Aligned query pairs read per step.</summary>
    private const int PairsPerStep = 64;

    public static int[][] Align(IReadOnlyList<Token> a, IReadOnlyList<Token> b)
    {
        static bool Same(Token x, Token y) => x.Id == y.Id && x.Special == y.Special;
        var prefix = 0;
        while (prefix < a.Count && prefix < b.Count && Same(a[prefix], b[prefix])) prefix++;
        var suffix = 0;
        while (suffix < a.Count - prefix && suffix < b.Count - prefix && Same(a[a.Count - 1 - suffix], b[b.Count - 1 - suffix])) suffix++;
        var pairs = new List<int[]>();
        for (var i = 0; i < prefix; i++) pairs.Add([i, i]);
        int n = a.Count - prefix - suffix, m = b.Count - prefix - suffix;
        if (n > 0 && m > 0 && (long)n * m <= MaxMiddleCells)
        {
            // Longest common subsequence of the middle, from the end so that the walk below goes forward.
            var lengths = new int[(n + 1) * (m + 1)];
            for (var i = n - 1; i >= 0; i--)
                for (var j = m - 1; j >= 0; j--)
                    lengths[i * (m + 1) + j] = Same(a[prefix + i], b[prefix + j])
                        ? lengths[(i + 1) * (m + 1) + j + 1] + 1
                        : Math.Max(lengths[(i + 1) * (m + 1) + j], lengths[i * (m + 1) + j + 1]);
            for (int i = 0, j = 0; i < n && j < m;)
            {
                if (Same(a[prefix + i], b[prefix + j]))
                {
                    pairs.Add([prefix + i, prefix + j]);
                    i++;
                    j++;
                }
                else if (lengths[(i + 1) * (m + 1) + j] >= lengths[i * (m + 1) + j + 1]) i++;
                else j++;
            }
        }
        for (var k = suffix; k > 0; k--) pairs.Add([a.Count - k, b.Count - k]);
        return [.. pairs];
    }

    public static AttentionDiffResult Compute(IAttentionSource a, IReadOnlyList<Token> tokensA, IAttentionSource b, IReadOnlyList<Token> tokensB,
        CancellationToken cancellationToken = default)
    {
        if (a.Layers != b.Layers || a.Heads != b.Heads)
            throw new InvalidRequestException($"The analyses come from models of different shapes ({a.Layers}×{a.Heads} and " +
                $"{b.Layers}×{b.Heads} layers × heads): compare two analyses of one model.");
        var alignment = Align(tokensA, tokensB);
        var heads = new HeadChange[a.Layers * a.Heads];
        var (na, nb) = (a.Tokens, b.Tokens);
        var keysA = alignment.Select(p => p[0]).ToArray();
        var keysB = alignment.Select(p => p[1]).ToArray();
        for (var layer = 0; layer < a.Layers; layer++)
            for (var head = 0; head < a.Heads; head++)
            {
                double total = 0;
                for (int k0 = 0, k1; k0 < alignment.Length; k0 = k1)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    // Up to PairsPerStep pairs whose rows lie within PairsPerStep rows of the first (an inserted
                    // passage leaves a gap of rows no pair needs).
                    k1 = k0 + 1;
                    while (k1 < alignment.Length && k1 - k0 < PairsPerStep && keysA[k1] - keysA[k0] < PairsPerStep
                           && keysB[k1] - keysB[k0] < PairsPerStep) k1++;
                    // The rows of A and of B that this step's query pairs need (the alignment is monotone in both).
                    int ra0 = keysA[k0], ra1 = keysA[k1 - 1] + 1, rb0 = keysB[k0], rb1 = keysB[k1 - 1] + 1;
                    var rowsA = new float[(long)(ra1 - ra0) * na];
                    var rowsB = new float[(long)(rb1 - rb0) * nb];
                    a.Tile(layer, head, ra0, ra1, 0, na, rowsA);
                    b.Tile(layer, head, rb0, rb1, 0, nb, rowsB);
                    for (var k = k0; k < k1; k++)
                        total += Distance(rowsA.AsSpan((keysA[k] - ra0) * na, na), rowsB.AsSpan((keysB[k] - rb0) * nb, nb), keysA, keysB);
                }
                heads[layer * a.Heads + head] = new HeadChange(layer, head, alignment.Length == 0 ? 0 : total / alignment.Length);
            }
        return new AttentionDiffResult(alignment, heads);
    }

    /// <summary>½ Σ_k |a_k/Σa − b_k/Σb| over the aligned keys k; a row with no mass on them counts as unchanged only
    /// when the other has none either (then 0), else as disjoint (1).</summary>
    private static double Distance(ReadOnlySpan<float> rowA, ReadOnlySpan<float> rowB, int[] keysA, int[] keysB)
    {
        double sumA = 0, sumB = 0;
        for (var k = 0; k < keysA.Length; k++)
        {
            sumA += rowA[keysA[k]];
            sumB += rowB[keysB[k]];
        }
        if (sumA <= 0 || sumB <= 0) return sumA <= 0 && sumB <= 0 ? 0 : 1;
        double distance = 0;
        for (var k = 0; k < keysA.Length; k++) distance += Math.Abs(rowA[keysA[k]] / sumA - rowB[keysB[k]] / sumB);
        return distance / 2;
    }
}
