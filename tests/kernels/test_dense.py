"""The dense kernels of every instruction-set level this CPU runs, against float64 NumPy.

Covers ``dense_forward`` (bias and fused ReLU), ``dense_backward`` (regularization, fused ReLU
mask, optional dinputs) and ``gemm_into``, for shapes on both sides of every switch of
kernels/gemm/gemm.pxi (derived from each module's exported MR, NR, KC, MC, NC, PAR_FLOPS, ...;
``plan()`` shows which path and blocks a shape takes), the narrow-output paths (N < NR <= M:
dot products or transposed), empty
dimensions, any input layout, and 1/2/3/all threads (results must be bit-identical across
thread counts and runs). Buffers the caller passes (gemm_into's C, dvalues_masked) sit in
NaN-filled memory with guard zones, so an element left unwritten or a write out of bounds fails
the test.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    ALL_THREADS,
    LAYOUTS,
    LEVELS,
    THREAD_COUNTS,
    Guarded,
    assert_within,
    dot_bound,
    f64,
    kernel_module,
    layout,
)

# (M, K, N) = (samples, n_inputs, n_neurons): out (M, N) = X (M, K) . W (K, N)
# shapes that do not depend on the level; switch_shapes() adds each level's boundaries
SHAPES = [
    (1, 1, 1), (1, 7, 1), (2, 3, 5), (3, 2, 3), (1, 300, 257),
    # primes and odd sizes
    (13, 17, 19), (31, 37, 41), (101, 7, 3), (97, 89, 83), (3, 101, 67),
    # N < NR with M > N: dot products or computed transposed (bias per row of C^T)
    (300, 2, 3), (1000, 64, 3), (50, 300, 1), (7, 5, 6), (33, 3, 2), (15, 1, 14), (600, 30, 10),
    # N < NR with M <= N: not transposed
    (2, 5, 3), (3, 4, 3), (1, 9, 2),
    # larger
    (1000, 300, 77), (300, 784, 128),
    # empty depth, empty batch, no neurons
    (5, 0, 7), (40, 0, 3), (0, 4, 7), (0, 0, 0), (5, 4, 0), (0, 3, 0),
]


def around(v):
    return (v - 1, v, v + 1)


def switch_shapes(k):
    """(M, K, N) shapes on both sides of every switch of kernel module k's GEMM, from the
    constants it exports (test_switch_shapes_straddle_every_switch checks, with plan(), that
    each switch is seen both ways)."""
    MR, NR, VL, KC, MC, NC = k.MR, k.NR, k.VL, k.KC, k.MC, k.NC
    per_chunk = MC // MR * MR                  # rows of one row chunk (whole micro-panels)
    n_par = k.PAR_FLOPS // (2 * 100 * 100)     # 2*M*N*K = PAR_FLOPS at M = K = 100
    return [
        # rows around MR, 2*MR, and DIRECT_B_PANELS * MR (B read in place or packed)
        *[(m, 9, 2 * NR + 1) for m in (*around(MR), *around(2 * MR),
                                       *around(k.DIRECT_B_PANELS * MR))],
        # columns around NR/2 (narrow forms), NR, 2*NR and PACK_PANELS * NR (A packed)
        *[(20, 10, n) for n in (*around(NR // 2), *around(NR), *around(2 * NR),
                                *around(k.PACK_PANELS * NR))],
        # depth around KC and 2*KC (depth blocks)
        *[(17, d, 19) for d in (*around(KC), *around(2 * KC))],
        # columns around NC (groups of B panels one A panel sweeps)
        *[(9, 20, n) for n in around(NC)],
        # rows around one and two row chunks of MC
        *[(m, 12, 40) for m in (*around(per_chunk), *around(2 * per_chunk))],
        # the exact small-depth forward: depth around EXACT_K
        *[(40, d, 33) for d in (1, *around(k.EXACT_K))],
        # dot products: depth around VL, rows around DOT_ROWS
        *[(40, d, 3) for d in (*around(VL), 257)],
        *[(m, 20, 3) for m in around(k.DOT_ROWS)],
        # one thread below PAR_FLOPS = 2*M*N*K, all from it
        *[(100, 100, n) for n in around(n_par)],
    ]


CASES = sorted({(level, shape) for level in LEVELS
                for shape in [*SHAPES, *switch_shapes(kernel_module(level))]})
CASE_IDS = [f"{level}-{m}x{k}x{n}" for level, (m, k, n) in CASES]
MANY = (max(2, ALL_THREADS),)   # bulk tests compare 1 thread with all (at least 2)


def random_problem(rng, m, k, n):
    """X, W, b, G (dvalues) float32 with both signs, some exact zeros, and b nonzero."""
    X = rng.standard_normal((m, k)).astype(np.float32)
    W = (0.1 * rng.standard_normal((k, n))).astype(np.float32)
    b = rng.standard_normal((1, n)).astype(np.float32)
    G = rng.standard_normal((m, n)).astype(np.float32)
    if X.size:
        X.flat[::7] = 0
    if W.size:
        W.flat[::5] = 0
        W.flat[1::11] = -0.0
    return X, W, b, G


def same_for_all_threads(compute, what, counts=MANY):
    """compute(n_threads) -> tuple of arrays (None: not computed), with 1 thread and then each
    of ``counts``; asserts bit-identical results and returns them."""
    first = compute(1)
    for nt in counts:
        for name, a, b in zip(what, first, compute(nt)):
            if a is not None:
                np.testing.assert_array_equal(
                    b, a, err_msg=f"{name}: {nt} threads differ from 1 thread")
    return first


def forward(k, X, W, b, relu, threads=None, counts=MANY):
    """dense_forward, checked across thread counts (or with ``threads`` only)."""
    def compute(nt):
        out = k.dense_forward(X, W, b, relu, nt)
        assert out.shape == (len(X), W.shape[1]) and out.dtype == np.float32
        assert out.flags.c_contiguous and out.flags.writeable
        return (out,)
    if threads is not None:
        return compute(threads)[0]
    return same_for_all_threads(compute, ["output"], counts)[0]


def expected_forward(X, W, b, relu):
    ref = f64(X) @ f64(W) + f64(b)
    bound = dot_bound(X, W, X.shape[1], extra=np.broadcast_to(f64(b), ref.shape))
    return (np.maximum(ref, 0) if relu else ref), bound


def penalty_grad(P, l1, l2):
    """The book's regularization gradient: l1*sign(P) (sign(0) = +1) + 2*l2*P, each only when
    its strength is > 0."""
    P = f64(P)
    grad = np.zeros_like(P)
    if l1 > 0:
        grad += l1 * np.where(P < 0, -1.0, 1.0)
    if l2 > 0:
        grad += 2 * l2 * P
    return grad


def backward(k, X, W, b, G, relu_output=None, dinputs=True, reg=(0, 0, 0, 0), threads=None,
             counts=MANY, masked_buffer=False):
    """dense_backward, checked across thread counts (or with ``threads`` only).
    masked_buffer: pass a guarded dvalues_masked buffer instead of letting the kernel allocate.
    Returns (dweights, dbiases, dinputs or None, dvalues_masked or None)."""
    m, kk, n = len(X), W.shape[0], W.shape[1]

    def compute(nt):
        buf = Guarded((m, n)) if relu_output is not None and masked_buffer else None
        got = k.dense_backward(X, W, b, G, relu_output, None if buf is None else buf.array,
                               *reg, dinputs, nt)
        dW, db, dX, Gm = got
        for name, a, shape in [("dweights", dW, (kk, n)), ("dbiases", db, (1, n)),
                               ("dinputs", dX, (m, kk)), ("dvalues_masked", Gm, (m, n))]:
            if name == "dinputs" and not dinputs or name == "dvalues_masked" and \
                    relu_output is None:
                assert a is None, name
                continue
            assert a.shape == shape and a.dtype == np.float32 and a.flags.c_contiguous, name
        if buf is not None:
            assert Gm is buf.array
            buf.check("dvalues_masked")
        return got
    if threads is not None:
        return compute(threads)
    return same_for_all_threads(
        compute, ("dweights", "dbiases", "dinputs", "dvalues_masked"), counts)


def check_backward(got, X, W, b, G, relu_output=None, reg=(0, 0, 0, 0)):
    dweights, dbiases, dinputs, dvalues_masked = got
    m, n = G.shape
    wl1, wl2, bl1, bl2 = reg
    if relu_output is not None:
        Ge = np.where(f64(relu_output) > 0, f64(G), 0.0)
        np.testing.assert_array_equal(dvalues_masked, Ge.astype(np.float32),
                                      err_msg="dvalues_masked")
    else:
        Ge = f64(G)
    pw, pb = penalty_grad(W, wl1, wl2), penalty_grad(b, bl1, bl2)
    assert_within(dweights, f64(X).T @ Ge + pw, dot_bound(f64(X).T, Ge, m, extra=pw),
                  "dweights")
    assert_within(dbiases, Ge.sum(axis=0, keepdims=True) + pb,
                  dot_bound(np.ones((1, m)), Ge, m, extra=pb), "dbiases")
    if dinputs is not None:
        assert_within(dinputs, Ge @ f64(W).T, dot_bound(Ge, f64(W).T, n), "dinputs")


# ----------------------------------------------------------------------------- forward

@pytest.mark.parametrize("level, shape", CASES, ids=CASE_IDS)
def test_forward_matches_float64(level, shape, rng):
    kernels = kernel_module(level)
    X, W, b, _ = random_problem(rng, *shape)
    for variant, bias, relu in [("plain", 0 * b, False), ("bias", b, False),
                                ("bias+relu", b, True)]:
        out = forward(kernels, X, W, bias, relu, counts=MANY if relu else ())
        ref, bound = expected_forward(X, W, bias, relu)
        assert_within(out, ref, bound, f"{kernels.ISA} {shape} {variant}")
        if relu:
            assert (out >= 0).all()


# output narrower than a vector: dot products along K when X's rows are contiguous and K is at
# least a vector (K = 29), else the transposed product (K = 3, or X without unit column stride)
PATH_SHAPES = [(37, 29, 45), (61, 29, 5), (61, 3, 5)]
PATH_IDS = ["wide", "narrow-K29", "narrow-K3"]


@pytest.mark.parametrize("x_kind", LAYOUTS)
@pytest.mark.parametrize("w_kind", LAYOUTS)
@pytest.mark.parametrize("shape", PATH_SHAPES, ids=PATH_IDS)
def test_forward_any_layout(kernels, shape, x_kind, w_kind, rng):
    X, W, b, _ = random_problem(rng, *shape)
    Xl, Wl = layout(X, x_kind), layout(W, w_kind)
    bl = layout(b, {"C": "C", "F": "sliced", "sliced": "sliced"}.get(x_kind, x_kind))
    before = [a.copy() for a in (Xl, Wl, bl)]
    out = forward(kernels, Xl, Wl, bl, True)
    ref, bound = expected_forward(X, W, b, True)
    assert_within(out, ref, bound, f"{x_kind} X, {w_kind} W")
    for a, a0 in zip((Xl, Wl, bl), before):
        np.testing.assert_array_equal(a, a0, err_msg="an input was modified")


def test_dot_path_columns_equal_columns_alone(kernels, rng):
    """The DOT path (kernels/gemm/narrow.h) computes blocks of 4 rows by 1, 2 or 3 columns (a
    last 3 together) and rows past the last 4 one at a time: every output must come out bit
    for bit as in the product of its column alone (blocks of 1 column), with bias, ReLU, and
    accumulating into C, for every width of the path (2N < NR), rows around 4 and DOT_ROWS,
    and depths with and without a tail past the last whole vector."""
    VL, NR, DR = kernels.VL, kernels.NR, kernels.DOT_ROWS
    for n in range(1, (NR + 1) // 2):
        for m in (n + 1, 5, 6, 7, DR - 1, DR, DR + 1, 2 * DR + 6):
            if m <= n:
                continue
            for k in (VL, VL + 3, 2 * VL + 1):
                assert kernels.plan(m, n, k)["path"] == "dot", (m, n, k)
                X, W, b, C0 = random_problem(rng, m, k, n)
                for relu in (False, True):
                    out = kernels.dense_forward(X, W, b, relu, 1)
                    for j in range(n):
                        col = kernels.dense_forward(X, W[:, j:j + 1], b[:, j:j + 1], relu, 1)
                        np.testing.assert_array_equal(out[:, j:j + 1].view(np.uint32),
                                                      col.view(np.uint32),
                                                      err_msg=f"{(m, k, n)} column {j}")
                C = C0.copy()
                kernels.gemm_into(X, W, C, True, 1)
                for j in range(n):
                    c = C0[:, j:j + 1].copy()
                    kernels.gemm_into(X, W[:, j:j + 1], c, True, 1)
                    np.testing.assert_array_equal(C[:, j:j + 1].view(np.uint32),
                                                  c.view(np.uint32),
                                                  err_msg=f"{(m, k, n)} column {j}, accumulate")


def test_exact_path_is_the_double_sum_rounded_once(kernels, rng):
    """The EXACT path (depth K <= EXACT_K, kernels/gemm/narrow.h) sums each output in double in
    k order and rounds once, then adds the bias (and ReLU): bit for bit the sequential float64
    sum below, for rows computed in pairs and a last odd row, around SMALL_K_ROWS (a task)."""
    S = kernels.SMALL_K_ROWS
    for k in range(1, kernels.EXACT_K + 1):
        for m in (1, 2, 3, 4, 5, S - 1, S, S + 1, 2 * S + 3):
            for n in (1, 3, 8, 33):
                assert kernels.plan(m, n, k, exact=True)["path"] == "exact"
                X, W, b, _ = random_problem(rng, m, k, n)
                X[0, 0] = -0.0
                acc = f64(X[:, :1]) * f64(W[:1])
                for d in range(1, k):
                    acc = acc + f64(X[:, d:d + 1]) * f64(W[d:d + 1])
                ref = (acc.astype(np.float32) + b) + np.float32(0)
                for relu in (False, True):
                    want = np.where(ref < 0, np.float32(0), ref) if relu else ref
                    for threads in (1, 2):
                        out = kernels.dense_forward(X, W, b, relu, threads)
                        np.testing.assert_array_equal(
                            out.view(np.uint32), want.view(np.uint32),
                            err_msg=f"{(m, k, n)}, relu={relu}, {threads} threads")


def test_forward_converts_inputs_of_any_dtype_or_alignment(kernels, rng):
    """inputs (not the parameters) may be any real dtype, unaligned, or broadcast (stride 0):
    the result is that of the float32 values."""
    m, k, n = 50, 33, 40
    X, W, b, _ = random_problem(rng, m, k, n)
    expected = forward(kernels, X, W, b, False, threads=1)
    raw = np.zeros(m * k * 4 + 1, dtype=np.uint8)
    X_unaligned = np.ndarray((m, k), dtype=np.float32, buffer=raw, offset=1)
    X_unaligned[:] = X
    assert not X_unaligned.flags.aligned
    for variant in (X_unaligned, X.astype(np.float64), X.astype(">f4"), X.tolist()):
        np.testing.assert_array_equal(forward(kernels, variant, W, b, False), expected)
    Xi = rng.integers(-5, 5, (m, k))
    np.testing.assert_array_equal(forward(kernels, Xi.astype(np.int16), W, b, False),
                                  forward(kernels, Xi.astype(np.float32), W, b, False))
    X_rows = np.broadcast_to(X[:1], (m, k))
    assert X_rows.strides[0] == 0
    out = forward(kernels, X_rows, W, b, False)
    ref, bound = expected_forward(X_rows, W, b, False)
    assert_within(out, ref, bound, "broadcast inputs")
    np.testing.assert_array_equal(out, np.broadcast_to(out[:1], out.shape))


def test_forward_returns_a_new_array_each_call(kernels, rng):
    X, W, b, _ = random_problem(rng, 20, 5, 7)
    first = kernels.dense_forward(X, W, b, False, 1)
    saved = first.copy()
    second = kernels.dense_forward(2 * X, W, b, False, 1)
    assert second is not first and not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, saved)


@pytest.mark.parametrize("shape", [(9, 6, 40), (40, 20, 3), (40, 2, 3)],
                         ids=["wide", "narrow-dot", "narrow-transposed"])
def test_forward_relu_propagates_nan(kernels, shape, rng):
    """Like np.maximum(0, x), the fused ReLU keeps NaN (a diverged model stays visible)."""
    X, W, b, _ = random_problem(rng, *shape)
    X[2, 1] = np.nan
    out = forward(kernels, X, W, b, True)
    assert np.isnan(out[2]).all()
    assert not np.isnan(np.delete(out, 2, axis=0)).any()


def test_forward_exact_on_small_integers(kernels, rng):
    """Integer data whose sums are exact in float32: the result must be exact, on every path."""
    for m, k, n in [(1, 1, 1), (37, 300, 45), (300, 3, 2), (300, 40, 2), (15, 600, 33)]:
        X = rng.integers(-8, 9, (m, k)).astype(np.float32)
        W = rng.integers(-8, 9, (k, n)).astype(np.float32)
        b = rng.integers(-50, 50, (1, n)).astype(np.float32)
        ref = f64(X) @ f64(W) + b
        np.testing.assert_array_equal(forward(kernels, X, W, b, False), ref)
        np.testing.assert_array_equal(forward(kernels, X, W, b, True), np.maximum(ref, 0))


def test_forward_threads_argument_below_one_means_one(kernels, rng):
    X, W, b, _ = random_problem(rng, 300, 40, 50)
    one = forward(kernels, X, W, b, False, threads=1)
    for nt in (0, -3):
        np.testing.assert_array_equal(forward(kernels, X, W, b, False, threads=nt), one)


# shapes whose work is split differently by each thread count: many row chunks, few rows and
# many B panels (panel groups per thread), the dot-product and transposed narrow paths, wide
# column sums (N > COLS)
PARTITION_SHAPES = [(700, 40, 50), (14, 300, 600), (3000, 40, 3), (3000, 3, 3), (2000, 9, 200),
                    (229, 257, 33)]


@pytest.mark.parametrize("shape", PARTITION_SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in
                                                         PARTITION_SHAPES])
def test_bit_identical_for_any_thread_count(kernels, shape, rng):
    """1, 2, 3, 4, 5 and all threads (all threads twice: run to run): bit-identical forward
    and backward."""
    X, W, b, G = random_problem(rng, *shape)
    counts = [*sorted({*THREAD_COUNTS, 4, 5}), ALL_THREADS]
    out = forward(kernels, X, W, b, True, counts=counts)
    got = backward(kernels, X, W, b, G, relu_output=out, reg=(1e-3, 1e-3, 1e-3, 1e-3),
                   counts=counts)
    check_backward(got, X, W, b, G, relu_output=out, reg=(1e-3, 1e-3, 1e-3, 1e-3))


@pytest.mark.slow
def test_forward_backward_mnist_size():
    """One 8192 x 784 -> 128 layer (an MNIST batch), default kernels, 1 and all threads."""
    rng = np.random.default_rng(7)
    k = kernel_module(LEVELS[-1])
    X, W, b, G = random_problem(rng, 8192, 784, 128)
    out = forward(k, X, W, b, True, threads=1)
    np.testing.assert_array_equal(forward(k, X, W, b, True, threads=ALL_THREADS), out)
    ref, bound = expected_forward(X, W, b, True)
    assert_within(out, ref, bound, "8192x784x128 forward")
    got = backward(k, X, W, b, G, relu_output=out, threads=1)
    for a, c in zip(got, backward(k, X, W, b, G, relu_output=out, threads=ALL_THREADS)):
        np.testing.assert_array_equal(c, a)
    check_backward(got, X, W, b, G, relu_output=out)


@pytest.mark.slow
@pytest.mark.parametrize("level", LEVELS)
def test_gemm_packed_b_larger_than_one_round(level):
    """K x N above BP_MAX = 4M floats of packed B: B is packed in several rounds."""
    rng = np.random.default_rng(3)
    m, k, n = 5, 2 * 1024 + 7, 2100
    A = rng.standard_normal((m, k)).astype(np.float32)
    B = rng.standard_normal((k, n)).astype(np.float32)
    C = Guarded((m, n))
    kernel_module(level).gemm_into(A, B, C.array, False, ALL_THREADS)
    assert_within(C.check("C"), f64(A) @ f64(B), dot_bound(A, B, k), f"{level} gemm")


# ----------------------------------------------------------------------------- backward

BACKWARD_VARIANTS = {
    "plain": dict(),
    "relu+l1l2": dict(relu=True, reg=(1e-3, 5e-4, 2e-3, 1e-3)),
    "l1-only, no dinputs": dict(dinputs=False, reg=(0.01, 0, 0.02, 0)),
    "l2-only, relu": dict(relu=True, reg=(0, 3e-3, 0, 7e-4)),
}


@pytest.mark.parametrize("level, shape", CASES, ids=CASE_IDS)
def test_backward_matches_float64(level, shape, rng):
    kernels = kernel_module(level)
    X, W, b, G = random_problem(rng, *shape)
    for variant, opts in BACKWARD_VARIANTS.items():
        if variant not in ("plain", "relu+l1l2") and np.prod(shape) > 2e6:
            continue   # large shapes: two variants (time)
        Y = None
        if opts.get("relu"):
            Y = np.maximum(rng.standard_normal(G.shape), 0).astype(np.float32)
        reg = opts.get("reg", (0, 0, 0, 0))
        got = backward(kernels, X, W, b, G, relu_output=Y, dinputs=opts.get("dinputs", True),
                       reg=reg, counts=MANY if variant == "relu+l1l2" else ())
        check_backward(got, X, W, b, G, relu_output=Y, reg=reg)


@pytest.mark.parametrize("x_kind", LAYOUTS)
@pytest.mark.parametrize("g_kind", LAYOUTS)
@pytest.mark.parametrize("shape", [(37, 29, 45), (61, 29, 5), (45, 3, 40)],
                         ids=["wide", "narrow-n_out", "narrow-n_in"])
def test_backward_any_layout(kernels, shape, x_kind, g_kind, rng):
    X, W, b, G = random_problem(rng, *shape)
    Y = np.maximum(f64(X) @ f64(W) + b, 0).astype(np.float32)
    reg = (1e-3, 2e-3, 3e-3, 4e-3)
    w_kind = LAYOUTS[(LAYOUTS.index(x_kind) + LAYOUTS.index(g_kind)) % len(LAYOUTS)]
    args = [layout(X, x_kind), layout(W, w_kind), layout(b, "sliced"), layout(G, g_kind),
            layout(Y, x_kind)]
    before = [a.copy() for a in args]
    got = backward(kernels, *args[:4], relu_output=args[4], reg=reg, masked_buffer=True)
    check_backward(got, X, W, b, G, relu_output=Y, reg=reg)
    for a, a0 in zip(args, before):
        np.testing.assert_array_equal(a, a0, err_msg="an input was modified")


def test_backward_regularization_sign_of_zero_is_plus_one(kernels):
    """With dvalues = 0 the gradients are the regularization terms alone, exactly: L1's
    sub-gradient is +1 at 0 and -0.0 (book: ``dL1[weights < 0] = -1``), strengths <= 0 add
    nothing. Power-of-two strengths keep 2*l2*w exact, so equality is exact."""
    W = np.array([[0.0, -0.0, 0.5, -0.5], [1e-30, -1e-30, 3.0, -3.0]], dtype=np.float32)
    b = np.array([[0.0, -0.0, 2.0, -2.0]], dtype=np.float32)
    X = np.ones((3, 2), dtype=np.float32)
    G = np.zeros((3, 4), dtype=np.float32)
    l1, l2 = 0.25, 0.125
    for reg in [(l1, l2, l1, l2), (l1, 0, 0, l2), (0, l2, l1, 0), (-1.0, -1.0, -1.0, -1.0)]:
        dW, db, dX, _ = backward(kernels, X, W, b, G, reg=reg)
        expected_w = penalty_grad(W, reg[0], reg[1])
        expected_b = penalty_grad(b, reg[2], reg[3])
        np.testing.assert_array_equal(dW, expected_w.astype(np.float32), err_msg=str(reg))
        np.testing.assert_array_equal(db, expected_b.astype(np.float32), err_msg=str(reg))
        np.testing.assert_array_equal(dX, np.zeros((3, 2)))
    dW, db, _, _ = backward(kernels, X, W, b, G, reg=(l1, 0, l1, 0))
    np.testing.assert_array_equal(dW[0, :2], [l1, l1])   # +0.0 and -0.0 -> +l1
    np.testing.assert_array_equal(db[0, :2], [l1, l1])


def test_backward_relu_mask_is_output_gt_zero(kernels, rng):
    """dvalues_masked = dvalues where relu_output > 0, else 0 (the book's ReLU backward with
    inputs <= 0 zeroed), and every gradient uses the masked values."""
    m, k, n = 40, 7, 33
    X, W, b, G = random_problem(rng, m, k, n)
    Y = np.maximum(f64(X) @ f64(W) + b, 0).astype(np.float32)
    Y[0, :] = 0.0
    Y[1, :] = -0.0
    Y[2, :5] = np.float32(1e-45)           # smallest subnormal: > 0, passes
    got = backward(kernels, X, W, b, G, relu_output=Y)
    masked = got[3]
    assert (masked[:2] == 0).all()
    np.testing.assert_array_equal(masked[2, :5], G[2, :5])
    check_backward(got, X, W, b, G, relu_output=Y)


def test_backward_empty_batch_gives_regularization_only(kernels, rng):
    _, W, b, _ = random_problem(rng, 1, 6, 9)
    X = np.empty((0, 6), dtype=np.float32)
    G = np.empty((0, 9), dtype=np.float32)
    reg = (0.25, 0.5, 0.125, 0.0)
    dW, db, dX, _ = backward(kernels, X, W, b, G, reg=reg)
    np.testing.assert_array_equal(dW, penalty_grad(W, 0.25, 0.5).astype(np.float32))
    np.testing.assert_array_equal(db, penalty_grad(b, 0.125, 0).astype(np.float32))
    assert dX.shape == (0, 6)
    dW, db, _, _ = backward(kernels, X, W, b, G)
    assert not dW.any() and not db.any()


# ----------------------------------------------------------------------------- gemm_into

GEMM_SHAPES = [(1, 1, 1), (7, 13, 5), (14, 256, 32), (15, 257, 33), (225, 40, 513), (300, 5, 3),
               (3, 300, 5), (0, 5, 4), (4, 0, 5), (4, 5, 0), (100, 100, 10)]


def strided_output(C0):
    """A writable (m, n) view with both strides > 1 into NaN-filled memory, holding C0, and a
    function asserting that nothing outside the view was written."""
    m, n = C0.shape
    big = np.full((2 * m + 1, 3 * n + 2), np.nan, dtype=np.float32)
    view = big[1::2, 1::3][:m, :n]
    view[...] = C0
    outside = np.ones(big.shape, dtype=bool)
    outside[1::2, 1::3][:m, :n] = False

    def untouched():
        assert np.isnan(big[outside]).all(), "gemm_into wrote outside C"
    return view, untouched


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape", GEMM_SHAPES, ids=[f"{m}x{k}x{n}" for m, k, n in GEMM_SHAPES])
def test_gemm_into(kernels, shape, accumulate, rng):
    m, k, n = shape
    A = rng.standard_normal((m, k)).astype(np.float32)
    B = rng.standard_normal((k, n)).astype(np.float32)
    C0 = rng.standard_normal((m, n)).astype(np.float32)
    expected = f64(A) @ f64(B) + (f64(C0) if accumulate else 0)
    bound = dot_bound(A, B, k + accumulate, extra=C0 if accumulate else 0)

    def compute(nt):
        results = []
        for a_kind, b_kind, c_kind in [("C", "C", "C"), ("transposed", "sliced", "F"),
                                       ("negative", "F", "sliced"), ("sliced", "negative", "F")]:
            if c_kind == "C":
                C = Guarded((m, n))
                C.array[...] = C0
                kernels.gemm_into(layout(A, a_kind), layout(B, b_kind), C.array, accumulate, nt)
                results.append(C.check("C").copy())
            elif c_kind == "F":
                C = np.array(C0, order="F", copy=True)
                kernels.gemm_into(layout(A, a_kind), layout(B, b_kind), C, accumulate, nt)
                results.append(C)
            else:
                C, untouched = strided_output(C0)
                kernels.gemm_into(layout(A, a_kind), layout(B, b_kind), C, accumulate, nt)
                untouched()
                results.append(C.copy())
        return results
    for C in same_for_all_threads(compute, ["C", "C (F)", "C (strided)", "C (F)"]):
        assert_within(C, expected, bound, "gemm_into")


# ----------------------------------------------------------------------------- hypothesis

def values(rng, kind, shape):
    """float32 test data of one kind: normal, small integers, rows/columns scaled over six
    decades with exact zeros, or mostly zero."""
    if kind == "normal":
        a = rng.standard_normal(shape)
    elif kind == "integers":
        a = rng.integers(-4, 5, shape)
    elif kind == "scaled":
        a = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape[:1] + (1,))
        a = a * 10.0 ** rng.integers(-3, 4, (1,) + shape[1:])
        a[rng.random(shape) < 0.2] = 0
    else:
        a = rng.standard_normal(shape) * (rng.random(shape) < 0.1)
    return a.astype(np.float32)


dims = st.one_of(st.integers(0, 40), st.sampled_from([63, 64, 65, 223, 225, 257, 300]))
layouts = st.sampled_from(LAYOUTS)
kinds = st.sampled_from(["normal", "integers", "scaled", "sparse"])
strengths = st.sampled_from([0, 0, 1e-4, 5e-4, 0.25, -1e-3])


def small_enough(m, k, n):
    return m * k * n <= 300_000


@pytest.mark.parametrize("level", LEVELS)
@given(m=dims, k=dims, n=dims, x_kind=layouts, w_kind=layouts, data_kind=kinds,
       relu=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_forward_hypothesis(level, m, k, n, x_kind, w_kind, data_kind, relu, seed):
    if not small_enough(m, k, n):
        m = min(m, 40)
    rng = np.random.default_rng(seed)
    X, W, b = (values(rng, data_kind, s) for s in ((m, k), (k, n), (1, n)))
    out = forward(kernel_module(level), layout(X, x_kind), layout(W, w_kind), b, relu)
    ref, bound = expected_forward(X, W, b, relu)
    assert_within(out, ref, bound, f"{level} forward {m}x{k}x{n}")


@pytest.mark.parametrize("level", LEVELS)
@given(m=dims, k=dims, n=dims, x_kind=layouts, g_kind=layouts, data_kind=kinds,
       relu=st.booleans(), want_dinputs=st.booleans(), masked_buffer=st.booleans(),
       reg=st.tuples(strengths, strengths, strengths, strengths), seed=st.integers(0, 2**32 - 1))
def test_backward_hypothesis(level, m, k, n, x_kind, g_kind, data_kind, relu, want_dinputs,
                             masked_buffer, reg, seed):
    if not small_enough(m, k, n):
        m = min(m, 40)
    rng = np.random.default_rng(seed)
    X, W, b, G = (values(rng, data_kind, s) for s in ((m, k), (k, n), (1, n), (m, n)))
    Y = np.maximum(values(rng, "normal", (m, n)), 0) if relu else None
    got = backward(kernel_module(level), layout(X, x_kind), layout(W, g_kind), b,
                   layout(G, g_kind), relu_output=None if Y is None else layout(Y, x_kind),
                   dinputs=want_dinputs, reg=reg, masked_buffer=masked_buffer)
    check_backward(got, X, W, b, G, relu_output=Y, reg=reg)


# ----------------------------------------------------------------------------- argument checks

def odd_strided(shape, byte_strides):
    """A float32 array whose byte strides are not multiples of 4 (a packed structured view)."""
    size = sum(s * (n - 1) for s, n in zip(byte_strides, shape)) + 4
    return np.ndarray(shape, dtype=np.float32, buffer=bytearray(size), strides=byte_strides)


def unaligned(shape):
    raw = np.zeros(int(np.prod(shape)) * 4 + 1, dtype=np.uint8)
    return np.ndarray(shape, dtype=np.float32, buffer=raw, offset=1)


F32 = np.float32
STRIDES = r"expected an aligned array with strides that are multiples of 4 bytes, got strides"


def forward_args():
    return dict(X=np.ones((4, 3), F32), W=np.ones((3, 5), F32), b=np.zeros((1, 5), F32))


@pytest.mark.parametrize("name, replacement, error, message", [
    ("W", np.ones((4, 5), F32), ValueError, r"inputs: expected shape \(N, 4\), got \(4, 3\)"),
    ("X", np.ones((4, 2), F32), ValueError, r"inputs: expected shape \(N, 3\), got \(4, 2\)"),
    ("X", np.ones(3, F32), ValueError, r"inputs: expected a 2-D array, got shape \(3,\)"),
    ("X", np.array([["a", "b", "c"]]), TypeError, r"inputs: expected real numbers"),
    ("b", np.zeros((1, 4), F32), ValueError, r"biases: expected shape \(1, 5\), got \(1, 4\)"),
    ("b", np.zeros((2, 5), F32), ValueError, r"biases: expected shape \(1, 5\), got \(2, 5\)"),
    ("b", np.zeros(5, F32), ValueError, r"biases: expected a 2-D array, got shape \(5,\)"),
    ("W", np.ones((3, 5, 1), F32), ValueError, r"weights: expected a 2-D array"),
    ("W", np.ones((3, 5)), TypeError, r"weights: expected a native float32 array, got dtype "
                                      r"float64"),
    ("W", np.ones((3, 5), ">f4"), TypeError, r"weights: expected a native float32 array"),
    ("W", [[1.0] * 5] * 3, TypeError, r"weights: expected a numpy.ndarray, got list"),
    ("b", np.zeros((1, 5), np.float16), TypeError, r"biases: expected a native float32"),
    ("W", odd_strided((3, 5), (21, 4)), ValueError, rf"weights: {STRIDES} \(21, 4\)"),
    ("W", odd_strided((3, 5), (24, 6)), ValueError, rf"weights: {STRIDES} \(24, 6\)"),
    ("W", unaligned((3, 5)), ValueError, rf"weights: {STRIDES} \(20, 4\)"),
    ("b", odd_strided((1, 5), (20, 5)), ValueError, rf"biases: {STRIDES} \(20, 5\)"),
])
def test_forward_argument_errors_name_the_argument(kernels, name, replacement, error, message):
    args = forward_args()
    args[name] = replacement
    with pytest.raises(error, match=message):
        kernels.dense_forward(args["X"], args["W"], args["b"], False, 1)


def backward_args():
    return dict(X=np.ones((4, 3), F32), W=np.ones((3, 5), F32), b=np.zeros((1, 5), F32),
                G=np.ones((4, 5), F32), Y=np.ones((4, 5), F32), Gm=np.empty((4, 5), F32))


def readonly(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("name, replacement, error, message", [
    ("W", np.ones((2, 5), F32), ValueError, r"inputs: expected shape \(N, 2\), got \(4, 3\)"),
    ("b", np.zeros((1, 4), F32), ValueError, r"biases: expected shape \(1, 5\), got \(1, 4\)"),
    ("G", np.ones((5, 5), F32), ValueError, r"dvalues: expected shape \(4, 5\), got \(5, 5\)"),
    ("G", np.ones((4, 6), F32), ValueError, r"dvalues: expected shape \(4, 5\), got \(4, 6\)"),
    ("G", np.array([["x"] * 5] * 4), TypeError, r"dvalues: expected real numbers"),
    ("Y", np.ones((4, 4), F32), ValueError,
     r"relu_output: expected shape \(4, 5\), got \(4, 4\)"),
    ("Y", np.ones((4, 5)), TypeError, r"relu_output: expected a native float32 array"),
    ("Y", odd_strided((4, 5), (4, 17)), ValueError, rf"relu_output: {STRIDES} \(4, 17\)"),
    ("Gm", np.empty((4, 4), F32), ValueError,
     r"dvalues_masked: expected shape \(4, 5\), got \(4, 4\)"),
    ("Gm", np.empty((5, 4), F32).T, ValueError, r"dvalues_masked: expected a C-contiguous"),
    ("Gm", readonly(np.empty((4, 5), F32)), ValueError, r"dvalues_masked: expected a writable"),
    ("Gm", np.empty((4, 5)), TypeError, r"dvalues_masked: expected a native float32 array"),
    ("W", odd_strided((3, 5), (22, 4)), ValueError, rf"weights: {STRIDES} \(22, 4\)"),
    ("b", odd_strided((1, 5), (20, 5)), ValueError, rf"biases: {STRIDES} \(20, 5\)"),
])
def test_backward_argument_errors_name_the_argument(kernels, name, replacement, error,
                                                    message):
    args = backward_args()
    args[name] = replacement
    with pytest.raises(error, match=message):
        kernels.dense_backward(args["X"], args["W"], args["b"], args["G"], args["Y"],
                               args["Gm"], 0, 0, 0, 0, True, 1)


def test_backward_converts_inputs_and_dvalues(kernels, rng):
    """Like dense_forward, inputs and dvalues of another dtype/alignment/stride are converted."""
    X, W, b, G = random_problem(rng, 30, 7, 9)
    expected = backward(kernels, X, W, b, G, threads=1)
    for Xv, Gv in [(X.astype(np.float64), G.tolist()), (odd_strided_copy(X), unaligned_copy(G))]:
        for a, c in zip(backward(kernels, Xv, W, b, Gv, threads=1), expected):
            if c is not None:
                np.testing.assert_array_equal(a, c)


def odd_strided_copy(a):
    out = odd_strided(a.shape, (4 * a.shape[1] + 2, 4))
    out[...] = a
    return out


def unaligned_copy(a):
    out = unaligned(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("name, replacement, message", [
    ("B", np.ones((4, 5), F32), r"B: expected shape \(3, N\), got \(4, 5\)"),
    ("C", np.empty((4, 4), F32), r"C: expected shape \(4, 5\), got \(4, 4\)"),
    ("C", np.empty((5, 5), F32), r"C: expected shape \(4, 5\), got \(5, 5\)"),
    ("C", readonly(np.empty((4, 5), F32)), r"C: expected a writable array"),
    ("A", odd_strided((4, 3), (15, 4)), rf"A: {STRIDES} \(15, 4\)"),
    ("B", odd_strided((3, 5), (20, 2)), rf"B: {STRIDES} \(20, 2\)"),
    ("C", unaligned((4, 5)), rf"C: {STRIDES} \(20, 4\)"),
])
def test_gemm_into_argument_errors_name_the_argument(kernels, name, replacement, message):
    args = dict(A=np.ones((4, 3), F32), B=np.ones((3, 5), F32), C=np.empty((4, 5), F32))
    args[name] = replacement
    with pytest.raises(ValueError, match=message):
        kernels.gemm_into(args["A"], args["B"], args["C"])


def test_kernel_modules_report_their_isa():
    expected = {"baseline": {"sse2", "neon", "scalar"}, "avx2": {"avx2"}, "avx512": {"avx512"}}
    for level in LEVELS:
        k = kernel_module(level)
        assert k.ISA in expected[level], (level, k.ISA)
        assert k.NR % k.VL == 0 and 1 <= k.MR <= 14 and k.MC >= k.MR, (level, k.MR, k.NR)
        assert isinstance(k.COMPILER, str) and k.COMPILER


# ----------------------------------------------------------------------------- plan()

def switches(p):
    """The yes/no decisions of a plan (kernels/gemm/gemm.pxi's plan_gemm)."""
    blocked = p["path"] == "blocked"
    return {
        "exact": p["path"] == "exact", "dot": p["path"] == "dot",
        "transposed": p["transposed"], "threads": p["n_threads"] > 1,
        "depth blocks": blocked and p["n_kblocks"] > 1,
        "row chunks": blocked and p["n_row_chunks"] > 1,
        "panel groups over NC": blocked and p["n_bpanels"] > max(1, p["NC"] // p["NR"]),
        "pack A": blocked and p["pack_a"], "B in place": blocked and p["direct_b"],
        "several A micro-panels": blocked and p["n_apanels"] > 1,
    }


@pytest.mark.parametrize("level", LEVELS)
def test_switch_shapes_straddle_every_switch(level):
    """Each decision of plan_gemm is taken both ways by the shapes the tests above run
    (forward: exact, all threads; dW and dX: the backward's products)."""
    k = kernel_module(level)
    seen = {}
    for m, d, n in switch_shapes(k):
        for M, N, K, exact in [(m, n, d, True), (d, n, m, False), (m, d, n, False)]:
            p = dict(k.plan(M, N, K, ALL_THREADS if ALL_THREADS > 1 else 2, exact),
                     NC=k.NC, NR=k.NR)
            for name, value in switches(p).items():
                seen.setdefault(name, set()).add(value)
    missing = [name for name, values in seen.items() if values != {False, True}]
    assert not missing, f"{level}: no shape on both sides of {missing}"


@pytest.mark.parametrize("level", LEVELS)
def test_plan_picks_the_path(level):
    k = kernel_module(level)
    NR, VL, E = k.NR, k.VL, k.EXACT_K
    narrow = (NR - 1) // 2                        # 2N < NR
    # the exact small-depth form: forward only, 0 < K <= EXACT_K
    assert k.plan(100, 64, E, exact=True)["path"] == "exact"
    assert k.plan(100, 64, 1, exact=True)["path"] == "exact"
    assert k.plan(100, 64, E + 1, exact=True)["path"] == "blocked"
    assert k.plan(100, 64, E)["path"] == "blocked"
    assert k.plan(100, 64, 0, exact=True)["path"] == "blocked"
    # narrow outputs: dot products when A's rows are contiguous and K >= VL ...
    assert k.plan(100, narrow, VL)["path"] == "dot"
    p = k.plan(100, narrow, VL - 1)                         # K < VL: transposed
    assert (p["path"], p["transposed"], p["M"], p["N"]) == ("blocked", True, narrow, 100)
    p = k.plan(100, narrow, VL, a_strides=(1, 100))         # F-ordered A: transposed
    assert (p["path"], p["transposed"], p["M"], p["N"]) == ("blocked", True, narrow, 100)
    # ... else, or when 2N >= NR or M <= N, the blocked path as it is
    for M, N in [(100, NR // 2 + NR % 2), (narrow, narrow), (3, narrow)]:
        p = k.plan(M, N, 50)
        assert (p["path"], p["transposed"]) == ("blocked", False), (M, N)
    # empty products
    assert k.plan(0, 5, 3)["path"] == k.plan(5, 0, 3)["path"] == "empty"
    # an exact forward whose C has no contiguous rows is done transposed
    p = k.plan(10, 7, 2, exact=True, c_strides=(1, 10))
    assert (p["path"], p["transposed"], p["M"], p["N"]) == ("exact", True, 7, 10)


@pytest.mark.parametrize("level", LEVELS)
def test_plan_threads_from_par_flops(level):
    """One thread under PAR_FLOPS = 2*M*N*K, n_threads from it, on every path."""
    k = kernel_module(level)
    n = k.PAR_FLOPS // (2 * 100 * 100)
    assert [k.plan(100, c, 100, 4)["n_threads"] for c in around(n)] == [1, 4, 4]
    assert k.plan(100, n, 100, 1)["n_threads"] == 1
    # dot path: M*N*K with N = 3
    m = -(-k.PAR_FLOPS // (2 * 3 * 100))           # the fewest rows at PAR_FLOPS
    assert [k.plan(r, 3, 100, 4)["n_threads"] for r in (m - 1, m)] == [1, 4]
    assert k.plan(m, 3, 100, 4)["path"] == "dot"
    # exact path: 8*M*N flops
    r = -(-k.PAR_FLOPS // (8 * 100))
    assert [k.plan(q, 100, 2, 4, exact=True)["n_threads"] for q in (r - 1, r)] == [1, 4]


@pytest.mark.parametrize("level", LEVELS)
def test_plan_blocks(level):
    k = kernel_module(level)
    MR, NR, KC, MC = k.MR, k.NR, k.KC, k.MC
    # depth: balanced blocks of at most KC
    blocks = [(k.plan(50, 64, d)["n_kblocks"], k.plan(50, 64, d)["kc"])
              for d in (KC, KC + 1, 2 * KC + 1)]
    assert blocks == [(1, KC), (2, (KC + 2) // 2), (3, (2 * KC + 3) // 3)]
    # rows: chunks of at most MC rows (whole micro-panels), on one thread
    per_chunk = MC // MR * MR
    assert [k.plan(m, 64, 30)["n_row_chunks"] for m in (per_chunk, per_chunk + 1)] == [1, 2]
    for m in (per_chunk + 1, 5 * per_chunk + 7):
        p = k.plan(m, 64, 30)
        assert p["chunk_rows"] <= per_chunk and p["n_apanels"] == -(-m // MR)
    # threads: at least one task per thread (row chunks, then B panel groups)
    p = k.plan(2000, 600, 300, 4)
    assert p["n_row_chunks"] % 4 == 0 and p["n_tasks"] == p["n_row_chunks"]
    p = k.plan(MR, 600, 300, 4)
    assert p["n_row_chunks"] == 1 and p["n_col_groups"] == 4 == p["n_tasks"]
    assert p["panels_per_group"] * 4 >= p["n_bpanels"] == -(-600 // NR)
    # A packed when more than PACK_PANELS B micro-panels reuse it (or no stride is 1)
    edge = k.PACK_PANELS * NR
    assert [k.plan(50, n, 30)["pack_a"] for n in (edge, edge + 1)] == [False, True]
    assert k.plan(50, 20, 30, a_strides=(60, 2))["pack_a"]
    # B read in place when at most DIRECT_B_PANELS A micro-panels reuse it and rows are contiguous
    edge = k.DIRECT_B_PANELS * MR
    assert [k.plan(m, 64, 30)["direct_b"] for m in (edge, edge + 1)] == [True, False]
    assert not k.plan(edge, 64, 30, b_strides=(1, 30))["direct_b"]
    # packed B held at once: at most BP_MAX floats (several rounds beyond)
    p = k.plan(5, 2100, 2 * 1024 + 7)
    assert p["kblocks_per_round"] * p["kc"] * p["n_cols_padded"] <= k.BP_MAX
    assert p["kblocks_per_round"] < p["n_kblocks"]


def test_plan_rejects_bad_thread_counts():
    with pytest.raises(ValueError, match=r"n_threads: expected an int >= 1, got 0"):
        kernel_module(LEVELS[0]).plan(5, 5, 5, 0)
