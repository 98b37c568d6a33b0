# Dense kernels compiled for the "baseline" instruction-set level (see setup.py, _dense.pxi).
include "_dense.pxi"
