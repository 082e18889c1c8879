using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AttentionViz.Backend.Models.Core;

// The micro-kernels of LinearKernel: one product's blocking over panels, rows and the inner dimension, and the register
// tiles it runs (LinearKernel.cs has the dispatch, the packing and the entry points).
public static partial class LinearKernel
{
    /// <summary>Inner-dimension block: a panel's 256 × 48 weights are 48 kB (L1/L2).</summary>
    private const int DepthBlock = 256;

    /// <summary>Rows of x per block: 128 rows × 256 of the inner dimension are 128 kB (L2).</summary>
    private const int RowBlock = 128;

    /// <summary>Up to this many rows, a panel's whole inner dimension goes in one block.</summary>
    private const int SmallRows = RowBlock;

    /// <summary>One product: a's rows are <paramref name="lda"/> apart and c's <paramref name="ldc"/>; panel p of w starts at
    /// its first column × <paramref name="panelDepth"/> and the product reads its rows from <paramref name="kOffset"/>.</summary>
    private readonly unsafe struct Job(Path path, float* a, long lda, float* w, long panelDepth, long kOffset, float* bias, float* c,
        long ldc, int m, int n, int k, Activation activation = Activation.None, float* residual = null, bool multiply = false)
    {
        /// <summary>Panels [from, to): each block of the inner dimension, each block of rows, each panel.</summary>
        public void Panels(int from, int to)
        {
            // A few rows reuse each weight only a few times: streaming each panel once, start to end, keeps the
            // hardware prefetcher ahead of the weights (a short prompt's weights come from memory, not cache).
            var depthBlock = m <= SmallRows ? k : DepthBlock;
            for (var depth = 0; depth < k; depth += depthBlock)
            {
                var depthEnd = Math.Min(k, depth + depthBlock);
                var first = depth == 0;
                for (var rowStart = 0; rowStart < m; rowStart += RowBlock)
                {
                    var rowEnd = Math.Min(m, rowStart + RowBlock);
                    for (var p = from; p < to; p++)
                    {
                        var col = p * PanelWidth;
                        var width = Math.Min(PanelWidth, n - col);
                        var panel = w + (long)col * panelDepth + kOffset * width;   // rows of `width` weights
                        var row = rowStart;
                        if (width == PanelWidth && path == Path.Vector512)
                            for (; row + 8 <= rowEnd; row += 8) Tile512(row, col, panel, depth, depthEnd, first);
                        else if (width == PanelWidth && path == Path.Vector256)
                            for (; row + 4 <= rowEnd; row += 4)
                            {
                                Tile256(row, col, panel, 0, depth, depthEnd, first);
                                Tile256(row, col, panel, 24, depth, depthEnd, first);
                            }
                        else if (width is 16 or 32 && path == Path.Vector512)
                            // The narrow panels of head sizes 32, 64, 128 (P·V) and of 896-wide layers.
                            for (; row + 8 <= rowEnd; row += 8)
                                if (width == 32) Tile512Narrow2(row, col, panel, depth, depthEnd, first);
                                else Tile512Narrow1(row, col, panel, depth, depthEnd, first);
                        else if (width is 16 or 32 && path == Path.Vector256)
                            for (; row + 4 <= rowEnd; row += 4)
                                for (var half = 0; half < width; half += 16) Tile256Narrow(row, col, panel, width, half, depth, depthEnd, first);
                        if (row < rowEnd) Strips(row, rowEnd, col, width, panel, depth, depthEnd, first);
                        if (depthEnd == k && (activation != Activation.None || residual is not null))
                            Finish(rowStart, rowEnd, col, width);
                    }
                }
            }
        }

        /// <summary>The epilogue on a finished block of c while it is in cache: the activation, then the residual added
        /// or multiplied (rows of n).</summary>
        private void Finish(int rowStart, int rowEnd, int col, int width)
        {
            for (var row = rowStart; row < rowEnd; row++)
                ActivationFunctions.Apply(activation, path, new Span<float>(c + row * ldc + col, width),
                    residual is null ? default : new ReadOnlySpan<float>(residual + (long)row * n + col, width), multiply);
        }

        /// <summary>8 rows × 48 columns over inner indices [depth, depthEnd), added to c unless <paramref name="first"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Tile512(int row, int col, float* panel, int depth, int depthEnd, bool first)
        {
            float* x = a + row * lda;
            Vector512<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default,
                c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default,
                c40 = default, c41 = default, c42 = default, c50 = default, c51 = default, c52 = default,
                c60 = default, c61 = default, c62 = default, c70 = default, c71 = default, c72 = default;
            for (var i = depth; i < depthEnd; i++)
            {
                var b = panel + (long)i * PanelWidth;
                var b0 = Vector512.Load(b);
                var b1 = Vector512.Load(b + 16);
                var b2 = Vector512.Load(b + 32);
                var s = Vector512.Create(x[i]);
                c00 = Avx512F.FusedMultiplyAdd(s, b0, c00); c01 = Avx512F.FusedMultiplyAdd(s, b1, c01); c02 = Avx512F.FusedMultiplyAdd(s, b2, c02);
                s = Vector512.Create(x[lda + i]);
                c10 = Avx512F.FusedMultiplyAdd(s, b0, c10); c11 = Avx512F.FusedMultiplyAdd(s, b1, c11); c12 = Avx512F.FusedMultiplyAdd(s, b2, c12);
                s = Vector512.Create(x[2 * lda + i]);
                c20 = Avx512F.FusedMultiplyAdd(s, b0, c20); c21 = Avx512F.FusedMultiplyAdd(s, b1, c21); c22 = Avx512F.FusedMultiplyAdd(s, b2, c22);
                s = Vector512.Create(x[3 * lda + i]);
                c30 = Avx512F.FusedMultiplyAdd(s, b0, c30); c31 = Avx512F.FusedMultiplyAdd(s, b1, c31); c32 = Avx512F.FusedMultiplyAdd(s, b2, c32);
                s = Vector512.Create(x[4 * lda + i]);
                c40 = Avx512F.FusedMultiplyAdd(s, b0, c40); c41 = Avx512F.FusedMultiplyAdd(s, b1, c41); c42 = Avx512F.FusedMultiplyAdd(s, b2, c42);
                s = Vector512.Create(x[5 * lda + i]);
                c50 = Avx512F.FusedMultiplyAdd(s, b0, c50); c51 = Avx512F.FusedMultiplyAdd(s, b1, c51); c52 = Avx512F.FusedMultiplyAdd(s, b2, c52);
                s = Vector512.Create(x[6 * lda + i]);
                c60 = Avx512F.FusedMultiplyAdd(s, b0, c60); c61 = Avx512F.FusedMultiplyAdd(s, b1, c61); c62 = Avx512F.FusedMultiplyAdd(s, b2, c62);
                s = Vector512.Create(x[7 * lda + i]);
                c70 = Avx512F.FusedMultiplyAdd(s, b0, c70); c71 = Avx512F.FusedMultiplyAdd(s, b1, c71); c72 = Avx512F.FusedMultiplyAdd(s, b2, c72);
            }
            Put(row, col, c00, c01, c02, first, depthEnd == k);
            Put(row + 1, col, c10, c11, c12, first, depthEnd == k);
            Put(row + 2, col, c20, c21, c22, first, depthEnd == k);
            Put(row + 3, col, c30, c31, c32, first, depthEnd == k);
            Put(row + 4, col, c40, c41, c42, first, depthEnd == k);
            Put(row + 5, col, c50, c51, c52, first, depthEnd == k);
            Put(row + 6, col, c60, c61, c62, first, depthEnd == k);
            Put(row + 7, col, c70, c71, c72, first, depthEnd == k);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Put(int row, int col, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, bool first, bool last)
        {
            var y = c + row * ldc + col;
            if (!first)
            {
                v0 += Vector512.Load(y);
                v1 += Vector512.Load(y + 16);
                v2 += Vector512.Load(y + 32);
            }
            if (last && bias is not null)                                     // after the sum, as libtorch adds it
            {
                v0 += Vector512.Load(bias + col);
                v1 += Vector512.Load(bias + col + 16);
                v2 += Vector512.Load(bias + col + 32);
            }
            v0.Store(y);
            v1.Store(y + 16);
            v2.Store(y + 32);
        }

        /// <summary>8 rows × a 32-wide panel (two vectors per row).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Tile512Narrow2(int row, int col, float* panel, int depth, int depthEnd, bool first)
        {
            float* x = a + row * lda;
            Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
                c60 = default, c61 = default, c70 = default, c71 = default;
            for (var i = depth; i < depthEnd; i++)
            {
                var b = panel + (long)i * 32;
                var b0 = Vector512.Load(b);
                var b1 = Vector512.Load(b + 16);
                var s = Vector512.Create(x[i]);
                c00 = Avx512F.FusedMultiplyAdd(s, b0, c00); c01 = Avx512F.FusedMultiplyAdd(s, b1, c01);
                s = Vector512.Create(x[lda + i]);
                c10 = Avx512F.FusedMultiplyAdd(s, b0, c10); c11 = Avx512F.FusedMultiplyAdd(s, b1, c11);
                s = Vector512.Create(x[2 * lda + i]);
                c20 = Avx512F.FusedMultiplyAdd(s, b0, c20); c21 = Avx512F.FusedMultiplyAdd(s, b1, c21);
                s = Vector512.Create(x[3 * lda + i]);
                c30 = Avx512F.FusedMultiplyAdd(s, b0, c30); c31 = Avx512F.FusedMultiplyAdd(s, b1, c31);
                s = Vector512.Create(x[4 * lda + i]);
                c40 = Avx512F.FusedMultiplyAdd(s, b0, c40); c41 = Avx512F.FusedMultiplyAdd(s, b1, c41);
                s = Vector512.Create(x[5 * lda + i]);
                c50 = Avx512F.FusedMultiplyAdd(s, b0, c50); c51 = Avx512F.FusedMultiplyAdd(s, b1, c51);
                s = Vector512.Create(x[6 * lda + i]);
                c60 = Avx512F.FusedMultiplyAdd(s, b0, c60); c61 = Avx512F.FusedMultiplyAdd(s, b1, c61);
                s = Vector512.Create(x[7 * lda + i]);
                c70 = Avx512F.FusedMultiplyAdd(s, b0, c70); c71 = Avx512F.FusedMultiplyAdd(s, b1, c71);
            }
            Put(row, col, c00, first, depthEnd == k); Put(row, col + 16, c01, first, depthEnd == k);
            Put(row + 1, col, c10, first, depthEnd == k); Put(row + 1, col + 16, c11, first, depthEnd == k);
            Put(row + 2, col, c20, first, depthEnd == k); Put(row + 2, col + 16, c21, first, depthEnd == k);
            Put(row + 3, col, c30, first, depthEnd == k); Put(row + 3, col + 16, c31, first, depthEnd == k);
            Put(row + 4, col, c40, first, depthEnd == k); Put(row + 4, col + 16, c41, first, depthEnd == k);
            Put(row + 5, col, c50, first, depthEnd == k); Put(row + 5, col + 16, c51, first, depthEnd == k);
            Put(row + 6, col, c60, first, depthEnd == k); Put(row + 6, col + 16, c61, first, depthEnd == k);
            Put(row + 7, col, c70, first, depthEnd == k); Put(row + 7, col + 16, c71, first, depthEnd == k);
        }

        /// <summary>8 rows × a 16-wide panel (one vector per row; the FMA latency is hidden by the eight rows).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Tile512Narrow1(int row, int col, float* panel, int depth, int depthEnd, bool first)
        {
            float* x = a + row * lda;
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
            for (var i = depth; i < depthEnd; i++)
            {
                var b0 = Vector512.Load(panel + (long)i * 16);
                c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[i]), b0, c0);
                c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[lda + i]), b0, c1);
                c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[2 * lda + i]), b0, c2);
                c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[3 * lda + i]), b0, c3);
                c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[4 * lda + i]), b0, c4);
                c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[5 * lda + i]), b0, c5);
                c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[6 * lda + i]), b0, c6);
                c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[7 * lda + i]), b0, c7);
            }
            var last = depthEnd == k;
            Put(row, col, c0, first, last); Put(row + 1, col, c1, first, last); Put(row + 2, col, c2, first, last);
            Put(row + 3, col, c3, first, last); Put(row + 4, col, c4, first, last); Put(row + 5, col, c5, first, last);
            Put(row + 6, col, c6, first, last); Put(row + 7, col, c7, first, last);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Put(int row, int col, Vector512<float> v, bool first, bool last)
        {
            var y = c + row * ldc + col;
            if (!first) v += Vector512.Load(y);
            if (last && bias is not null) v += Vector512.Load(bias + col);
            v.Store(y);
        }

        /// <summary>4 rows × 16 columns from <paramref name="half"/> of a narrow panel <paramref name="width"/> wide (AVX2).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Tile256Narrow(int row, int col, float* panel, int width, int half, int depth, int depthEnd, bool first)
        {
            float* x = a + row * lda;
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                c30 = default, c31 = default;
            for (var i = depth; i < depthEnd; i++)
            {
                var b = panel + (long)i * width + half;
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var s = Vector256.Create(x[i]);
                c00 = Fma.MultiplyAdd(s, b0, c00); c01 = Fma.MultiplyAdd(s, b1, c01);
                s = Vector256.Create(x[lda + i]);
                c10 = Fma.MultiplyAdd(s, b0, c10); c11 = Fma.MultiplyAdd(s, b1, c11);
                s = Vector256.Create(x[2 * lda + i]);
                c20 = Fma.MultiplyAdd(s, b0, c20); c21 = Fma.MultiplyAdd(s, b1, c21);
                s = Vector256.Create(x[3 * lda + i]);
                c30 = Fma.MultiplyAdd(s, b0, c30); c31 = Fma.MultiplyAdd(s, b1, c31);
            }
            Put(row, col + half, c00, first, depthEnd == k); Put(row, col + half + 8, c01, first, depthEnd == k);
            Put(row + 1, col + half, c10, first, depthEnd == k); Put(row + 1, col + half + 8, c11, first, depthEnd == k);
            Put(row + 2, col + half, c20, first, depthEnd == k); Put(row + 2, col + half + 8, c21, first, depthEnd == k);
            Put(row + 3, col + half, c30, first, depthEnd == k); Put(row + 3, col + half + 8, c31, first, depthEnd == k);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Put(int row, int col, Vector256<float> v, bool first, bool last)
        {
            var y = c + row * ldc + col;
            if (!first) v += Vector256.Load(y);
            if (last && bias is not null) v += Vector256.Load(bias + col);
            v.Store(y);
        }

        /// <summary>4 rows × 24 columns (half a panel, from <paramref name="half"/>) with 256-bit vectors.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Tile256(int row, int col, float* panel, int half, int depth, int depthEnd, bool first)
        {
            float* x = a + row * lda;
            Vector256<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default,
                c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
            for (var i = depth; i < depthEnd; i++)
            {
                var b = panel + (long)i * PanelWidth + half;
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var b2 = Vector256.Load(b + 16);
                var s = Vector256.Create(x[i]);
                c00 = Fma.MultiplyAdd(s, b0, c00); c01 = Fma.MultiplyAdd(s, b1, c01); c02 = Fma.MultiplyAdd(s, b2, c02);
                s = Vector256.Create(x[lda + i]);
                c10 = Fma.MultiplyAdd(s, b0, c10); c11 = Fma.MultiplyAdd(s, b1, c11); c12 = Fma.MultiplyAdd(s, b2, c12);
                s = Vector256.Create(x[2 * lda + i]);
                c20 = Fma.MultiplyAdd(s, b0, c20); c21 = Fma.MultiplyAdd(s, b1, c21); c22 = Fma.MultiplyAdd(s, b2, c22);
                s = Vector256.Create(x[3 * lda + i]);
                c30 = Fma.MultiplyAdd(s, b0, c30); c31 = Fma.MultiplyAdd(s, b1, c31); c32 = Fma.MultiplyAdd(s, b2, c32);
            }
            Put(row, col + half, c00, c01, c02, first, depthEnd == k);
            Put(row + 1, col + half, c10, c11, c12, first, depthEnd == k);
            Put(row + 2, col + half, c20, c21, c22, first, depthEnd == k);
            Put(row + 3, col + half, c30, c31, c32, first, depthEnd == k);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Put(int row, int col, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, bool first, bool last)
        {
            var y = c + row * ldc + col;
            if (!first)
            {
                v0 += Vector256.Load(y);
                v1 += Vector256.Load(y + 8);
                v2 += Vector256.Load(y + 16);
            }
            if (last && bias is not null)                                     // after the sum, as libtorch adds it
            {
                v0 += Vector256.Load(bias + col);
                v1 += Vector256.Load(bias + col + 8);
                v2 += Vector256.Load(bias + col + 16);
            }
            v0.Store(y);
            v1.Store(y + 8);
            v2.Store(y + 16);
        }

        /// <summary>
        /// What the tiles leave: the last rows (fewer than a tile's), and every row of a narrow last panel (Qwen2.5's
        /// 896 columns end in one of 32). Vectors of one row × 16 (or 8) columns, so a 13-token prompt or a narrow
        /// panel is not computed value by value; only columns past the last whole vector (and the scalar path) are.
        /// </summary>
        private void Strips(int row, int rowEnd, int col, int width, float* panel, int depth, int depthEnd, bool first)
        {
            var lanes = path switch { Path.Vector512 => 16, Path.Vector256 => 8, _ => 0 };
            var vectorColumns = lanes == 0 ? 0 : width / lanes * lanes;
            for (var r = row; r < rowEnd; r++)
                for (var j = 0; j < vectorColumns; j += lanes)
                    if (lanes == 16) Strip512(r, col + j, panel + j, width, depth, depthEnd, first);
                    else Strip256(r, col + j, panel + j, width, depth, depthEnd, first);
            if (vectorColumns < width) Edge(row, rowEnd, col, width, panel, depth, depthEnd, first, vectorColumns);
        }

        /// <summary>One row × 16 columns; <paramref name="stride"/> is the panel's width (its row of weights).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Strip512(int row, int col, float* weights, int stride, int depth, int depthEnd, bool first)
        {
            var x = a + row * lda;
            Vector512<float> s0 = default, s1 = default;
            var i = depth;
            for (; i + 2 <= depthEnd; i += 2)                                     // two chains hide the FMA latency
            {
                s0 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[i]), Vector512.Load(weights + (long)i * stride), s0);
                s1 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[i + 1]), Vector512.Load(weights + (long)(i + 1) * stride), s1);
            }
            if (i < depthEnd) s0 = Avx512F.FusedMultiplyAdd(Vector512.Create(x[i]), Vector512.Load(weights + (long)i * stride), s0);
            var y = c + row * ldc + col;
            var sum = s0 + s1;
            if (!first) sum += Vector512.Load(y);
            if (depthEnd == k && bias is not null) sum += Vector512.Load(bias + col);
            sum.Store(y);
        }

        /// <summary>One row × 8 columns with 256-bit vectors.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Strip256(int row, int col, float* weights, int stride, int depth, int depthEnd, bool first)
        {
            var x = a + row * lda;
            Vector256<float> s0 = default, s1 = default;
            var i = depth;
            for (; i + 2 <= depthEnd; i += 2)
            {
                s0 = Fma.MultiplyAdd(Vector256.Create(x[i]), Vector256.Load(weights + (long)i * stride), s0);
                s1 = Fma.MultiplyAdd(Vector256.Create(x[i + 1]), Vector256.Load(weights + (long)(i + 1) * stride), s1);
            }
            if (i < depthEnd) s0 = Fma.MultiplyAdd(Vector256.Create(x[i]), Vector256.Load(weights + (long)i * stride), s0);
            var y = c + row * ldc + col;
            var sum = s0 + s1;
            if (!first) sum += Vector256.Load(y);
            if (depthEnd == k && bias is not null) sum += Vector256.Load(bias + col);
            sum.Store(y);
        }

        /// <summary>Rows [row, rowEnd) × columns [fromColumn, width) of a panel one value at a time: the columns past the
        /// last whole vector, and the whole of the scalar path.</summary>
        private void Edge(int row, int rowEnd, int col, int width, float* panel, int depth, int depthEnd, bool first, int fromColumn = 0)
        {
            for (var r = row; r < rowEnd; r++)
            {
                var x = a + r * lda;
                var y = c + r * ldc + col;
                for (var j = fromColumn; j < width; j++)
                {
                    var sum = first ? 0f : y[j];
                    for (var i = depth; i < depthEnd; i++) sum = MathF.FusedMultiplyAdd(x[i], panel[(long)i * width + j], sum);
                    y[j] = depthEnd == k && bias is not null ? sum + bias[col + j] : sum;
                }
            }
        }
    }
}
