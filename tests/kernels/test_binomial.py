"""_dropout.dropout_forward_rng, the book's dropout draws made natively, against NumPy's own
``np.random.binomial(1, keep, size)`` on the global legacy RandomState: the same draws and the
same RNG state afterwards for many seeds, keep probabilities and shapes, interleaved with other
draws and at every position of the MT19937 block; uniforms placed on the sampler's thresholds
and in its rare resampling branch; the binomial cache RandomState shares with multinomial;
another bit generator; the fallbacks to NumPy's call; errors before drawing; and a consistent
RNG for another thread drawing at the same time. Every test runs once per target the draws'
loops are compiled for here (kernels/dropout_targets.h: baseline, and AVX2 where available)."""
import math
import threading
from functools import partial

import numpy as np
import pytest
from test_dropout import rng_state

from conftest import every_loop_target
from nnfs_fast.kernels import dropout as _dropout

KEEPS = [0.5, 0.1, 0.3, 0.49999999, 0.50000001, 0.7, 0.9, 1.0, 1e-12, 1 - 1e-12]
SHAPES = [(1, 1), (7, 13), (1, 625), (300, 64), (3000, 256), (0, 4), (5,), (2, 3, 4)]
MAX_U = 1 - 2.0 ** -53          # the largest uniform next_double can return


DEFAULT_TARGET = _dropout.target()      # as the module chose it at import


target = every_loop_target(_dropout)      # every test on each target of the draws' loops


def native_draws(keep, shape):
    """The draws dropout_forward_rng makes for ``keep``, read back from its mask."""
    X = np.ones(shape, np.float32)
    mask, output = _dropout.dropout_forward_rng(X, keep)
    assert mask.dtype == np.float32 and mask.shape == shape and output.shape == shape
    assert np.isin(mask, [0, np.float32(1 / keep)]).all()
    np.testing.assert_array_equal(output, mask)
    return (mask != 0).astype(np.int64)


def assert_same_as_numpy(keep, shape, prepare):
    """Run from ``prepare()`` (which sets up the global RNG) NumPy's call, then ours: the
    same draws and the same state afterwards."""
    prepare()
    expected = np.random.binomial(1, keep, size=shape)
    after = rng_state()
    prepare()
    got = native_draws(keep, shape)
    assert rng_state() == after
    np.testing.assert_array_equal(got, expected)
    return expected


@pytest.mark.parametrize("keep", KEEPS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_same_draws_and_state_as_numpy(keep, shape):
    for seed in (0, 1, 123, 2**32 - 1):
        assert_same_as_numpy(keep, shape, partial(np.random.seed, seed))


@pytest.mark.parametrize("seed", range(40))
def test_many_seeds_and_random_keeps(seed):
    keep = 1 - np.random.default_rng(seed).random()       # in (0, 1]
    assert_same_as_numpy(keep, (37, 11), lambda: np.random.seed(seed))


def test_interleaved_with_other_draws():
    """Gaussians (with their cached second value), 32-bit draws (an odd position in the
    MT19937 block), other binomials, a shuffle: each dropout mask is NumPy's."""
    def run(draw):
        np.random.seed(42)
        out = []
        for i, keep in enumerate([0.9, 0.5, 0.3, 0.9, 1.0, 0.7]):
            out.append(np.random.randn(3 + i))
            out.append(np.random.randint(0, 1000, size=i + 1, dtype=np.uint32))
            out.append(draw(keep, (41 + 97 * i, 3)))
            out.append(np.random.binomial(5, 0.2, size=4))
            values = np.arange(10)
            np.random.shuffle(values)
            out.append(values)
        return out, rng_state()

    expected, state = run(lambda keep, shape: np.random.binomial(1, keep, size=shape))
    got, got_state = run(native_draws)
    assert got_state == state
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("pos", [0, 1, 311, 620, 621, 622, 623, 624])
@pytest.mark.parametrize("keep", [0.9, 0.3])
def test_every_position_in_the_mt19937_block(pos, keep):
    """The two 32-bit words of a uniform can straddle the regeneration of the 624-word block."""
    np.random.seed(7)
    key = np.random.get_state()[1]
    for shape in [(1,), (2,), (312,), (313,), (1000,)]:
        assert_same_as_numpy(keep, shape,
                             lambda: np.random.set_state(("MT19937", key, pos, 0, 0.0)))


# Uniforms placed where the sampler decides -------------------------------------------------

def _temper(y):
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    return (y ^ (y >> 18)) & 0xFFFFFFFF


def _untemper(y):
    y ^= y >> 18
    y ^= (y << 15) & 0xEFC60000
    x = y
    for _ in range(5):
        x = y ^ ((x << 7) & 0x9D2C5680)
    y = x & 0xFFFFFFFF
    x = y
    for _ in range(3):
        x = y ^ (x >> 11)
    return x & 0xFFFFFFFF


def set_next_uniforms(*uniforms):
    """Set the global MT19937 so that its next next_double() calls return ``uniforms`` (doubles
    in [0, 1) on the 2**-53 grid, as next_double makes them)."""
    np.random.seed(11)
    key = np.random.get_state()[1].copy()
    pos = 624 - 2 * len(uniforms)
    for i, u in enumerate(uniforms):
        k = int(u * 2.0 ** 53)
        assert k / 2.0 ** 53 == u
        key[pos + 2 * i] = _untemper((k >> 26) << 5)
        key[pos + 2 * i + 1] = _untemper((k & (2**26 - 1)) << 6)
    np.random.set_state(("MT19937", key, pos, 0, 0.0))


def test_set_next_uniforms():
    assert all(_untemper(_temper(v)) == v for v in [0, 1, 2**31, 0x9D2C5680, 2**32 - 1])
    set_next_uniforms(0.7000000000000001, MAX_U, 0.0)
    assert np.random.random_sample(3).tolist() == [0.7000000000000001, MAX_U, 0.0]


def forget_binomial_cache():
    """Point RandomState's binomial cache at an (n, p) no test uses (a draw, so call it before
    setting the state)."""
    np.random.binomial(3, 0.0123)


@pytest.mark.parametrize("keep", KEEPS)
def test_uniforms_on_the_thresholds(keep):
    """U == qn gives X = 0, the next double up X = 1 (the draw is 1 - X for keep > 0.5)."""
    p = keep if keep <= 0.5 else 1 - keep
    qn = math.exp(math.log(1 - p))
    for u in [qn, math.nextafter(qn, 1), math.nextafter(qn, 0), 0.0, MAX_U, 0.5]:
        if u >= 1 or u * 2.0 ** 53 != int(u * 2.0 ** 53):   # not a next_double value
            continue
        draws = assert_same_as_numpy(keep, (1,), partial(set_next_uniforms, u, 0.25))
        assert draws[0] == ((u > qn) != (keep > 0.5))


def test_the_cache_shared_with_multinomial_changes_draws():
    """multinomial fills RandomState's binomial cache with qn = exp(log1p(-p)), the legacy
    binomial with exp(log(1 - p)): for p = 0.3, 0.7000000000000001 against 0.7. A uniform
    between them gives 0 after a multinomial call and 1 otherwise, in NumPy and here."""
    u = 0.7000000000000001
    assert math.exp(math.log1p(-0.3)) == u > math.exp(math.log(0.7)) == 0.7

    def after_multinomial():
        forget_binomial_cache()
        np.random.seed(0)
        np.random.multinomial(1, [0.3, 0.7])
        set_next_uniforms(u)

    def fresh():
        forget_binomial_cache()
        set_next_uniforms(u)

    assert assert_same_as_numpy(0.3, (1,), after_multinomial)[0] == 0
    assert assert_same_as_numpy(0.3, (1,), fresh)[0] == 1


@pytest.mark.parametrize("draw", ["numpy", "native"])
def test_the_cache_is_left_as_numpy_leaves_it(draw):
    """After a draw with p = 0.3 the cache holds the legacy qn (0.7), which the next
    multinomial with p = 0.3 uses; a call of size 0 leaves the cache alone."""
    def drop(keep, shape):
        if draw == "numpy":
            return np.random.binomial(1, keep, size=shape)
        return native_draws(keep, shape)

    forget_binomial_cache()
    drop(0.3, (4,))
    set_next_uniforms(0.7000000000000001)
    assert np.random.multinomial(1, [0.3, 0.7]).tolist() == [1, 0]   # the legacy qn = 0.7

    forget_binomial_cache()
    np.random.multinomial(1, [0.3, 0.7])
    drop(0.2, (0, 5))
    set_next_uniforms(0.7000000000000001)
    assert drop(0.3, (1,))[0] == 0                  # still the multinomial's qn


def test_the_rare_resampling_branch():
    """With multinomial's qn = exp(log1p(-p)) for p = 0.4316638188694884, qn + px1 falls below
    the largest uniform: that uniform makes no draw, the next one does (NumPy's X > bound
    branch), and the draw takes two uniforms."""
    p = 0.4316638188694884
    qn = math.exp(math.log1p(-p))
    assert MAX_U - qn > (p * qn) / (1 - p)

    def prepare():
        forget_binomial_cache()
        np.random.seed(0)
        np.random.multinomial(1, [p, 1 - p])
        set_next_uniforms(MAX_U, 0.875, 0.125)

    draws = assert_same_as_numpy(p, (2,), prepare)
    assert draws.tolist() == [1, 0]            # from 0.875 and 0.125: MAX_U made no draw
    assert np.random.get_state()[2] == 624         # all six words used
    for shape in [(1,), (3,), (600,)]:
        assert_same_as_numpy(p, shape, prepare)


@pytest.mark.parametrize("where", [0, 3, 4, 9, 15])
def test_the_rare_branch_inside_a_vector_of_uniforms(where):
    """The rare uniform among others, at each position of a vector step (4 uniforms) and in
    the tail: the outputs the one-pass AVX2 step wrote before finding it are all rewritten."""
    p = 0.4316638188694884
    uniforms = [0.875 if k % 3 else 0.125 for k in range(16)]
    uniforms[where] = MAX_U

    def prepare():
        forget_binomial_cache()
        np.random.seed(0)
        np.random.multinomial(1, [p, 1 - p])
        set_next_uniforms(*uniforms)

    for shape in [(15,), (16,), (40,), (600,)]:
        draws = assert_same_as_numpy(p, shape, prepare)
        expected = [int(u > 0.5) for u in uniforms if u != MAX_U]   # X: qn ~ 0.57 here
        assert draws.tolist()[:len(expected)] == expected[:shape[0]]


def test_mt19937_runs_inline_on_this_numpy():
    """NumPy's MT19937 state layout checked out (so the tests above ran the inline MT19937;
    the one below runs the pointer path)."""
    assert _dropout.mt19937_inline()


def test_another_bit_generator_through_its_pointer():
    """np.random.set_bit_generator(PCG64): the legacy sampler on its next_double."""
    original = np.random.get_bit_generator()
    try:
        for seed in range(3):
            def prepare(seed=seed):
                np.random.set_bit_generator(np.random.PCG64(seed))
            for keep in [0.9, 0.3]:
                prepare()
                expected = np.random.binomial(1, keep, size=(50, 7))
                after = np.random.get_bit_generator().state
                prepare()
                np.testing.assert_array_equal(native_draws(keep, (50, 7)), expected)
                assert np.random.get_bit_generator().state == after
    finally:
        np.random.set_bit_generator(original)


# The fallbacks: NumPy's own call ----------------------------------------------------------

def test_the_native_path_does_not_call_numpy(monkeypatch):
    real = np.random.binomial

    class Refuse:
        __self__ = real.__self__

        def __call__(self, *args, **kwargs):
            raise AssertionError("np.random.binomial called")

    monkeypatch.setattr(np.random, "binomial", Refuse())
    native_draws(0.9, (10, 10))


def test_a_replaced_np_random_binomial_is_called(monkeypatch):
    calls = []
    real = np.random.binomial

    def spy(n, p, size=None):
        calls.append((n, p, size))
        return real(n, p, size=size)

    np.random.seed(3)
    expected = np.random.binomial(1, 0.9, size=(6, 5))
    monkeypatch.setattr(np.random, "binomial", spy)
    np.random.seed(3)
    np.testing.assert_array_equal(native_draws(0.9, (6, 5)), expected)
    assert calls == [(1, 0.9, (6, 5))]


def test_a_random_state_that_does_not_check_out_falls_back():
    """RandomState._bit_generator replaced from Python: NumPy still draws from its C copy of
    the original bit generator; the layout check fails and NumPy's call is made."""
    rs = np.random.binomial.__self__
    original = rs._bit_generator
    np.random.seed(3)
    start = original.state

    def mt_state():
        state = original.state["state"]
        return state["key"].tolist(), state["pos"]

    try:
        rs._bit_generator = np.random.MT19937(5)
        original.state = start
        expected = np.random.binomial(1, 0.9, size=(20, 3))
        after = mt_state()
        original.state = start
        np.testing.assert_array_equal(native_draws(0.9, (20, 3)), expected)
        assert mt_state() == after
    finally:
        rs._bit_generator = original
    assert_same_as_numpy(0.9, (20, 3), lambda: np.random.seed(3))


# Errors, before anything is drawn ---------------------------------------------------------

@pytest.mark.parametrize("keep", [0.0, -0.1, 1.5, float("nan"), float("inf")])
def test_keep_outside_0_1_is_refused_before_drawing(keep):
    np.random.seed(1)
    before = rng_state()
    with pytest.raises(ValueError, match=r"keep: expected a probability in \(0, 1\], got"):
        _dropout.dropout_forward_rng(np.ones((3, 3), np.float32), keep)
    assert rng_state() == before


def test_bad_arguments_are_refused_before_drawing():
    np.random.seed(1)
    before = rng_state()
    with pytest.raises(TypeError, match="inputs: expected a native float32 array, got dtype "
                                        "float64"):
        _dropout.dropout_forward_rng(np.ones(3), 0.9)
    with pytest.raises(ValueError, match="inputs: expected an aligned C-contiguous array"):
        _dropout.dropout_forward_rng(np.ones(8, np.float32)[::2], 0.9)
    with pytest.raises(TypeError, match="inputs: expected a numpy.ndarray, got list"):
        _dropout.dropout_forward_rng([1.0, 2.0], 0.9)
    with pytest.raises(TypeError):
        _dropout.dropout_forward_rng(np.ones(3, np.float32), "0.9")
    assert rng_state() == before


# Threads ------------------------------------------------------------------------------------

def test_another_thread_sees_a_consistent_rng():
    """A thread drawing np.random.random_sample(1000) in a loop while masks are drawn: the
    draws run under the bit generator's lock, so the stream splits into whole calls."""
    n, masks, chunks = 200_000, [], []
    stop = threading.Event()

    def other():
        while not stop.is_set():
            chunks.append(np.random.random_sample(1000))

    np.random.seed(5)
    thread = threading.Thread(target=other)
    thread.start()
    try:
        for _ in range(20):
            masks.append(native_draws(0.5, (n,)))
    finally:
        stop.set()
        thread.join()
    state = rng_state()
    np.random.seed(5)
    stream = np.random.random_sample(n * len(masks) + 1000 * len(chunks))
    assert rng_state() == state                 # one uniform per draw at keep = 0.5
    k = 0
    while masks or chunks:
        if chunks and np.array_equal(stream[k:k + 1000], chunks[0]):
            chunks.pop(0)
            k += 1000
        else:
            assert masks, f"uniform {k}: neither the thread's next call nor a mask"
            np.testing.assert_array_equal(masks.pop(0), stream[k:k + n] > 0.5)
            k += n


def test_targets_and_the_default_choice(target):
    """The baseline is always there; AVX2 on an AVX2 x86-64 CPU with gcc or clang; the default
    follows the dense kernels' level (runtime/dispatch.py), so NNFS_FAST_ISA=baseline also
    forces the baseline loops here."""
    from nnfs_fast.runtime import cpu, dispatch
    assert DEFAULT_TARGET == dispatch.loop_target(True) or _dropout.targets() == ["baseline"]
    assert _dropout.targets()[0] == "baseline"
    assert ("avx2" in _dropout.targets()) <= ("avx2" in cpu.supported_levels())
    assert _dropout.target() == target
    for level, have in [("baseline", True), ("avx2", True), ("avx512", True), ("avx2", False)]:
        expected = "avx2" if have and level != "baseline" and "avx2" in cpu.supported_levels() \
            else "baseline"
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dispatch, "LEVEL", level)
            assert dispatch.loop_target(have) == expected
    with pytest.raises(ValueError, match="expected one of"):
        _dropout._use_target("avx1024")
    assert _dropout.target() == target


SPECIALS = [float("nan"), -float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1e-45, -1e-45,
            3.4e38, -2.5]


@pytest.mark.parametrize("n", [1, 3, 4, 5, 9, 512, 513, 1300])
@pytest.mark.parametrize("keep", [0.5, 0.9, 1e-30])
def test_special_inputs_give_the_scalar_products_bits(n, keep):
    """NaN (payloads too), +-inf, -0.0 and subnormal inputs: output = inputs * mask bit for bit
    (NaN * 0 is NaN, -x * 0 is -0.0, inf * 0 is NaN) in the one-pass vector steps and their
    tail, and dinputs = dvalues * mask the same, as NumPy computes them."""
    X = np.resize(np.array(SPECIALS, np.float32), n)
    X[2::7] = np.uint32(0x7FA00001).view(np.float32)      # a signalling NaN, quieted by *
    X[3::11] = np.uint32(0xFFC12345).view(np.float32)     # a negative NaN with a payload
    np.random.seed(3)
    mask, output = _dropout.dropout_forward_rng(X, keep)
    with np.errstate(all="ignore"):
        expected, back = X * mask, X[::-1] * mask
    np.testing.assert_array_equal(output.view(np.uint32), expected.view(np.uint32))
    dinputs = _dropout.dropout_backward(X[::-1].copy(), mask)
    np.testing.assert_array_equal(dinputs.view(np.uint32), back.view(np.uint32))
    assert set(mask.tolist()) <= {0.0, float(np.float32(1 / keep))}
