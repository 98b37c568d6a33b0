# Dense kernels compiled for the "baseline" instruction-set level (see setup.py, kernels/gemm/dense.pxi).
include "dense.pxi"
