"""The NumPy reference executor against ONNX Runtime on exported subnets.

Random configs, random weights; the check is max abs error <= 1e-4 x max abs
reference output (the accuracy target in docs/engine.md)."""
from __future__ import annotations

import random

import numpy as np
import pytest

from adaptive_rt.model import reference
from adaptive_rt.model.graph import build_graph
from adaptive_rt.model.space import SearchSpace
from adaptive_rt.model.presets import get_space
from adaptive_rt.model.weights import random_weights

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from adaptive_rt.export.onnx import OPSET, save_onnx, to_onnx  # noqa: E402

TOL = 1e-4


def _ort_run(model, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return s.run(["logits"], {"input": x})[0]


def _check(space, weights, cfg, input_hw=None, batch=2, seed=0, bn_prefix=""):
    g = build_graph(space, cfg, input_hw)
    x = np.random.default_rng(seed).uniform(0, 1, (batch,) + g.input_shape).astype(np.float32)
    ref = reference.run(g, weights, x, bn_prefix)
    got = _ort_run(to_onnx(space, cfg, weights, bn_prefix, input_hw), x)
    assert got.shape == ref.shape == (batch, space.num_classes)
    assert np.isfinite(ref).all() and np.abs(ref).max() > 0
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= TOL, (cfg.id, err)


@pytest.fixture(scope="module")
def tiny_weights():
    return random_weights(get_space("mbv3-tiny28"), seed=3)


TINY = get_space("mbv3-tiny28")
TINY_CONFIGS = [TINY.min_config(), TINY.max_config()] + [TINY.sample(random.Random(i)) for i in range(22)]


@pytest.mark.parametrize("cfg", TINY_CONFIGS, ids=[c.id for c in TINY_CONFIGS])
def test_tiny_reference_matches_onnxruntime(tiny_weights, cfg):
    _check(TINY, tiny_weights, cfg)


@pytest.mark.parametrize("hw", [(8, 8), (32, 24)])
def test_resize_from_other_input_sizes(tiny_weights, hw):
    _check(TINY, tiny_weights, TINY.sample(random.Random(hw[0])), input_hw=hw)


def test_224_preset_three_configs():
    sp = get_space("mbv3-224")
    w = random_weights(sp, seed=4)
    for cfg in [sp.min_config(), sp.max_config(), sp.sample(random.Random(11))]:
        _check(sp, w, cfg, batch=1)


def test_relu6_sigmoid_and_feature_mix():
    """Activations and layers the presets do not use: relu6, sigmoid SE gate,
    a feature-mix layer, stride-1 first blocks with a residual."""
    d = get_space("mbv3-tiny28").to_dict()
    d.update(name="variant", stem_act="relu6", head_act="relu6", se_gate="sigmoid",
             feature_channels=32, feature_act="relu", stem_stride=2)
    d["stages"][0].update(stride=1, channels=16, width_mults=[1.0], expand_ratios=[1])
    sp = SearchSpace.from_dict(d)
    w = random_weights(sp, seed=5)
    for i in range(3):
        cfg = sp.sample(random.Random(i))
        g = build_graph(sp, cfg)
        assert g.ops[1].kind == "dwconv" or g.ops[0].kind == "resize"  # expand ratio 1: no expand conv
        assert any(op.kind == "add" and op.name.startswith("s0.b0") for op in g.ops)
        _check(sp, w, cfg)


def test_exported_model_is_checked_and_saved(tmp_path, tiny_weights):
    cfg = TINY.max_config()
    m = to_onnx(TINY, cfg, tiny_weights)
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == OPSET
    names = {i.name for i in m.graph.initializer}
    assert not any("mean" in n or "var" in n for n in names)  # BN is folded
    path = tmp_path / "m.onnx"
    save_onnx(m, path)
    loaded = onnx.load(str(path))
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    assert np.array_equal(_ort_run(loaded, x), _ort_run(m, x))
    # symbolic batch: the same model takes other batch sizes
    assert _ort_run(loaded, x[:1]).shape == (1, 10)


def test_reference_rejects_bad_input(tiny_weights):
    g = build_graph(TINY, TINY.max_config())
    with pytest.raises(reference.ReferenceError, match="input has shape"):
        reference.run(g, tiny_weights, np.zeros((1, 27, 28, 1), np.float32))
    w = dict(tiny_weights)
    del w["stem.conv.weight"]
    with pytest.raises(reference.ReferenceError, match="missing tensor 'stem.conv.weight'"):
        reference.run(g, w, np.zeros((1, 28, 28, 1), np.float32))


def test_resize_bilinear_known_values():
    x = np.arange(4, dtype=np.float64).reshape(1, 2, 2, 1)   # [[0,1],[2,3]]
    up = reference.resize_bilinear(x, 4, 4)[0, :, :, 0]
    # half-pixel centres: output pixel i maps to (i + 0.5) / 2 - 0.5, clamped
    assert np.allclose(up[0], [0, 0.25, 0.75, 1])
    assert np.allclose(up[:, 0], [0, 0.5, 1.5, 2])
    assert np.allclose(reference.resize_bilinear(x, 2, 2), x)
    assert np.allclose(reference.resize_bilinear(x, 1, 1), 1.5)
