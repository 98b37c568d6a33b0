# Dense kernels compiled for the "avx512" instruction-set level (see setup.py, kernels/gemm/dense.pxi).
include "dense.pxi"
