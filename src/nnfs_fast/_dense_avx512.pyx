# Dense kernels compiled for the "avx512" instruction-set level (see setup.py, _dense.pxi).
include "_dense.pxi"
