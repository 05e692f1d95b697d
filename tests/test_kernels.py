"""Every kernel table against NumPy, op by op, on shapes with every kind of
tail (rows, columns, channels not a multiple of the vector width), prefix
views of wider weights, every activation."""
from __future__ import annotations

import numpy as np
import pytest

from adaptive_rt.model import reference

core = pytest.importorskip("adaptive_rt._core")
ISAS = core.available_isas()
ACTS = ["none", "relu", "relu6", "hswish", "hsigmoid"]


def _close(got, want, what):
    err = np.abs(got - want).max() / max(1e-6, np.abs(want).max())
    assert err <= 1e-5, (what, err)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 9, 10), (5, 3, 7), (7, 16, 16), (13, 24, 40), (64, 33, 17),
                                   (100, 144, 24), (3, 200, 96), (49, 160, 960)])
def test_gemm_prefix_view_epilogue(isa, m, k, n):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b_full = rng.standard_normal((k + 3, n + 5)).astype(np.float32)   # the subnet reads a prefix block
    scale = rng.uniform(0.5, 1.5, n).astype(np.float32)
    shift = rng.standard_normal(n).astype(np.float32)
    res = rng.standard_normal((m, n)).astype(np.float32)
    base = a.astype(np.float64) @ b_full[:k, :n].astype(np.float64)
    for act in ACTS:
        got = core._kernel_gemm(isa, a, b_full, n, scale, shift, res, act)
        want = reference.activation(base * scale + shift, act) + res
        _close(got, want, (isa, m, k, n, act))
    _close(core._kernel_gemm(isa, a, b_full, n, None, None, None, "none"), base, "plain")
    g = rng.uniform(0, 1, k).astype(np.float32)      # a fused SE gate scales A's columns
    want = (a.astype(np.float64) * g) @ b_full[:k, :n].astype(np.float64) * scale + shift
    _close(core._kernel_gemm(isa, a, b_full, n, scale, shift, None, "none", g), want, "gated")
    # B in panels (how a read-mode pool holds 1x1 weights), whole and as a panel-aligned column slice:
    # the same values in the same summation order as row-major, so bit-identical
    for boff in (0, 32):
        wide = rng.standard_normal((k + 3, n + boff + 5)).astype(np.float32)
        for gate in (None, g):
            rows = core._kernel_gemm(isa, a, wide, n, scale, shift, res, "hswish", gate, boff=boff)
            pan = core._kernel_gemm(isa, a, wide, n, scale, shift, res, "hswish", gate, panels=True, boff=boff)
            np.testing.assert_array_equal(pan, rows, err_msg=f"{isa} {m}x{k}x{n} boff={boff} gate={gate is not None}")
        wb = (a.astype(np.float64) @ wide[:k, boff:boff + n].astype(np.float64)) * scale + shift
        _close(core._kernel_gemm(isa, a, wide, n, scale, shift, None, "none", panels=True, boff=boff), wb, "panels")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("k", [3, 5, 7, 9])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("h,w,c", [(1, 1, 1), (2, 3, 5), (7, 7, 16), (20, 21, 24), (33, 12, 40), (9, 40, 17)])
def test_dwconv(isa, k, stride, h, w, c):
    rng = np.random.default_rng(k * 100 + stride * 10 + h + w + c)
    x = rng.standard_normal((h, w, c)).astype(np.float32)
    wt = rng.standard_normal((k, k, c + 8)).astype(np.float32)       # prefix of a wider tensor
    scale = rng.uniform(0.5, 1.5, c).astype(np.float32)
    shift = rng.standard_normal(c).astype(np.float32)
    conv = np.einsum("nhwcij,ijc->nhwc", reference._windows(x[None].astype(np.float64), k, stride),
                     wt[:, :, :c].astype(np.float64))[0]
    for act in ("none", "hswish"):
        got = core._kernel_dwconv(isa, x, wt, c, stride, scale, shift, act)
        _close(got, reference.activation(conv * scale + shift, act), (isa, k, stride, h, w, c, act))


@pytest.mark.parametrize("isa", ISAS)
def test_every_kernel_of_every_table_against_double_reference(isa):
    """csrc/kernels/kernel_test.cc: every kernel family of the table (GEMM,
    GEMV, each depthwise kernel, channel sums, scaling, add, every activation
    incl. the vector sigmoid, im2col, bilinear resize) against a
    double-precision reference over tail shapes."""
    checks, failures = core._kernel_test(isa)
    assert failures == [] and checks >= 500, failures[:10]


def test_kernel_test_refuses_an_unknown_table():
    with pytest.raises(ValueError, match="no kernel table 'sse9'"):
        core._kernel_test("sse9")


def test_plans_name_the_kernels_each_step_runs(tmp_path):
    """Kernel choice happens at plan time and is visible: every step of a
    plan names its kernels "f32-<op>-<tile>-<isa>" (the 224 net has a stem
    im2col, specialised depthwise kernels, fused expand rings, SE GEMVs)."""
    from adaptive_rt.engine import Engine
    from adaptive_rt.io.poolfile import write_pool
    from adaptive_rt.io.randompool import random_pool
    from adaptive_rt.model.presets import get_space
    sp = get_space("mbv3-224")
    entries, tensors = random_pool(sp, 0, seed=0, configs=[sp.max_config()])
    write_pool(tmp_path / "p.safetensors", sp, entries, tensors)
    for isa in ISAS:
        eng = Engine.open(tmp_path / "p.safetensors", max_threads=1, isa=isa)
        plan = eng.plan("e0")
        steps = plan.native.steps()
        assert all(k.endswith(isa) or f"-{isa} " in k for _, _, _, k in steps), steps
        kernels = " ".join(k for _, _, _, k in steps)
        assert f"f32-conv-3x3s2-direct-{isa}" in kernels and f"f32-dwconv-7x7s2-{isa}" in kernels
        assert "ring of" in kernels and "project per row" in kernels
        assert f"f32-gemv-1x" in kernels and f"f32-channel-sum-{isa}" in kernels
        assert f"[f32-" in plan.describe()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("cin,k,stride", [(3, 3, 2), (1, 3, 1), (8, 3, 1), (16, 3, 2), (2, 5, 2)])
def test_conv_op_direct_and_im2col_against_numpy(isa, cin, k, stride):
    """The conv operator picks the direct kernel for few taps per pixel
    (k*k*Cin <= 64) and im2col + GEMM for more; both equal a float64
    im2col reference, prefix view of a wider weight included."""
    rng = np.random.default_rng(cin * 100 + k * 10 + stride)
    h, w, n = 13, 17, 24
    p = k // 2
    ho, wo = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
    x = rng.standard_normal((1, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal((k * k * cin, n + 8)).astype(np.float32)
    sc, sh = rng.uniform(0.5, 1.5, n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    eng = core.Engine(1, isa)
    plan = core.Plan([(h, w, cin), (ho, wo, n), (1, 1, n)], 2)
    plan.add_op("conv", "c", 0, out=1, k=k, stride=stride, act="hswish", w=wt, scale=sc, shift=sh)
    plan.add_op("gap", "g", 1, out=2)
    plan.finalize(eng)
    kern = plan.steps()[0][3]
    assert ("direct" in kern) == (k * k * cin <= 64), kern
    want = _np_conv(x[0], wt, k, stride, sc, sh, "hswish").mean(axis=(0, 1))
    got = eng.run(plan, x, threads=1)[0]
    _close(got, want, (isa, cin, k, stride))


def _np_conv(x, w, k, stride, sc, sh, act):
    """float64 KxK conv (symmetric padding) of an HWC image, weight [k*k*Cin, >= N]."""
    h, wd, cin = x.shape
    p, n = k // 2, len(sc)
    ho, wo = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    xp = np.pad(x.astype(np.float64), ((p, p), (p, p), (0, 0)))
    cols = np.stack([xp[ky:ky + stride * ho:stride, kx:kx + stride * wo:stride, :]
                     for ky in range(k) for kx in range(k)], axis=2).reshape(ho * wo, k * k * cin)
    return reference.activation(cols @ w[:, :n].astype(np.float64) * sc + sh, act).reshape(ho, wo, n)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("residual_of_block", [True, False])
def test_stem_streamed_into_the_first_block(isa, residual_of_block):
    """A direct stem conv feeding a depthwise conv is fused into it: the
    stem's rows are made in the depthwise step's ring and the stem's output
    is never stored. Where the block's project conv adds the stem's output
    back (MobileNet's first block), the residual is read from the ring;
    where another op reads the stem's output, nothing is fused. Both equal
    a float64 reference at 1, 2 and 3 threads (row bands)."""
    rng = np.random.default_rng(7)
    h = w = 146                       # the stem's output 73x73x16 (333 KB): large enough to stream
    c = 16
    x = rng.standard_normal((1, h, w, 3)).astype(np.float32)
    ws = rng.standard_normal((27, c + 8)).astype(np.float32) * 0.3
    wd = rng.standard_normal((3, 3, c + 4)).astype(np.float32) * 0.3
    wp = rng.standard_normal((c + 2, c)).astype(np.float32) * 0.3
    wq = rng.standard_normal((c, c)).astype(np.float32) * 0.3
    vec = lambda s: (rng.uniform(0.5, 1.5, c).astype(np.float32), rng.standard_normal(c).astype(np.float32) * s)
    (s1, b1), (s2, b2), (s3, b3), (s4, b4) = vec(0.5), vec(0.5), vec(0.5), vec(0.5)
    ho = 73
    eng = core.Engine(3, isa)
    shapes = [(h, w, 3)] + [(ho, ho, c)] * 5 + [(1, 1, c)]
    plan = core.Plan(shapes, 6)
    plan.add_op("conv", "stem", 0, out=1, k=3, stride=2, act="hswish", w=ws, scale=s1, shift=b1)
    plan.add_op("dwconv", "b.dw", 1, out=2, k=3, stride=1, act="relu", w=wd, scale=s2, shift=b2)
    plan.add_op("pwconv", "b.project", 2, out=3, act="none", w=wp, scale=s3, shift=b3)
    if residual_of_block:
        plan.add_op("add", "b.add", 3, in1=1, out=4)
        plan.add_op("pwconv", "tail", 4, out=5, act="relu", w=wq, scale=s4, shift=b4)
    else:   # the stem's output is read again two ops later: it must be stored
        plan.add_op("pwconv", "tail", 3, out=4, act="relu", w=wq, scale=s4, shift=b4)
        plan.add_op("add", "b.add", 4, in1=1, out=5)
    plan.add_op("gap", "g", 5, out=6)
    plan.finalize(eng)
    steps = plan.steps()
    fused = steps[0][0] == "dwconv" and steps[0][3].startswith(f"f32-conv-3x3s2-direct-{isa} + f32-dwconv-3x3s1")
    assert fused == residual_of_block, steps
    if fused:
        assert "+residual (conv stem fused, ring rows)" in plan.describe() and "ring of 3 rows" in steps[0][3]
    y1 = _np_conv(x[0], ws, 3, 2, s1, b1, "hswish")
    yp = np.pad(y1, ((1, 1), (1, 1), (0, 0)))
    y2 = sum(yp[ky:ky + ho, kx:kx + ho, :] * wd[ky, kx, :c] for ky in range(3) for kx in range(3))
    y2 = reference.activation(y2 * s2 + b2, "relu")
    y3 = y2 @ wp[:c].astype(np.float64) * s3 + b3
    if residual_of_block:
        y5 = reference.activation((y3 + y1) @ wq.astype(np.float64) * s4 + b4, "relu")
    else:
        y5 = reference.activation(y3 @ wq.astype(np.float64) * s4 + b4, "relu") + y1
    want = y5.mean(axis=(0, 1))
    for threads in (1, 2, 3):
        _close(eng.run(plan, x, threads=threads)[0], want, (isa, residual_of_block, threads))
