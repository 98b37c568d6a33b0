"""The dense-layer GEMM, compiled once per instruction-set level (dense_<level>)."""
