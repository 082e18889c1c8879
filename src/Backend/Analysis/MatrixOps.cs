namespace AttentionViz.Backend.Analysis;

public readonly record struct ScoredToken(int Token, float Score);

/// <summary>Small pure operations on row-major square attention matrices.</summary>
public static class MatrixOps
{
    /// <summary>The block size that brings n tokens down to at most maxSize: ceil(n / maxSize).</summary>
    public static int PoolFactor(int n, int maxSize) => maxSize >= n ? 1 : (n + maxSize - 1) / maxSize;

    /// <summary>
    /// An n×n matrix brought down to at most <paramref name="maxSize"/> rows and columns (null: as it is): the one
    /// pooling every matrix on the wire and in an image goes through. Factor 1 hands back the matrix itself.
    /// </summary>
    public static (float[] Data, int Size, int Factor) Pool(float[] matrix, int n, int? maxSize)
    {
        var factor = PoolFactor(n, maxSize ?? n);
        return factor == 1 ? (matrix, n, 1) : (MaxPool(matrix, n, factor), (n + factor - 1) / factor, factor);
    }

    /// <summary>Max-pools an n×n matrix over factor×factor blocks (the last block may be smaller) into m×m, m = ceil(n / factor).</summary>
    public static float[] MaxPool(ReadOnlySpan<float> matrix, int n, int factor)
    {
        var m = (n + factor - 1) / factor;
        var pooled = new float[m * m];
        Array.Fill(pooled, float.NegativeInfinity);
        for (var row = 0; row < n; row++)
        {
            var source = matrix.Slice(row * n, n);
            var target = pooled.AsSpan(row / factor * m, m);
            for (var col = 0; col < n; col++)
            {
                var block = col / factor;
                if (source[col] > target[block]) target[block] = source[col];
            }
        }
        return pooled;
    }

    /// <summary>The k largest scores, highest first; ties keep the lower token index first.</summary>
    public static ScoredToken[] TopK(ReadOnlySpan<float> scores, int k)
    {
        k = Math.Clamp(k, 0, scores.Length);
        var all = new ScoredToken[scores.Length];
        for (var i = 0; i < scores.Length; i++) all[i] = new ScoredToken(i, scores[i]);
        Array.Sort(all, (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Token.CompareTo(b.Token));
        return all[..k];
    }

    /// <summary>Column <paramref name="col"/> of an n×n matrix.</summary>
    public static float[] Column(ReadOnlySpan<float> matrix, int n, int col)
    {
        var column = new float[n];
        for (var row = 0; row < n; row++) column[row] = matrix[row * n + col];
        return column;
    }

    /// <summary>Shannon entropy (nats) of one probability row; zeros contribute nothing.</summary>
    public static double Entropy(ReadOnlySpan<float> row)
    {
        double h = 0;
        foreach (var p in row)
            if (p > 0) h -= p * Math.Log(p);
        return h;
    }
}
