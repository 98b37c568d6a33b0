"""The compiled kernels: element-wise entry points (activations, losses, dropout,
optimizers), their shared row routines (rows.pxd), typed views and argument checks
(arrays.pxd), the one place that goes parallel (parallel.pxd), and the GEMM (gemm/)."""
