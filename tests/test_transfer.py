"""train --init: a run, a pool file or an OFA checkpoint as the starting
supernet; a new classifier where the class count differs; clear refusals."""
from __future__ import annotations

import concurrent.futures
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adaptive_rt.io.data import load_dataset  # noqa: E402
from adaptive_rt.io.poolfile import load_pool  # noqa: E402
from adaptive_rt.model.presets import get_space  # noqa: E402
from adaptive_rt.train.loop import TrainConfig, Trainer  # noqa: E402
from adaptive_rt.train.transfer import InitError, for_data, load_init  # noqa: E402

TINY = get_space("mbv3-tiny28")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "adaptive_rt", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_pool_init_recovers_the_supernet(tmp_path):
    """From the shipped pool: every stored kernel size of every elastic
    depthwise layer comes back (the transforms fitted), and subnets score
    what the pool's entries score (BN recalibrated)."""
    pool = load_pool("mnist5k-mbv3")
    init = load_init("mnist5k-mbv3")
    assert init.space.to_dict() == pool.space.to_dict() and not init.buffers
    data = load_dataset("mnist5k", seed=0)
    tr = Trainer(TrainConfig(space=TINY.name, dataset="mnist5k"), data, pool.space, str(tmp_path))
    assert tr.init_weights(init.params, init.buffers) == []
    for name, want in pool.tensors.items():
        if ".dw" in name and name.endswith(".weight") and not name.startswith("bn.") and ".bn." not in name:
            got = tr.net.tensor(name).detach().numpy()
            assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), name
    for e in (pool.entries[0], pool.entries[-2]):
        assert not e.is_int8
        assert abs(tr.evaluate(e.config, split="test") - e.accuracy) <= 0.01, e.id


def test_run_init_is_exact_and_cli_trains_from_it(tmp_path, small_digits):
    src = tmp_path / "src"
    r = _cli("train", "--dataset", small_digits, "--epochs", "1", "--batch-size", "128", "--out", src)
    assert r.returncode == 0, r.stderr[-2000:]
    init = load_init(str(src))
    data = load_dataset("digits", seed=0)
    tr = Trainer(TrainConfig(space=TINY.name, dataset="digits"), data, TINY, str(tmp_path / "x"))
    tr.init_weights(init.params, init.buffers)
    ref = Trainer(TrainConfig(space=TINY.name, dataset="digits"), data, TINY, str(src))
    ref.load()
    for k, p in ref.net.params.items():
        assert torch.equal(p, tr.net.params[k]), k
    for (k, b), (_, b2) in zip(ref.net.named_buffers(), tr.net.named_buffers()):
        assert torch.equal(b, b2), k
    out = tmp_path / "tgt"
    r = _cli("train", "--dataset", small_digits, "--epochs", "1", "--batch-size", "128", "--labeled-fraction", "0.1",
             "--init", src, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"starting from run {src}, epoch 1 (mbv3-tiny28" in r.stdout and "afresh" not in r.stdout
    import json
    assert json.loads((out / "state.json").read_text())["config"]["init"] == str(src)


def test_other_class_count_gets_a_new_classifier(tmp_path):
    d = load_dataset("digits", seed=0)
    keep = d.y_train < 3
    path = tmp_path / "three.npz"
    np.savez(path, x=d.x_train[keep][..., 0], y=d.y_train[keep])
    init = for_data(load_init("mnist5k-mbv3"), 3, 1)
    assert init.space.num_classes == 3 and init.space.name == "mbv3-tiny28-3cls"
    r = _cli("train", "--dataset", path, "--epochs", "1", "--batch-size", "64", "--init", "mnist5k-mbv3",
             "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "initialised afresh: classifier.weight, classifier.bias" in r.stdout
    r = _cli("build-pool", tmp_path / "run", "--buckets", "2", "--candidates", "1", "--out", tmp_path / "p.safetensors")
    assert r.returncode == 0, r.stderr[-2000:]
    pool = load_pool(tmp_path / "p.safetensors")
    assert pool.space.num_classes == 3 and pool.space.name == "mbv3-tiny28-3cls"


def test_ofa_checkpoint_init(tmp_path):
    pytest.importorskip("ofa")
    from test_ofa import _random_ofa
    from adaptive_rt.train.ofa import ofa_space, ofa_supernet
    state = _random_ofa(1.0).state_dict()
    torch.save(state, tmp_path / "ofa.pth")
    init = load_init(str(tmp_path / "ofa.pth"))
    assert init.space.to_dict() == ofa_space(1.0).to_dict()
    want = ofa_supernet({k: v.numpy() for k, v in state.items()}, ofa_space(1.0))
    for k, p in want.params.items():
        assert torch.equal(p.detach(), init.params[k]), k
    with pytest.raises(InitError, match="takes 3-channel images, the dataset has 1 channels"):
        for_data(init, 10, 1)


def test_init_refusals(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    from adaptive_rt.quant.calibrate import quantize_pool
    src = load_pool("mnist5k-mbv3")
    quantize_pool(src, np.zeros((4,) + src.input_shape, np.float32), str(tmp_path / "i8.safetensors"), drop_float=True)
    cases = [(("--init", tmp_path / "nope"), "no such run directory, pool file or checkpoint"),
             (("--init", tmp_path / "notes.txt"), "not a run directory, a pool file or an OFA checkpoint"),
             (("--init", tmp_path / "empty"), "not a training run"),
             (("--init", "mnist5k-mbv3", "--space", "mbv3-224"), "is a supernet of mbv3-tiny28"),
             (("--init", tmp_path / "i8.safetensors"), "an int8-only pool cannot start training")]
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as ex:   # five processes side by side
        runs = [ex.submit(_cli, "train", "--dataset", "digits", "--epochs", "1", *args, "--out", tmp_path / f"o{i}")
                for i, (args, _) in enumerate(cases)]
        for (args, msg), f in zip(cases, runs):
            r = f.result()
            assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
