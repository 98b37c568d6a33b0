"""The dense kernels of every instruction-set level this CPU runs, against float64 NumPy.

Covers ``dense_forward`` (bias and fused ReLU), ``dense_backward`` (regularization, fused ReLU
mask, optional dinputs) and ``gemm_into``, for shapes on both sides of every blocking constant
of _dense.pxi, the transposed path (N < NR <= M), empty dimensions, any input layout, and
1/2/3/all threads (results must be bit-identical across thread counts and runs).
Outputs are NaN-filled buffers with guard zones, so an element left unwritten or a write out of
bounds fails the test.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    ALL_THREADS, LAYOUTS, LEVELS, THREAD_COUNTS, TILES, Guarded, assert_within,
    dot_bound, f64, kernel_module, layout)

# (M, K, N) = (samples, n_inputs, n_neurons): out (M, N) = X (M, K) . W (K, N)
SHAPES = [
    (1, 1, 1), (1, 7, 1), (2, 3, 5), (3, 2, 3), (1, 300, 257),
    # primes and odd sizes
    (13, 17, 19), (31, 37, 41), (101, 7, 3), (97, 89, 83), (3, 101, 67),
    # rows around MR of each level (6: sse2/avx2, 14: avx512) and multiples
    *[(m, 9, 33) for m in (5, 6, 7, 11, 12, 13, 14, 15, 27, 28, 29)],
    # columns around NR (8: sse2, 16: avx2, 32: avx512) and multiples
    *[(20, 10, n) for n in (7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 97)],
    # depth around KC = 256 and 2*KC
    *[(17, k, 19) for k in (255, 256, 257, 511, 512, 513)],
    # columns around NB = 512
    *[(9, 20, n) for n in (511, 512, 513, 1025)],
    # rows around MB = 224 (222 = 37*6 for MR 6) and 2*MB; above PAR_FLOPS
    *[(m, 12, 40) for m in (221, 222, 223, 224, 225, 447, 448, 449)],
    # both sides of PAR_FLOPS = 200000 = 2*M*N*K
    (10, 100, 99), (10, 100, 100), (10, 100, 101), (50, 40, 49), (50, 40, 50),
    # N < NR with M > N: computed transposed (bias per row of C^T)
    (300, 2, 3), (1000, 64, 3), (50, 300, 1), (7, 5, 6), (33, 3, 2), (15, 1, 14), (600, 30, 10),
    # N < NR with M <= N: not transposed
    (2, 5, 3), (3, 4, 3), (1, 9, 2),
    # larger
    (1000, 300, 77), (300, 784, 128),
    # empty depth, empty batch, no neurons
    (5, 0, 7), (40, 0, 3), (0, 4, 7), (0, 0, 0), (5, 4, 0), (0, 3, 0),
]
SHAPE_IDS = [f"{m}x{k}x{n}" for m, k, n in SHAPES]
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
    """dense_forward into a guarded buffer, checked across thread counts (or with
    ``threads`` only)."""
    def compute(nt):
        out = Guarded((X.shape[0], W.shape[1]))
        k.dense_forward(X, W, b, out.array, relu, nt)
        return (out.check("output").copy(),)
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
             counts=MANY):
    """dense_backward into guarded buffers, checked across thread counts.
    Returns (dweights, dbiases, dinputs or None, dvalues_masked or None)."""
    m, kk, n = X.shape[0], X.shape[1], W.shape[1]

    def compute(nt):
        bufs = {"dweights": Guarded((kk, n)), "dbiases": Guarded((1, n))}
        if dinputs:
            bufs["dinputs"] = Guarded((m, kk))
        if relu_output is not None:
            bufs["dvalues_masked"] = Guarded((m, n))
        arr = {name: g.array for name, g in bufs.items()}
        k.dense_backward(X, W, b, G, arr["dweights"], arr["dbiases"], arr.get("dinputs"),
                         relu_output, arr.get("dvalues_masked"), *reg, nt)
        return tuple(bufs[name].check(name).copy() if name in bufs else None
                     for name in ("dweights", "dbiases", "dinputs", "dvalues_masked"))
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

@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_forward_matches_float64(kernels, shape, rng):
    X, W, b, _ = random_problem(rng, *shape)
    for variant, bias, relu in [("plain", 0 * b, False), ("bias", b, False),
                                ("bias+relu", b, True)]:
        out = forward(kernels, X, W, bias, relu, counts=MANY if relu else ())
        ref, bound = expected_forward(X, W, bias, relu)
        assert_within(out, ref, bound, f"{kernels.ISA} {shape} {variant}")
        if relu:
            assert (out >= 0).all()


@pytest.mark.parametrize("x_kind", LAYOUTS)
@pytest.mark.parametrize("w_kind", LAYOUTS)
@pytest.mark.parametrize("shape", [(37, 29, 45), (61, 29, 5)], ids=["normal", "transposed"])
def test_forward_any_layout(kernels, shape, x_kind, w_kind, rng):
    X, W, b, _ = random_problem(rng, *shape)
    Xl, Wl = layout(X, x_kind), layout(W, w_kind)
    bl = layout(b, {"C": "C", "F": "sliced", "sliced": "sliced"}.get(x_kind, x_kind))
    before = [a.copy() for a in (Xl, Wl, bl)]
    out = forward(kernels, Xl, Wl, bl, True, threads=MANY[0])
    ref, bound = expected_forward(X, W, b, True)
    assert_within(out, ref, bound, f"{x_kind} X, {w_kind} W")
    # bit-identical to contiguous inputs on one thread: layout and threads change no result
    np.testing.assert_array_equal(out, forward(kernels, X, W, b, True, threads=1))
    for a, a0 in zip((Xl, Wl, bl), before):
        np.testing.assert_array_equal(a, a0, err_msg="an input was modified")


def test_forward_broadcast_and_unaligned_inputs(kernels, rng):
    """Zero strides (np.broadcast_to) and float data at an odd byte address."""
    m, k, n = 50, 33, 40
    row = rng.standard_normal((1, k)).astype(np.float32)
    X = np.broadcast_to(row, (m, k))
    assert X.strides[0] == 0
    raw = np.zeros(k * n * 4 + 1, dtype=np.uint8)
    W = np.ndarray((k, n), dtype=np.float32, buffer=raw, offset=1)
    W[:] = rng.standard_normal((k, n))
    assert not W.flags.aligned
    b = rng.standard_normal((1, n)).astype(np.float32)
    out = forward(kernels, X, W, b, False)
    ref, bound = expected_forward(X, W, b, False)
    assert_within(out, ref, bound, "broadcast X, unaligned W")
    np.testing.assert_array_equal(out, np.broadcast_to(out[:1], out.shape))


@pytest.mark.parametrize("shape", [(9, 6, 40), (40, 6, 3)], ids=["normal", "transposed"])
def test_forward_relu_propagates_nan(kernels, shape, rng):
    """Like np.maximum(0, x), the fused ReLU keeps NaN (a diverged model stays visible)."""
    X, W, b, _ = random_problem(rng, *shape)
    X[2, 3] = np.nan
    out = forward(kernels, X, W, b, True)
    assert np.isnan(out[2]).all()
    assert not np.isnan(np.delete(out, 2, axis=0)).any()


def test_forward_exact_on_small_integers(kernels, rng):
    """Integer data whose sums are exact in float32: the result must be exact, on every path."""
    for m, k, n in [(1, 1, 1), (37, 300, 45), (300, 3, 2), (15, 600, 33)]:
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
# many B panels (panel groups per thread), the transposed path, wide column sums (N > COLS)
PARTITION_SHAPES = [(700, 40, 50), (14, 300, 600), (3000, 20, 3), (2000, 9, 200), (229, 257, 33)]


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


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_backward_matches_float64(kernels, shape, rng):
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
                         ids=["normal", "dX-transposed", "dW-transposed"])
def test_backward_any_layout(kernels, shape, x_kind, g_kind, rng):
    X, W, b, G = random_problem(rng, *shape)
    Y = np.maximum(f64(X) @ f64(W) + b, 0).astype(np.float32)
    reg = (1e-3, 2e-3, 3e-3, 4e-3)
    w_kind = LAYOUTS[(LAYOUTS.index(x_kind) + LAYOUTS.index(g_kind)) % len(LAYOUTS)]
    args = [layout(X, x_kind), layout(W, w_kind), layout(b, "sliced"), layout(G, g_kind),
            layout(Y, x_kind)]
    before = [a.copy() for a in args]
    got = backward(kernels, *args[:4], relu_output=args[4], reg=reg, threads=MANY[0])
    check_backward(got, X, W, b, G, relu_output=Y, reg=reg)
    # bit-identical to contiguous inputs on one thread: layout and threads change no result
    contiguous = backward(kernels, X, W, b, G, relu_output=Y, reg=reg, threads=1)
    for a, c in zip(got, contiguous):
        np.testing.assert_array_equal(a, c)
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
        for a_kind, b_kind in [("C", "C"), ("transposed", "sliced"), ("negative", "F")]:
            C = Guarded((m, n))
            C.array[...] = C0
            kernels.gemm_into(layout(A, a_kind), layout(B, b_kind), C.array, accumulate, nt)
            results.append(C.check("C").copy())
        return results
    results = same_for_all_threads(compute, ["C", "C (A^T, sliced B)", "C (negative, F)"])
    for C in results:
        assert_within(C, expected, bound, "gemm_into")
        np.testing.assert_array_equal(C, results[0])


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
       relu=st.booleans(), want_dinputs=st.booleans(),
       reg=st.tuples(strengths, strengths, strengths, strengths), seed=st.integers(0, 2**32 - 1))
def test_backward_hypothesis(level, m, k, n, x_kind, g_kind, data_kind, relu, want_dinputs, reg,
                             seed):
    if not small_enough(m, k, n):
        m = min(m, 40)
    rng = np.random.default_rng(seed)
    X, W, b, G = (values(rng, data_kind, s) for s in ((m, k), (k, n), (1, n), (m, n)))
    Y = np.maximum(values(rng, "normal", (m, n)), 0) if relu else None
    got = backward(kernel_module(level), layout(X, x_kind), layout(W, g_kind), b,
                   layout(G, g_kind), relu_output=None if Y is None else layout(Y, x_kind),
                   dinputs=want_dinputs, reg=reg)
    check_backward(got, X, W, b, G, relu_output=Y, reg=reg)


# ----------------------------------------------------------------------------- argument checks

def odd_strided(shape, byte_strides):
    """A float32 array whose byte strides are not multiples of 4 (a packed structured view)."""
    size = sum(s * (n - 1) for s, n in zip(byte_strides, shape)) + 4
    return np.ndarray(shape, dtype=np.float32, buffer=bytearray(size), strides=byte_strides)


def forward_args(m=4, k=3, n=5):
    f = np.float32
    return dict(X=np.ones((m, k), f), W=np.ones((k, n), f), b=np.zeros((1, n), f),
                out=np.empty((m, n), f))


@pytest.mark.parametrize("name, replacement, message", [
    ("W", np.ones((4, 5), np.float32), r"weights: expected shape \(3, 5\), got \(4, 5\)"),
    ("b", np.zeros((5,), np.float32)[None, :4], r"biases: expected shape \(1, 5\), got \(1, 4\)"),
    ("b", np.zeros((2, 5), np.float32), r"biases: expected shape \(1, 5\), got \(2, 5\)"),
    ("out", np.empty((4, 6), np.float32), r"output: expected shape \(4, 5\), got \(4, 6\)"),
    ("out", np.empty((3, 5), np.float32), r"output: expected shape \(4, 5\), got \(3, 5\)"),
    ("X", odd_strided((4, 3), (13, 4)), r"inputs: strides must be multiples of 4 bytes, got 13"),
    ("W", odd_strided((3, 5), (21, 4)), r"weights: strides must be multiples of 4 bytes"),
    ("W", odd_strided((3, 5), (24, 6)), r"weights: strides must be multiples of 4 bytes, got 6"),
])
def test_forward_argument_errors_name_the_argument(kernels, name, replacement, message):
    args = forward_args()
    args[name] = replacement
    with pytest.raises(ValueError, match=message):
        kernels.dense_forward(args["X"], args["W"], args["b"], args["out"], False, 1)


def test_forward_rejects_wrong_dtype_and_noncontiguous_output(kernels):
    args = forward_args()
    with pytest.raises(ValueError):
        kernels.dense_forward(args["X"].astype(np.float64), args["W"], args["b"], args["out"])
    with pytest.raises(ValueError):
        kernels.dense_forward(args["X"], args["W"], args["b"], np.empty((5, 4), np.float32).T)
    with pytest.raises(ValueError):   # output must be writeable
        out = args["out"]
        out.flags.writeable = False
        kernels.dense_forward(args["X"], args["W"], args["b"], out)


def backward_args(m=4, k=3, n=5):
    f = np.float32
    return dict(X=np.ones((m, k), f), W=np.ones((k, n), f), b=np.zeros((1, n), f),
                G=np.ones((m, n), f), dW=np.empty((k, n), f), db=np.empty((1, n), f),
                dX=np.empty((m, k), f), Y=np.ones((m, n), f), Gm=np.empty((m, n), f))


@pytest.mark.parametrize("name, replacement, message", [
    ("W", np.ones((2, 5), np.float32), r"weights: expected shape \(3, 5\), got \(2, 5\)"),
    ("b", np.zeros((1, 4), np.float32), r"biases: expected shape \(1, 5\), got \(1, 4\)"),
    ("G", np.ones((5, 5), np.float32), r"dvalues: expected shape \(4, 5\), got \(5, 5\)"),
    ("dW", np.empty((5, 3), np.float32), r"dweights: expected shape \(3, 5\), got \(5, 3\)"),
    ("db", np.empty((5, 1), np.float32), r"dbiases: expected shape \(1, 5\), got \(5, 1\)"),
    ("dX", np.empty((4, 4), np.float32), r"dinputs: expected shape \(4, 3\), got \(4, 4\)"),
    ("Y", np.ones((4, 4), np.float32), r"relu_output: expected shape \(4, 5\), got \(4, 4\)"),
    ("Gm", np.empty((4, 4), np.float32),
     r"dvalues_masked: expected shape \(4, 5\), got \(4, 4\)"),
    ("Gm", None, r"dvalues_masked"),
    ("X", odd_strided((4, 3), (14, 4)), r"inputs: strides must be multiples of 4 bytes, got 14"),
    ("W", odd_strided((3, 5), (22, 4)), r"weights: strides must be multiples of 4 bytes"),
    ("b", odd_strided((1, 5), (20, 5)), r"biases: strides must be multiples of 4 bytes, got 5"),
    ("G", odd_strided((4, 5), (21, 4)), r"dvalues: strides must be multiples of 4 bytes"),
    ("Y", odd_strided((4, 5), (4, 17)), r"relu_output: strides must be multiples of 4 bytes"),
])
def test_backward_argument_errors_name_the_argument(kernels, name, replacement, message):
    args = backward_args()
    args[name] = replacement
    with pytest.raises(ValueError, match=message):
        kernels.dense_backward(args["X"], args["W"], args["b"], args["G"], args["dW"],
                               args["db"], args["dX"], args["Y"], args["Gm"], 0, 0, 0, 0, 1)


@pytest.mark.parametrize("name, replacement, message", [
    ("B", np.ones((4, 5), np.float32), r"B: expected shape \(3, 5\), got \(4, 5\)"),
    ("C", np.empty((4, 4), np.float32), r"C: expected shape \(4, 5\), got \(4, 4\)"),
    ("A", odd_strided((4, 3), (15, 4)), r"A: strides must be multiples of 4 bytes, got 15"),
    ("B", odd_strided((3, 5), (20, 2)), r"B: strides must be multiples of 4 bytes, got 2"),
])
def test_gemm_into_argument_errors_name_the_argument(kernels, name, replacement, message):
    f = np.float32
    args = dict(A=np.ones((4, 3), f), B=np.ones((3, 5), f), C=np.empty((4, 5), f))
    args[name] = replacement
    with pytest.raises(ValueError, match=message):
        kernels.gemm_into(args["A"], args["B"], args["C"])


def test_kernel_modules_report_their_isa():
    expected = {"baseline": {"sse2", "neon", "scalar"}, "avx2": {"avx2"}, "avx512": {"avx512"}}
    for level in LEVELS:
        k = kernel_module(level)
        assert k.ISA in expected[level], (level, k.ISA)
        assert k.ISA in TILES
        assert isinstance(k.COMPILER, str) and k.COMPILER
