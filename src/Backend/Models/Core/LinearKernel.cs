using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using AttentionViz.Backend.Errors;

namespace AttentionViz.Backend.Models.Core;

/// <summary>
/// y = x·Wᵀ + b in float32, written for this project because libtorch's bundled MKL is slow here: on AMD CPUs it takes
/// its AVX2 kernels and re-packs the weights on every call, and small row counts (a short prompt) run far below the
/// core's peak (docs/performance.md, ../shared/docs/recipes.md). The weights are packed once, in place, into panels of
/// <see cref="PanelWidth"/> output columns stored k-major (the panel's 48 weights of input k side by side), so the
/// micro-kernel broadcasts one x value against three vectors of weights: 8 rows × 48 columns in 24 registers
/// (AVX-512), 4 × 24 in 12 (AVX2). Inputs go in blocks of rows and of the inner dimension that stay in L1/L2, and the
/// panels are split between two threads.
/// </summary>
public static partial class LinearKernel
{
    /// <summary>Which code computes the linear layers.</summary>
    public enum Path
    {
        /// <summary>libtorch's <c>linear</c> (MKL); the weights stay unpacked.</summary>
        Torch,
        /// <summary>512-bit vectors (AVX-512F).</summary>
        Vector512,
        /// <summary>256-bit vectors with FMA (AVX2).</summary>
        Vector256,
        /// <summary>Plain loops over the packed weights: correct anywhere, slow; the fallback and a test reference.</summary>
        Scalar,
    }

    /// <summary>The environment variable that forces a path: torch, vector512, vector256 or scalar.</summary>
    public const string PathVariable = "ATTENTIONVIZ_LINEAR";

    /// <summary>Output columns per packed panel: three 512-bit vectors.</summary>
    public const int PanelWidth = 48;

    /// <summary>The path of this process: <see cref="PathVariable"/> if set, else the widest vectors the CPU runs (tests
    /// switch it to check every path against the fixtures; it applies to models loaded afterwards).</summary>
    public static Path Selected
    {
        // Chosen at first use, not in a type initializer: a bad ATTENTIONVIZ_LINEAR is then a model-load error in the
        // product's words, on each load, instead of a TypeInitializationException.
        get => _selected ??= Choose(Environment.GetEnvironmentVariable(PathVariable));
        internal set => _selected = value;
    }

    private static Path? _selected;

    public static bool Supported(Path path) => path switch
    {
        Path.Vector512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        Path.Vector256 => Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    internal static Path Choose(string? forced)
    {
        if (string.IsNullOrWhiteSpace(forced))
            return Supported(Path.Vector512) ? Path.Vector512 : Supported(Path.Vector256) ? Path.Vector256 : Path.Torch;
        if (!Enum.TryParse<Path>(forced.Trim(), ignoreCase: true, out var path) || !Enum.IsDefined(path))
            throw new ModelLoadException($"{PathVariable}={forced}: use torch, vector512, vector256 or scalar.");
        if (!Supported(path)) throw new ModelLoadException($"{PathVariable}={forced}: this CPU does not run {path}.");
        return path;
    }

    /// <summary>
    /// Rearranges w (n × k, row-major, as nn.Linear stores it) into panels in place: panel p holds columns
    /// [48p, 48p + width) as k rows of width values; the last panel is narrower when n is not a multiple of 48.
    /// </summary>
    public static void Pack(Span<float> w, int n, int k)
    {
        var panel = new float[(long)PanelWidth * k];
        for (var start = 0; start < n; start += PanelWidth)
        {
            var width = Math.Min(PanelWidth, n - start);
            var rows = w.Slice(start * k, width * k);
            for (var j = 0; j < width; j++)
                for (var i = 0; i < k; i++)
                    panel[i * width + j] = rows[j * k + i];
            panel.AsSpan(0, width * k).CopyTo(rows);
        }
    }

    /// <summary>The inverse of <see cref="Pack"/> (tests, and a weight read back).</summary>
    public static void Unpack(Span<float> w, int n, int k)
    {
        var panel = new float[(long)PanelWidth * k];
        for (var start = 0; start < n; start += PanelWidth)
        {
            var width = Math.Min(PanelWidth, n - start);
            var rows = w.Slice(start * k, width * k);
            rows.CopyTo(panel);
            for (var j = 0; j < width; j++)
                for (var i = 0; i < k; i++)
                    rows[j * k + i] = panel[i * width + j];
        }
    }

    /// <summary>Below this many multiply-adds one thread does it all: waking a second costs more than it saves.</summary>
    private const long ParallelFrom = 1L << 19;

    /// <summary>
    /// c[m, n] = act(Σₖ a[m, k]·w[n, k] + bias[n]) + residual[m, n] (or × residual[m, n] with
    /// <paramref name="multiplyResidual"/>: a gated MLP's up projection times its activated gate), with w packed by
    /// <see cref="Pack"/>; a, c and the residual row-major. The activation and the residual are applied to each block of
    /// c as it is finished, while it is in cache, instead of as passes of their own.
    /// </summary>
    public static unsafe void Multiply(Path path, ReadOnlySpan<float> a, ReadOnlySpan<float> packed, ReadOnlySpan<float> bias,
        Span<float> c, int m, int n, int k, Activation activation = Activation.None, ReadOnlySpan<float> residual = default,
        bool multiplyResidual = false)
    {
        if (path == Path.Torch) throw new ArgumentException("the torch path runs in libtorch, not here", nameof(path));
        if (!Supported(path)) throw new PlatformNotSupportedException($"this CPU does not run {path}");
        if (a.Length < (long)m * k || packed.Length < (long)n * k || c.Length < (long)m * n || (!bias.IsEmpty && bias.Length < n)
            || (!residual.IsEmpty && residual.Length < (long)m * n))
            throw new ArgumentException("a span is shorter than its shape");
        fixed (float* pa = a, pw = packed, pb = bias, pc = c, pr = residual)
        {
            var job = new Job(path, pa, k, pw, k, 0, bias.IsEmpty ? null : pb, pc, n, m, n, k, activation, residual.IsEmpty ? null : pr,
                multiplyResidual);
            var panels = (n + PanelWidth - 1) / PanelWidth;
            if ((long)m * n * k < ParallelFrom || panels < 2) job.Panels(0, panels);
            else
            {
                // An equal share of the panels per thread of the kernel team (libtorch's threads sleep meanwhile).
                var parts = Math.Min(KernelTeam.Workers + 1, panels);
                KernelTeam.For(parts, part => job.Panels((int)(part * panels / parts), (int)((part + 1) * panels / parts)));
            }
        }
    }

    /// <summary>
    /// The attention products on one thread (the caller spreads heads and rows over threads): c[r, j] (row stride
    /// <paramref name="ldc"/>) = Σᵢ a[r, i] (row stride <paramref name="lda"/>) · B[kOffset + i, j] over i &lt; k, where
    /// B's n columns were packed by <see cref="PackRows"/> or <see cref="PackColumns"/> with <paramref name="panelDepth"/>
    /// rows (its inner dimension), of which this product reads [kOffset, kOffset + k).
    /// </summary>
    internal static unsafe void MultiplyPacked(Path path, float* a, long lda, float* packed, long panelDepth, long kOffset,
        float* c, long ldc, int m, int n, int k)
    {
        if (path == Path.Torch || !Supported(path)) throw new ArgumentException($"{path} does not run here", nameof(path));
        new Job(path, a, lda, packed, panelDepth, kOffset, null, c, ldc, m, n, k).Panels(0, (n + PanelWidth - 1) / PanelWidth);
    }

    /// <summary>Packs n rows of k values (row stride <paramref name="ld"/>; keys as q·kᵀ uses them, or an nn.Linear
    /// weight) into <paramref name="packed"/> (n·k floats) as <see cref="Pack"/> does in place.</summary>
    internal static unsafe void PackRows(float* source, long ld, int n, int k, float* packed)
    {
        for (var start = 0; start < n; start += PanelWidth)
        {
            var width = Math.Min(PanelWidth, n - start);
            var panel = packed + (long)start * k;
            for (var j = 0; j < width; j++)
            {
                var row = source + (start + j) * ld;
                for (var i = 0; i < k; i++) panel[(long)i * width + j] = row[i];
            }
        }
    }

    /// <summary>Packs a k × n matrix given row by row (row stride <paramref name="ld"/>; values as p·v uses them): panel
    /// p holds its columns [48p, 48p + width) for each of the k rows, the layout <see cref="MultiplyPacked"/> reads with
    /// a panel depth of k.</summary>
    internal static unsafe void PackColumns(float* source, long ld, int k, int n, float* packed)
    {
        for (var start = 0; start < n; start += PanelWidth)
        {
            var width = Math.Min(PanelWidth, n - start);
            var panel = packed + (long)start * k;
            for (var i = 0; i < k; i++)
                new ReadOnlySpan<float>(source + i * ld + start, width).CopyTo(new Span<float>(panel + (long)i * width, width));
        }
    }
}
