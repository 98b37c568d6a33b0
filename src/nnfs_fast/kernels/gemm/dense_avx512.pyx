# Dense kernels compiled for the "avx512" instruction-set level (see setup.py): one compile unit
# with the GEMM (kernels/gemm/gemm.pxi) and the dense passes on it (kernels/gemm/dense.pxi).
include "gemm.pxi"
include "dense.pxi"
