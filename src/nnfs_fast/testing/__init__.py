"""Testing and measuring: the float64 oracle (reference) and the benchmark harness (bench)."""
