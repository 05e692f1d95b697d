"""int8 entries: the scheme, quantize, the pool file's int8 content and its
validation, the engine's int8 plans bit-exact against the NumPy reference on
every int8 kernel table, and the kernels themselves against an integer
reference."""
from __future__ import annotations

import numpy as np
import pytest

from adaptive_rt.engine import Engine, available_isas8
from adaptive_rt.io.data import load_dataset
from adaptive_rt.io.poolfile import load_pool, write_pool
from adaptive_rt.io.randompool import random_pool
from adaptive_rt.model import reference
from adaptive_rt.quant.calibrate import QuantizeError, int8_weights, quantize_pool
from adaptive_rt.model.reference_int8 import run_int8
from adaptive_rt.model.quant import Q8, Q8SCALE, choose_qparams, pack_k4, quant_points, quantize_weight, unpack_k4

from test_poolfile import expect_error, join_file, mutate_pool, split_file

core = pytest.importorskip("adaptive_rt._core")
ISAS8 = available_isas8()


# ----------------------------------------------------------------------------- scheme
def test_k4_layout_round_trip_and_prefix_view():
    rng = np.random.default_rng(0)
    for k, n in [(1, 1), (3, 5), (4, 8), (27, 16), (33, 7)]:
        q = rng.integers(-127, 128, (k, n)).astype(np.int8)
        p = pack_k4(q)
        assert p.shape == ((k + 3) // 4, n, 4)
        assert np.array_equal(unpack_k4(p, k), q)
        for kk, nn in [(1, 1), (k, n), (max(1, k - 2), max(1, n - 1))]:   # a prefix subnet reads a prefix block
            assert np.array_equal(unpack_k4(p[:, :nn], kk)[:kk], q[:kk, :nn])


def test_weight_scales_cover_the_full_stored_tensor():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((40, 24))
    w[35, 3] = 9.0                         # outside the prefix [32, 16] a subnet reads
    q, s = quantize_weight(w)
    assert s.dtype == np.float32 and s.shape == (24,)
    assert s[3] == np.float32(9.0 / 127)   # the scale is the full tensor's: every prefix reads the same
    deq = unpack_k4(q, 40).astype(np.float64) * s
    assert np.abs(deq - w).max() <= s.max() / 2 + 1e-7
    assert np.abs(unpack_k4(q, 40)).max() <= 127
    dw = rng.standard_normal((5, 5, 12))
    qd, sd = quantize_weight(dw)
    assert qd.shape == (5, 5, 12) and sd.shape == (12,)


@pytest.mark.parametrize("lo,hi", [(-1.0, 3.0), (0.0, 6.0), (0.5, 2.0), (-4.0, -1.0), (0.0, 0.0)])
def test_qparams_cover_range_and_zero(lo, hi):
    s, z = choose_qparams(lo, hi)
    assert s > 0 and 0 <= z <= 255
    assert s * (0 - z) <= min(lo, 0) + s / 2 and s * (255 - z) >= max(hi, 0) - s / 2


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def qpool():
    """The shipped pool: an int8 entry after each float32 one (adaptive-rt quantize, 500 training images)."""
    pool = load_pool("mnist5k-mbv3")
    assert sum(e.is_int8 for e in pool.entries) == sum(not e.is_int8 for e in pool.entries) >= 3
    return pool


@pytest.fixture(scope="module")
def random_qpool(tmp_path_factory):
    """A random tiny pool quantized on random images: shapes and ranges the shipped one lacks."""
    from adaptive_rt.model.presets import get_space
    space = get_space("mbv3-tiny28")
    entries, tensors = random_pool(space, 3, seed=7)
    d = tmp_path_factory.mktemp("rq")
    pool = write_pool(d / "f.safetensors", space, entries, tensors)
    x = np.random.default_rng(3).standard_normal((16,) + pool.input_shape).astype(np.float32)
    return quantize_pool(pool, x, str(d / "q.safetensors"))


def _int8_entries(pool):
    return [e for e in pool.entries if e.is_int8]


# ----------------------------------------------------------------------------- pool file
def test_quantized_pool_layout(qpool):
    pool = load_pool(qpool.path)
    assert pool.metadata["adaptive_rt.schema"] == "2"
    assert int8_entries_follow_their_float_entries(pool)
    for e in _int8_entries(pool):
        assert e.quant and pool.tensors[e.quant + "qparams"].shape == (len(quant_points(pool.graph(e))), 2)
        assert e.bn == pool.entry(e.id[:-len("-int8")]).bn            # BN statistics shared with the float entry
    assert pool.int8_weight_bytes < pool.weight_bytes / 3
    for name, t in pool.tensors.items():
        if name.endswith(Q8):
            assert t.dtype == np.int8 and int(t.min()) >= -127


def int8_entries_follow_their_float_entries(pool) -> bool:
    ids = [e.id for e in pool.entries]
    return all(ids[ids.index(e.id) - 1] + "-int8" == e.id for e in _int8_entries(pool))


def test_float_only_pool_is_still_written_as_schema_1(tiny_pool_path):
    assert load_pool(tiny_pool_path).metadata["adaptive_rt.schema"] == "1"


def test_quantize_refuses_what_it_cannot_do(qpool, tmp_path, mnist):
    with pytest.raises(QuantizeError, match="already int8"):
        quantize_pool(qpool, mnist.x_train[:4], str(tmp_path / "x.safetensors"), entries=["e0-int8"])
    with pytest.raises(QuantizeError, match="already has an entry"):
        quantize_pool(qpool, mnist.x_train[:4], str(tmp_path / "x.safetensors"), entries=["e0"])
    with pytest.raises(QuantizeError, match="has its int8 entry already"):   # nothing left to quantize
        quantize_pool(qpool, mnist.x_train[:4], str(tmp_path / "x.safetensors"))
    with pytest.raises(QuantizeError, match="no entry"):
        quantize_pool(qpool, mnist.x_train[:4], str(tmp_path / "x.safetensors"), entries=["nope"])
    src = _float_only(qpool, tmp_path / "f.safetensors")
    bad = np.array(mnist.x_train[:4])
    bad[1, 3, 3, 0] = np.nan
    with pytest.raises(QuantizeError, match="NaN or infinity"):
        quantize_pool(src, bad, str(tmp_path / "x.safetensors"))
    assert not (tmp_path / "x.safetensors").exists()


def _float_only(pool, path):
    """The pool's float32 entries and tensors alone (the shipped pool has int8 entries already)."""
    keep = [e for e in pool.entries if not e.is_int8]
    per_entry = {e.quant + "qparams" for e in pool.entries if e.is_int8}
    tensors = {n: t for n, t in pool.tensors.items() if not n.endswith((Q8, Q8SCALE)) and n not in per_entry}
    return write_pool(path, pool.space, keep, tensors)


def test_drop_float_keeps_only_int8(qpool, tmp_path, mnist):
    src = _float_only(load_pool("mnist5k-mbv3"), tmp_path / "f.safetensors")
    assert src.metadata["adaptive_rt.schema"] == "1"
    out = quantize_pool(src, mnist.x_train[:32], str(tmp_path / "i8.safetensors"), entries=["e0", "e2"],
                        drop_float=True)
    assert [e.id for e in out.entries] == ["e0-int8", "e2-int8"]
    assert not any(n in out.tensors for n in int8_weights(src) if not n.endswith((Q8, Q8SCALE)))
    assert "stem.conv.weight" not in out.tensors and "stem.conv.weight" + Q8 in out.tensors
    eng = Engine(out, max_threads=1)
    y = eng.run(eng.plan("e2-int8"), np.ascontiguousarray(mnist.x_test[:4]))
    assert y.shape == (4, 10) and np.isfinite(y).all()
    # a pool whose float32 entries all have their int8 entry: --drop-float alone keeps those, unchanged
    only = quantize_pool(qpool, mnist.x_train[:4], str(tmp_path / "only.safetensors"), drop_float=True)
    assert [e.id for e in only.entries] == [e.id for e in qpool.entries if e.is_int8]
    for e in only.entries:
        assert np.array_equal(only.tensors[e.quant + "qparams"], qpool.tensors[e.quant + "qparams"])
        assert e.accuracy == qpool.entry(e.id).accuracy
    with pytest.raises(QuantizeError, match="no float32 entry"):
        quantize_pool(only, mnist.x_train[:4], str(tmp_path / "again.safetensors"), drop_float=True)


def _rewrite(qpool, fn_header=None, fn_data=None):
    raw = open(qpool.path, "rb").read()
    header, data = split_file(raw)
    if fn_header:
        fn_header(header)
    if fn_data:
        data = fn_data(header, bytearray(data))
    return join_file(header, bytes(data))


def _first_q8(header):
    return min(n for n in header if n.endswith(Q8))


def test_malformed_int8_content(tmp_path, qpool):
    def set_schema_1(h):
        h["__metadata__"]["adaptive_rt.schema"] = "1"
    expect_error(tmp_path, _rewrite(qpool, set_schema_1), 'need adaptive_rt.schema "2"')

    def minus_128(h, d):
        t = h[_first_q8(h)]
        d[t["data_offsets"][0]] = 0x80
        return d
    expect_error(tmp_path, _rewrite(qpool, fn_data=minus_128), "holds -128")

    def wrong_dtype(h):
        h[_first_q8(h)]["dtype"] = "U8"
    expect_error(tmp_path, _rewrite(qpool, wrong_dtype), "dtype U8, expected I8")

    def zero_scale(h, d):
        name = min(n for n in h if n.endswith(Q8SCALE))
        o = h[name]["data_offsets"][0]
        d[o:o + 4] = np.float32(0).tobytes()
        return d
    expect_error(tmp_path, _rewrite(qpool, fn_data=zero_scale), "not positive")

    for i, value, msg in [(1, 256.0, "zero point that is not an integer in [0, 255]"), (1, 3.5, "zero point"),
                          (0, -1.0, "scale that is not positive"), (0, float("inf"), "non-finite")]:
        def qparams(h, d, i=i, value=value):
            o = h[next(n for n in h if n.endswith("qparams"))]["data_offsets"][0]
            d[o + 4 * i:o + 4 * i + 4] = np.float32(value).tobytes()
            return d
        expect_error(tmp_path, _rewrite(qpool, fn_data=qparams), msg)

    def no_quant(h):
        mutate_pool(h, lambda t: next(e for e in t if e.get("precision") == "int8").pop("quant"))
    expect_error(tmp_path, _rewrite(qpool, no_quant), ".quant=")

    def bad_precision(h):
        mutate_pool(h, lambda t: t[0].__setitem__("precision", "int4"))
    expect_error(tmp_path, _rewrite(qpool, bad_precision), "precision='int4'")

    def quant_on_float(h):
        mutate_pool(h, lambda t: t[0].__setitem__("quant", "q.x."))
    expect_error(tmp_path, _rewrite(qpool, quant_on_float), "only for int8 entries")

    def other_entries_qparams(h):   # an int8 entry pointing at qparams of another graph
        def fn(t):
            i8 = [e for e in t if e.get("precision") == "int8"]
            i8[0]["quant"] = i8[-1]["quant"]
        mutate_pool(h, fn)
    expect_error(tmp_path, _rewrite(qpool, other_entries_qparams), "qparams")


# ----------------------------------------------------------------------------- engine
@pytest.mark.parametrize("isa8", ISAS8)
def test_int8_kernels_exact(isa8):
    cases, failures = core._kernel_test8(isa8)
    assert cases > 500 and failures == []


@pytest.mark.parametrize("isa8", ISAS8)
@pytest.mark.parametrize("which", ["shipped", "random"])
def test_int8_plans_bit_exact_against_reference(isa8, which, qpool, random_qpool):
    pool = qpool if which == "shipped" else random_qpool
    rng = np.random.default_rng(5)
    # 10 images: a lockstep group of 8 and the rest (engine.h kGroup)
    x = (rng.uniform(0, 1, (10,) + pool.input_shape) if which == "shipped"      # digits are in [0, 1]
         else rng.standard_normal((10,) + pool.input_shape)).astype(np.float32)
    eng = Engine(pool, max_threads=2, isa8=isa8)
    assert eng.isa8 == isa8
    for e in _int8_entries(pool):
        want = run_int8(pool.graph(e), pool.tensors, pool.tensors[e.quant + "qparams"], x, e.bn)
        p = eng.plan(e)
        assert p.native.q8 and "(int8)" in p.describe()
        for threads in (1, 2):
            got = eng.run(p, x, threads=threads)
            assert np.array_equal(got, want), (isa8, e.id, threads, np.abs(got - want).max())


def test_int8_plan_of_another_input_size_has_an_int8_resize(qpool):
    """Every int8 entry at other input sizes: a resize added after the input (an
    entry at 28x28 fed 32x32) or dropped (one at 20x20 fed 20x20) keeps the
    entry's qparams for every other value; plans bit-exact with the reference,
    and both exports built."""
    import importlib.util
    has_litert = importlib.util.find_spec("ai_edge_litert") is not None     # not on every platform
    eng = Engine(qpool, max_threads=1)
    for e in _int8_entries(qpool):
        for hw in [(33, 30), (32, 32), (20, 20), (28, 28)]:
            p = eng.plan(e, input_hw=hw)
            has_resize = any(k == "resize" for k, _, _, _ in p.native.steps())
            assert has_resize == (hw != (e.config.resolution,) * 2), (e.id, hw)
            assert all("i8-resize" in ker for k, _, _, ker in p.native.steps() if k == "resize")
            x = np.random.default_rng(0).uniform(0, 1, (2, *hw, 1)).astype(np.float32)
            want = run_int8(qpool.graph(e, hw), qpool.tensors, qpool.tensors[e.quant + "qparams"], x, e.bn)
            assert np.array_equal(eng.run(p, x), want), (e.id, hw)
            if has_litert:
                from adaptive_rt.export.tflite import to_tflite_int8
                _, out = _litert(to_tflite_int8(qpool, e, hw), x)
                assert out.shape == want.shape and np.corrcoef(out.ravel(), want.ravel())[0, 1] > 0.9, (e.id, hw)


def test_int8_accuracy_close_to_float(qpool, mnist):
    """Every int8 entry within 0.5 points of its float entry on the test split."""
    eng = Engine(qpool, max_threads=2)
    x, y = np.ascontiguousarray(mnist.x_test), mnist.y_test
    for e in _int8_entries(qpool):
        f = qpool.entry(e.id[:-len("-int8")])
        acc_q = float((eng.run(eng.plan(e), x, threads=2).argmax(1) == y).mean())
        acc_f = float((eng.run(eng.plan(f), x, threads=2).argmax(1) == y).mean())
        assert acc_q >= acc_f - 0.005, (e.id, acc_q, acc_f)


def test_int8_float_reference_agree_roughly(qpool, mnist):
    """The int8 logits track the float ones (a quantization error, not a different net)."""
    x = mnist.x_test[:50]
    for e in _int8_entries(qpool)[:2]:
        f = qpool.entry(e.id[:-len("-int8")])
        lf = reference.run(qpool.graph(f), qpool.tensors, x, f.bn)
        lq = run_int8(qpool.graph(e), qpool.tensors, qpool.tensors[e.quant + "qparams"], x, e.bn)
        assert np.corrcoef(lf.ravel(), lq.ravel())[0, 1] > 0.99


def test_hostile_int8_op_arguments_refused(qpool):
    """The plan builder checks int8 fields like the float ones: a clear ValueError, no crash."""
    good = np.zeros((2, 8, 4), np.int8)
    cases = [
        (dict(w8=np.zeros((1, 8, 4), np.int8)), "too small"),
        (dict(w8=np.zeros((2, 8, 5), np.int8)), "k4 layout"),
        (dict(w8=good.astype(np.uint8)), "must be int8"),
        (dict(w8=good, qin=(0.0, 3)), "scale must be positive"),
        (dict(w8=good, qin=(float("inf"), 3)), "scale must be positive"),
        (dict(w8=good, qin=(1.0, 256)), "zero point"),
        (dict(w8=good, scale=np.full(8, np.nan, np.float32)), "not finite"),
        (dict(w8=good, scale=np.ones(7, np.float32)), "values"),
    ]
    for kw, msg in cases:
        p = core.Plan([(1, 1, 8), (1, 1, 8), (1, 1, 8)], 1, q8=True)
        p.add_op("quantize", "q", 0, -1, 2, qout=(1.0, 0))
        args = dict(w8=good, qin=(1.0, 0), qout=(1.0, 0), float_out=True, scale=np.ones(8, np.float32),
                    shift=np.zeros(8, np.float32))
        args.update(kw)
        with pytest.raises((ValueError, TypeError), match=msg):
            p.add_op("linear", "fc", 2, -1, 1, **args)
    p = core.Plan([(1, 1, 8), (1, 1, 8)], 1, q8=True)
    with pytest.raises(ValueError, match="only by a quantize op"):
        p.add_op("linear", "fc", 0, -1, 1, w8=good, qin=(1.0, 0), qout=(1.0, 0), float_out=True,
                 scale=np.ones(8, np.float32), shift=np.zeros(8, np.float32))
    f = core.Plan([(1, 1, 1), (1, 1, 1)], 1)
    with pytest.raises(ValueError, match="int8-plan op"):
        f.add_op("quantize", "q", 0, -1, 1, qout=(1.0, 0))


# ----------------------------------------------------------------------------- exports
def test_int8_onnx_qdq_export_runs_in_onnxruntime(qpool, mnist):
    """Every int8 entry as a QDQ model in ONNX Runtime: the first layers' uint8
    values within one step of the engine's; over the net ORT's own rounding
    differences grow (docs/int8.md), so the logits are compared by argmax and
    accuracy."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import helper
    from adaptive_rt.export.onnx import to_onnx_int8
    x, y = np.ascontiguousarray(mnist.x_test), mnist.y_test
    eng = Engine(qpool, max_threads=2)
    for e in _int8_entries(qpool):
        m = to_onnx_int8(qpool, e)
        assert {n.op_type for n in m.graph.node} >= {"QuantizeLinear", "DequantizeLinear", "Conv"}
        stem_q = next(n for n in m.graph.node if n.name.startswith("stem.conv.q"))
        m.graph.output.append(helper.make_tensor_value_info(stem_q.output[0], onnx.TensorProto.UINT8, None))
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        logits, stem = sess.run(None, {"input": x[:64]})
        rec: dict = {}
        g = qpool.graph(e)
        want = run_int8(g, qpool.tensors, qpool.tensors[e.quant + "qparams"], x[:64], e.bn, record=rec)
        stem_op = next(op for op in g.ops if op.name == "stem.conv")
        ref_stem = rec[f"v{stem_op.output}"].transpose(0, 3, 1, 2)
        assert np.abs(stem.astype(int) - ref_stem.astype(int)).max() <= 1, e.id
        assert (logits.argmax(1) == want.argmax(1)).mean() >= 0.95, e.id
        full = sess.run(None, {"input": x})[0]
        ours = eng.run(eng.plan(e), x, threads=2)
        assert (full.argmax(1) == ours.argmax(1)).mean() >= 0.99, e.id
        assert abs((full.argmax(1) == y).mean() - (ours.argmax(1) == y).mean()) <= 0.005, e.id


def _litert(model: bytes, x: np.ndarray, preserve: bool = False):
    """(interpreter, output) of one run; ``preserve`` keeps every tensor (and runs without the delegate)."""
    import warnings
    from ai_edge_litert.interpreter import Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)    # preserve_all_tensors "is for debugging"
        it = Interpreter(model_content=model, experimental_preserve_all_tensors=preserve)
    it.resize_tensor_input(it.get_input_details()[0]["index"], list(x.shape))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it, it.get_tensor(it.get_output_details()[0]["index"])


@pytest.mark.parametrize("hswish", ["mul", "op"])
def test_int8_tflite_export_runs_in_litert(qpool, mnist, hswish):
    """Every int8 entry as a full-integer TFLite model in LiteRT: every tensor
    but the float input and logits int8 (int32 biases), the first layer within
    one step of the engine's, the XNNPACK delegate taking the whole graph
    (the default form), and over the net the argmax and accuracy of the
    engine (rounding differences grow as with ONNX Runtime: docs/int8.md)."""
    pytest.importorskip("ai_edge_litert")
    from adaptive_rt.export.tflite import to_tflite_int8
    x, y = np.ascontiguousarray(mnist.x_test), mnist.y_test
    eng = Engine(qpool, max_threads=2)
    for e in _int8_entries(qpool):
        m = to_tflite_int8(qpool, e, hswish=hswish)
        it, _ = _litert(m, x[:64], preserve=True)
        types = {d["name"]: d["dtype"] for d in it.get_tensor_details()}
        assert types.pop("input") == np.float32 and types.pop("logits") == np.float32
        assert set(types.values()) <= {np.int8, np.int32}, e.id
        stem = it.get_tensor(next(d["index"] for d in it.get_tensor_details() if d["name"] == "stem.conv"))
        rec: dict = {}
        g = qpool.graph(e)
        run_int8(g, qpool.tensors, qpool.tensors[e.quant + "qparams"], x[:64], e.bn, record=rec)
        stem_op = next(op for op in g.ops if op.name == "stem.conv")
        d = np.abs(stem.astype(int) + 128 - rec[f"v{stem_op.output}"].astype(int))
        # the stem is a hard-swish conv: TFLite rounds its pre-activation too (and the "mul" form its gate),
        # so a rare element is two steps off
        assert d.max() <= 2 and (d > 1).mean() <= 1e-3, (e.id, d.max(), (d > 1).mean())
        plain, full = _litert(m, x)
        if hswish == "mul":
            assert [o["op_name"] for o in plain._get_ops_details()].count("DELEGATE") == 1, e.id
        ours = eng.run(eng.plan(e), x, threads=2)
        assert (full.argmax(1) == ours.argmax(1)).mean() >= 0.99, e.id
        assert abs((full.argmax(1) == y).mean() - (ours.argmax(1) == y).mean()) <= 0.005, e.id


def test_int8_tflite_export_of_other_layers(tmp_path):
    """relu6 convs, a sigmoid SE gate and a feature-mix layer (what the
    presets lack) as full-integer TFLite: the logits follow the engine's."""
    pytest.importorskip("ai_edge_litert")
    from adaptive_rt.export.tflite import to_tflite_int8
    from adaptive_rt.model.space import SearchSpace
    from adaptive_rt.model.presets import get_space
    d = get_space("mbv3-tiny28").to_dict()
    d.update(name="variant", stem_act="relu6", head_act="relu6", se_gate="sigmoid", feature_channels=32,
             feature_act="relu", stem_stride=2)
    space = SearchSpace.from_dict(d)
    entries, tensors = random_pool(space, 2, seed=3)
    pool = write_pool(tmp_path / "v.safetensors", space, entries, tensors)
    x = np.random.default_rng(4).random((32,) + pool.input_shape, dtype=np.float32)
    q = quantize_pool(pool, x, str(tmp_path / "q.safetensors"))
    eng = Engine(q)
    for e in _int8_entries(q):
        _, out = _litert(to_tflite_int8(q, e), x)
        ours = eng.run(eng.plan(e), x)
        step = q.tensors[e.quant + "qparams"][q.graph(e).output, 0]
        assert np.corrcoef(out.ravel(), ours.ravel())[0, 1] > 0.9, e.id
        assert np.abs(out - ours).mean() <= 3 * step, e.id


def test_tflite_int8_export_refuses_float_entries(qpool):
    pytest.importorskip("ai_edge_litert")
    from adaptive_rt.export.tflite import to_tflite_int8
    with pytest.raises(ValueError, match="not int8"):
        to_tflite_int8(qpool, "e0")


def test_cli_exports_int8_entry_as_onnx_and_tflite(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("ai_edge_litert")
    import subprocess
    import sys
    for ext, says in ((".onnx", "(int8, QDQ)"), (".tflite", "TFLite (int8, full integer)")):
        out = tmp_path / f"e0-int8{ext}"
        r = subprocess.run([sys.executable, "-m", "adaptive_rt", "export", "mnist5k-mbv3", "--entry", "e0-int8",
                            "--out", str(out)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and says in r.stdout and out.stat().st_size > 10_000, r.stderr