# Dense kernels compiled for the "avx2" instruction-set level (see setup.py, kernels/gemm/dense.pxi).
include "dense.pxi"
