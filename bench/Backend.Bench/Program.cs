using AttentionViz.Backend.Bench;

// Two benchmarks of the real backend, each printing Markdown tables (and, with --write, rewriting its block of
// docs/performance.md):
//   MiniLM, short inputs (default): in-process analyze latency, time to first heatmap over JSON-RPC, ONNX Runtime's
//   plain inference of the same graph as the baseline, attention flow for one token.
//     dotnet bench/Backend.Bench/bin/Release/net10.0/linux-x64/Backend.Bench.dll [--runs N] [--write docs/performance.md] [--flow-only] [--cold-only]
//   Long inputs (--long): decoder shapes with random weights at 512 to 8,192 tokens, one backend process per size.
//     … Backend.Bench.dll --long [--shapes smollm2-135m,qwen2.5-0.5b] [--sizes 1024,2048] [--max-size N] [--runs N] [--no-minilm]
//                         [--save results.json] [--before baseline.json] [--baseline-backend old/attentionviz-backend.dll]
//                         [--write docs/performance.md]
//   Loaded models (--models N): RSS as N distinct model folders are analysed in turn by one backend.
//     … Backend.Bench.dll --models 33 [--backend old/attentionviz-backend.dll]
//   Matmul throughput (--gemm): libtorch's fp32 matmul on the long forward's shapes, to compare its phases with.
//     … Backend.Bench.dll --gemm [--tokens 8192] [--runs 5]
//   A MiniLM forward's 36 linear products with every weight its own, from memory (--gemm-stream): the kernel alone.
//     … Backend.Bench.dll --gemm-stream [--rows 16] [--runs 200]

// A table goes into an existing file only: refused now, not after minutes of measuring.
if (BenchArgs.Value("--write") is { } target && !File.Exists(target))
{
    Console.Error.WriteLine($"--write {target}: no such file (the bench rewrites the block between its markers)");
    return 2;
}

return BenchArgs.Has("--gemm-stream") ? GemmBench.Stream()
    : BenchArgs.Has("--models") ? ModelsBench.Run()
    : BenchArgs.Has("--gemm") ? GemmBench.Run()
    : BenchArgs.Has("--long") ? LongInputBench.Run()
    : MiniLmBench.Run();
