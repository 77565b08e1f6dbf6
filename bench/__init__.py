"""`prnet bench`: every model variant on every runtime, side by side (latency, size, memory, accuracy).

    prnet.bench.specs     VariantSpec / BackendSpec / Unavailable: variants and backends as data
    prnet.bench.variants  VARIANTS registry (fp32, fp16, and the compressed ones from compress/)
    prnet.bench.backends  BACKENDS registry (torch, and the runtimes of export/)
    prnet.bench.core      run_benchmark(...) -> report dict (schema: bench/SCHEMA.md)
    prnet.bench.measure   thread pinning, peak RSS, sgemm roofline (timing: prnet.timing)
    prnet.bench.accuracy  NME vs ground truth and deviation from the FP32 output
    prnet.bench.report    Row, Pareto front, rich table, Markdown, PNG plot, atomic run directory
    prnet.bench.api       benchmark(...): what the CLI calls
"""
