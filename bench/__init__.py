"""`prnet bench`: every model variant on every runtime, side by side (latency, size, memory, accuracy).

    bench.specs     VariantSpec / BackendSpec / Unavailable: variants and backends as data
    bench.variants  VARIANTS registry (fp32, fp16, and the compressed ones from compress/)
    bench.backends  BACKENDS registry (torch, and the runtimes of export/)
    bench.core      run_benchmark(...) -> report dict (schema: bench/SCHEMA.md)
    bench.measure   interleaved timing, peak RSS, sgemm roofline, sizes on disk
    bench.accuracy  NME vs ground truth and deviation from the FP32 output
    bench.report    Row, Pareto front, rich table, Markdown, PNG plot, atomic run directory
    bench.api       benchmark(...): what the CLI calls
"""
