"""What the kernels run on: CPU detection (cpu), OpenMP threads and fork (openmp), the
choice of kernel level at import (dispatch) and show_config (config)."""
