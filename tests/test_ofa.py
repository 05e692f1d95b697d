"""Once-for-All import against OFA's own code (the `ofa` package from PyPI,
mit-han-lab): its OFAMobileNetV3 with random weights (no download), our
import, and for 20 random subnets per width our NumPy reference and native
engine equal OFA's eval-mode forward with set_active_subnet.

`ofa` imports torchvision only for its ImageNet data-loading helpers; the
test puts a minimal stand-in module in sys.modules while importing it
(torchvision's CUDA-sized wheel is not needed for the networks)."""
from __future__ import annotations

import random
import subprocess
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ofa")

from adaptive_rt.model import reference  # noqa: E402
from adaptive_rt.engine import Engine  # noqa: E402
from adaptive_rt.model.graph import build_graph  # noqa: E402
from adaptive_rt.train.ofa import OfaImportError, import_ofa, ofa_space, ofa_supernet, ofa_tensors  # noqa: E402

TOL = 1e-4


def _ofa_class():
    stand_in = {}
    tv = types.ModuleType("torchvision")
    tv.__path__ = []
    for sub in ("transforms", "transforms.functional", "datasets"):
        m = types.ModuleType("torchvision." + sub)
        m.__path__ = []
        stand_in["torchvision." + sub] = m
    tf = stand_in["torchvision.transforms"]
    for name in ("RandomResizedCrop", "Compose", "ToTensor", "Normalize", "Resize", "CenterCrop",
                 "RandomHorizontalFlip", "ColorJitter", "InterpolationMode"):
        setattr(tf, name, type(name, (), {}))
    tf.functional = stand_in["torchvision.transforms.functional"]
    tv.transforms, tv.datasets = tf, stand_in["torchvision.datasets"]
    stand_in["torchvision"] = tv
    saved = {k: sys.modules.get(k) for k in stand_in}
    sys.modules.update(stand_in)
    try:
        from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return OFAMobileNetV3


def _random_ofa(width: float):
    net = _ofa_class()(n_classes=1000, dropout_rate=0, width_mult=width, ks_list=[3, 5, 7],
                       expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():   # non-trivial BN statistics and kernel transforms, so the test can fail
        for n, t in net.state_dict().items():
            if n.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif n.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif n.endswith("_matrix"):
                t.copy_(torch.eye(t.shape[0]) + 0.1 * torch.randn(t.shape, generator=g))
            elif n.endswith(("bn.weight", "bn.bn.weight")):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif n.endswith("bias"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return net.eval()


def _activate(net, space, cfg):
    ks, es, ds = [], [], []
    for s in range(1, len(space.stages)):
        d = len(cfg.kernels[s])
        ks += list(cfg.kernels[s]) + [3] * (4 - d)
        es += [int(e) for e in cfg.expands[s]] + [3] * (4 - d)
        ds.append(d)
    net.set_active_subnet(ks=ks, e=es, d=ds)


@pytest.mark.parametrize("width", [1.0, 1.2])
def test_import_equals_ofa_forward(tmp_path, width):
    net = _random_ofa(width)
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    space = ofa_space(width)
    rng = random.Random(int(width * 10))
    configs = list(dict.fromkeys([space.min_config(), space.max_config()] + [space.sample(rng) for _ in range(30)]))[:20]
    pool = import_ofa(state, width, tmp_path / "ofa.safetensors", configs=configs)
    eng = Engine(pool)
    weights = ofa_tensors(state, space)
    worst = 0.0
    for e, cfg in zip(pool.entries, configs):
        r = cfg.resolution
        x = np.random.default_rng(r).random((1, r, r, 3), dtype=np.float32)
        _activate(net, space, cfg)
        with torch.no_grad():
            want = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
        scale = np.abs(want).max()
        ref = reference.run(build_graph(space, cfg, (r, r)), weights, x, "")
        native = eng.run(eng.plan(e, (r, r)), x)
        for got in (ref, native):
            worst = max(worst, np.abs(got - want).max() / scale)
    assert worst <= TOL, worst
    # the torch supernet holding the imported weights agrees too (BN recalibration and accuracy use it)
    sn = ofa_supernet(state, space)
    cfg = configs[-1]
    r = cfg.resolution
    x = np.random.default_rng(0).random((1, r, r, 3), dtype=np.float32)
    _activate(net, space, cfg)
    with torch.no_grad():
        want = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
        got = sn(torch.from_numpy(x), cfg).numpy()
    assert np.abs(got - want).max() <= TOL * np.abs(want).max()


def test_wrong_checkpoint_names_the_tensor(tmp_path):
    net = _random_ofa(1.0)
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    with pytest.raises(OfaImportError, match="first_conv.conv.weight.*has shape"):
        import_ofa(state, 1.2, tmp_path / "x.safetensors")          # a w1.0 checkpoint read as w1.2
    del state["blocks.7.conv.depth_conv.conv.7to5_matrix"]
    with pytest.raises(OfaImportError, match="blocks.7.conv.depth_conv.conv.7to5_matrix"):
        import_ofa(state, 1.0, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def subnet_mflops(space, config) -> float:
    from adaptive_rt.model.graph import subnet_cost
    return subnet_cost(space, config).mflops


def _tiny_space():
    from adaptive_rt.model.presets import get_space
    return get_space("mbv3-tiny28")


def test_entries_spread_over_device_latency(tmp_path):
    state = {k: v.numpy() for k, v in _random_ofa(1.0).state_dict().items()}
    done, known = [], []
    pool = import_ofa(state, 1.0, tmp_path / "lat.safetensors", buckets=3, metric="latency",
                      progress=done.append, expect=known.append)
    # the progress bar's total grows as work is known and ends where the work does
    assert sum(known) == len(done) and len(known) >= 3 and done[-1].startswith("e2:")
    lat = [e.latency_ms for e in pool.entries]
    assert all(v is not None and v > 0 for v in lat) and lat == sorted(lat) and lat[-1] > 2 * lat[0]
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "inspect", str(tmp_path / "lat.safetensors")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "ms (pred.)" in r.stdout and "imported: once-for-all" in r.stdout
    with pytest.raises(OfaImportError, match="unknown metric"):
        import_ofa(state, 1.0, tmp_path / "x.safetensors", metric="joules")
    # a table made on another device (adaptive-rt latency-table there): used as is, not measured here
    from adaptive_rt.serve.latency import LatencyTable
    from adaptive_rt.train.ofa import ofa_space
    space = ofa_space(1.0)
    made = LatencyTable.fit(space, 1, [(c, 0.01 * subnet_mflops(space, c)) for c in
                                       [space.min_config(), space.max_config()] + [space.sample(i) for i in range(8)]])
    made.save(str(tmp_path / "dev.json"))
    done.clear()
    pool = import_ofa(state, 1.0, tmp_path / "dev.safetensors", buckets=3, metric="latency",
                      latency_table=str(tmp_path / "dev.json"), progress=done.append)
    assert [e.latency_ms for e in pool.entries] == pytest.approx([made.predict(e.config) for e in pool.entries])
    assert len(done) == 4      # the mapping and three entries: nothing measured
    made = LatencyTable.fit(_tiny_space(), 1, [(c, 1.0) for c in [_tiny_space().min_config()] * 8])
    made.save(str(tmp_path / "tiny.json"))
    with pytest.raises(OfaImportError, match="another search space"):
        import_ofa(state, 1.0, tmp_path / "x.safetensors", metric="latency", latency_table=str(tmp_path / "tiny.json"))
    with pytest.raises(OfaImportError, match="for metric latency"):
        import_ofa(state, 1.0, tmp_path / "x.safetensors", latency_table=str(tmp_path / "dev.json"))


@pytest.mark.slow
def test_import_ofa_cli_with_data(tmp_path):
    """The CLI on a real checkpoint file (torch.save of OFA's state dict, read
    back with weights_only=True), recalibrating BN per entry on real images
    (scikit-learn's digits as 3-channel NHWC: the mechanics, not ImageNet
    accuracy), then served by the runtime."""
    from sklearn.datasets import load_digits
    d = load_digits()
    # 80 images, one calibration batch: the largest entry runs them at 224x224 in torch (~0.2 s an image here)
    x = np.repeat((d.images / 16.0).astype(np.float32)[..., None], 3, axis=3)[:80]
    np.savez(tmp_path / "digits3.npz", x=x, y=d.target[:80])
    ckpt = tmp_path / "ofa.pth"
    torch.save({"state_dict": _random_ofa(1.0).state_dict()}, ckpt)
    out = tmp_path / "pool.safetensors"
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "import-ofa", str(ckpt), "--width", "1.0", "--buckets",
                        "2", "--data", str(tmp_path / "digits3.npz"), "--calib-batches", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    from adaptive_rt.io.poolfile import load_pool
    pool = load_pool(out)
    assert len(pool.entries) == 2 and all(e.accuracy is not None and e.dataset == "digits3.npz" for e in pool.entries)
    # recalibrated statistics differ from the supernet's own
    e = pool.entries[0]
    g = pool.graph(e)
    first = next(iter(g.bn_refs()))
    own = ofa_tensors({k: v.numpy() for k, v in _random_ofa(1.0).state_dict().items()}, pool.space)[first.mean()]
    assert not np.allclose(pool.tensors[first.mean(e.bn)], own[:first.channels])
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "import-ofa", str(bad), "--width", "1.0", "--out",
                        str(tmp_path / "b.safetensors")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "bad.pth" in r.stderr
    last = r.stderr.rstrip("\n").split("\n")[-1].split("\r")[-1]   # the error on a line of its own, not the bar's
    assert last.startswith("adaptive-rt") and "bad.pth" in last, r.stderr
