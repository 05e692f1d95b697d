"""Supernet training: torch supernet == NumPy reference on packed weights,
sampler behaviour, a smoke run of every sampler, resume, build-pool."""
from __future__ import annotations

import concurrent.futures
import json
import random
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adaptive_rt.model import reference  # noqa: E402
from adaptive_rt.io.data import load_dataset  # noqa: E402
from adaptive_rt.model.graph import build_graph  # noqa: E402
from adaptive_rt.io.poolfile import load_pool  # noqa: E402
from adaptive_rt.model.presets import get_space  # noqa: E402
from adaptive_rt.train.loop import Trainer, TrainConfig  # noqa: E402
from adaptive_rt.train.samplers import PSS, SAMPLERS, make_sampler  # noqa: E402
from adaptive_rt.train.supernet import Supernet  # noqa: E402

TINY = get_space("mbv3-tiny28")


def _randomize(net: Supernet) -> None:
    with torch.no_grad():
        for n, p in net.params.items():
            if n.endswith("bn__weight"):
                p.uniform_(0.5, 1.5)
            elif n.endswith("bias"):
                p.normal_(0, 0.1)
            elif "__dw__t" in n:
                p.add_(torch.randn_like(p) * 0.1)
        for n, b in net.named_buffers():
            (b.normal_(0, 0.2) if n.endswith("mean") else b.uniform_(0.5, 2.0))


def _check_equal(net: Supernet, configs, input_hw=(28, 28)):
    net.eval()
    packed = net.pack()
    for cfg in configs:
        g = build_graph(net.space, cfg, input_hw)
        x = np.random.default_rng(0).random((3,) + g.input_shape, dtype=np.float32)
        ref = reference.run(g, packed, x)
        with torch.no_grad():
            got = net(torch.from_numpy(x), cfg).numpy()
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), cfg.id


def test_supernet_equals_reference_on_packed_weights():
    net = Supernet(TINY, seed=1)
    _randomize(net)
    configs = [TINY.min_config(), TINY.max_config()] + [TINY.sample(random.Random(i)) for i in range(22)]
    _check_equal(net, configs)
    _check_equal(net, configs[:4], input_hw=(8, 8))      # through the resize op


def test_equal_after_a_kernel_transform_step():
    net = Supernet(TINY, seed=2)
    _randomize(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    cfg = TINY.min_config()                                 # 3x3 kernels: the transforms get gradients
    loss = net(torch.rand(4, 28, 28, 1), cfg).square().mean()
    loss.backward()
    t = [p for n, p in net.params.items() if "__dw__t" in n]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in t)
    before = [p.detach().clone() for p in t]
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, t))
    _check_equal(net, [cfg, TINY.sample(random.Random(5))])


def test_bn_recalibration_is_cumulative_and_restores_supernet_stats():
    net = Supernet(TINY, seed=0)
    before = {n: b.clone() for n, b in net.named_buffers()}
    xs = [torch.rand(8, 28, 28, 1) for _ in range(3)]
    stats = net.recalibrate_bn(TINY.max_config(), xs, "bn.e0.")
    w = net.tensor("stem.conv.weight").reshape(3, 3, 1, -1).permute(3, 2, 0, 1)
    pre = torch.cat([torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), w, padding=1) for x in xs])
    assert np.allclose(stats["bn.e0.stem.conv.bn.mean"], pre.mean((0, 2, 3)).detach().numpy(), atol=1e-5)
    assert all(torch.equal(b, before[n]) for n, b in net.named_buffers())


# ----------------------------------------------------------------------------- samplers
def test_sandwich_trains_max_and_min_every_step():
    s = make_sampler("sandwich", TINY, seed=0)
    for step in range(20):
        tasks = s.tasks(step, step / 20)
        assert tasks[0].config == TINY.max_config() and not tasks[0].kd
        assert tasks[1].config == TINY.min_config() and tasks[1].kd
        assert len(tasks) == 4 and all(t.kd for t in tasks[1:])


def test_ps_phases_advance():
    s = make_sampler("ps", TINY, seed=0)
    phases = [s.phase(p / 100) for p in range(100)]
    assert phases[0] == "full" and phases[-1] == "width"
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert order == ["full", "kernel", "depth", "width"]
    assert len(s.tasks(0, 0.0)) == 1
    k = s.tasks(1, 0.3)[1].config
    mx = TINY.max_config()
    assert k.depths == mx.depths and k.expands == mx.expands and k.widths == mx.widths


def test_rss_draws_uniformly_and_keeps_a_subnet_for_a_while():
    s = make_sampler("rss", TINY, seed=0, switch_every=5)
    assert s.tasks(0, 0)[0].config == s.tasks(4, 0)[0].config != s.tasks(5, 0)[0].config
    counts = {k: 0 for k in TINY.stages[1].kernel_sizes}
    for step in range(0, 5 * 900, 5):
        for k in s.tasks(step, 0)[0].config.kernels[1]:
            counts[k] += 1
    total = sum(counts.values())
    for v in counts.values():
        assert abs(v / total - 1 / 3) < 0.05, counts


def test_pss_pools_fill_respect_capacity_and_buckets():
    s = make_sampler("pss", TINY, seed=0, buckets=4, capacity=5)
    assert isinstance(s, PSS) and s.decay(0) == 1.0 and s.decay(1.0) == pytest.approx(0.01)
    assert s.decay(0.5) < s.decay(0.2)                      # exploration decays
    rng = random.Random(0)
    for step in range(400):
        cfg = s.draw(step, step / 400)
        s.observe(cfg, rng.random(), step, step / 400)
    for b, pool in enumerate(s.pools):
        assert len(pool) <= 5
        for cid in pool:
            from adaptive_rt.model.space import SubnetConfig
            assert s.bucket(SubnetConfig.from_id(cid)) == b
    assert sum(len(p) for p in s.pools) >= 12
    st = json.loads(json.dumps(s.state_dict()))
    s2 = make_sampler("pss", TINY, seed=0, buckets=4, capacity=5)
    s2.load_state_dict(st)
    assert s2.pools == s.pools


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.mark.slow
def test_every_sampler_one_epoch_on_digits(tmp_path, digits):
    digits = _few(digits)
    for name in sorted(SAMPLERS):
        cfg = TrainConfig(sampler=name, dataset="digits", epochs=1, batch_size=128, seed=0)
        tr = Trainer(cfg, digits, TINY, str(tmp_path / name))
        rec = tr.train_epoch()
        assert np.isfinite(rec["loss"])
        tr.save()
        again = Trainer(cfg, digits, TINY, str(tmp_path / name))
        again.load()
        assert again.epoch == 1 and again.step == tr.step
        for (n, p), (_, q) in zip(tr.net.params.items(), again.net.params.items()):
            assert torch.equal(p, q), n


def _few(d, n: int = 384):
    """The first ``n`` training digits only (3 steps an epoch at batch 128): the code paths, quickly."""
    from dataclasses import replace
    return replace(d, x_train=d.x_train[:n], y_train=d.y_train[:n])


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path, digits):
    cfg = TrainConfig(sampler="pss", dataset="digits", epochs=2, batch_size=128, seed=3)
    digits = _few(digits)
    a = Trainer(cfg, digits, TINY, str(tmp_path / "a"))
    a.train_epoch()
    a.train_epoch()
    b = Trainer(cfg, digits, TINY, str(tmp_path / "b"))
    b.train_epoch()
    b.save()
    c = Trainer(cfg, digits, TINY, str(tmp_path / "b"))
    c.load()
    c.train_epoch()
    for (n, p), (_, q) in zip(a.net.params.items(), c.net.params.items()):
        assert torch.allclose(p, q, atol=1e-6, rtol=0), n
    assert a.sampler.state_dict().keys() == c.sampler.state_dict().keys()


def test_semi_supervised_hides_labels(digits):
    cfg = TrainConfig(sampler="sandwich", dataset="digits", epochs=1, labeled_fraction=0.2, seed=0)
    tr = Trainer(cfg, digits, TINY, "/nonexistent")
    frac = float(tr.labeled.float().mean())
    assert 0.17 < frac < 0.23
    for c in range(10):
        assert tr.labeled[torch.from_numpy(digits.y_train == c)].any()
    assert np.isfinite(tr.train_step(tr.x[:64], tr.y[:64], tr.labeled[:64])["loss"])


@pytest.mark.parametrize("sampler", ["uniform", "rss"])
def test_unlabelled_images_teach_samplers_without_the_max_net(digits, sampler):
    """Samplers that never train the largest subnet still learn from the
    unlabelled images through the FixMatch term: with no labels in the batch
    the loss is that term alone, and with every pseudo-label taken
    (threshold 0) it is not zero."""
    cfg = TrainConfig(sampler=sampler, dataset="digits", epochs=1, labeled_fraction=0.2, seed=0, threshold=0.0)
    tr = Trainer(cfg, digits, TINY, "/nonexistent")
    assert tr.unlabelled_weight(0.0) == 0.0 and tr.unlabelled_weight(0.5) == 1.0
    tr.step = tr.total_steps // 2       # past the pseudo-label term's ramp
    unl = ~tr.labeled
    xb, yb = tr.x[unl][:32], tr.y[unl][:32]
    r = tr.train_step(xb, yb, torch.zeros(len(yb), dtype=torch.bool))
    assert r["loss"] > 0 and np.isfinite(r["loss"])


@pytest.mark.parametrize("sampler", ["pss", "sandwich"])
def test_a_batch_without_labels_does_not_stop_training(digits, sampler):
    """The README's semi-supervised example died at the first batch with no
    labelled image (the largest subnet's loss had no gradient)."""
    cfg = TrainConfig(sampler=sampler, dataset="digits", epochs=1, labeled_fraction=0.2, seed=0)
    tr = Trainer(cfg, digits, TINY, "/nonexistent")
    unl = ~tr.labeled
    r = tr.train_step(tr.x[unl][:32], tr.y[unl][:32], torch.zeros(32, dtype=torch.bool))
    assert np.isfinite(r["loss"]) and tr.step == 1


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "adaptive_rt", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("args, needle", [
    (["--dataset", "nope", "--sampler", "rss"], "unknown dataset"),
    (["--dataset", "digits", "--sampler", "nope"], "invalid choice: 'nope'"),
    (["--dataset", "digits", "--labeled-fraction", "0"], "must be in (0, 1]"),
    (["--dataset", "digits", "--labeled-fraction", "1.5"], "must be in (0, 1]"),
    (["--dataset", "digits", "--resume"], "no checkpoint"),
])
def test_train_cli_bad_arguments(tmp_path, args, needle):
    r = _cli("train", "--out", tmp_path / "run", *args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_train_cli_unwritable_out(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = _cli("train", "--dataset", "digits", "--out", f / "sub")
    assert r.returncode == 2 and "cannot write" in r.stderr


@pytest.mark.slow
def test_train_and_build_pool_cli(tmp_path):
    run = tmp_path / "run"
    r = _cli("train", "--dataset", "digits", "--sampler", "pss", "--epochs", "1", "--out", run, "--batch-size", "128")
    assert r.returncode == 0, r.stderr[-2000:]
    out, out2 = tmp_path / "pool.safetensors", tmp_path / "margin.safetensors"
    # the pool, the pool under a validation margin and a refused margin: three processes side by side
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        jobs = [ex.submit(_cli, "build-pool", run, "--buckets", "3", "--candidates", "2", "--out", out),
                ex.submit(_cli, "build-pool", run, "--buckets", "3", "--candidates", "2", "--min-gain", "99",
                          "--out", out2),
                ex.submit(_cli, "build-pool", run, "--min-gain", "-1", "--out", tmp_path / "x.safetensors")]
        r, r2, r3 = (j.result() for j in jobs)
    assert r.returncode == 0, r.stderr[-2000:]
    pool = load_pool(out)
    costs = [e.mflops for e in pool.entries]
    assert costs == sorted(costs) and len(pool.entries) >= 2
    # each entry is the pick of its own resource bucket: no two share one
    from adaptive_rt.model.graph import subnet_cost
    from adaptive_rt.train.pool import bucket_edges
    edges = bucket_edges(pool.space, 3, lambda c: subnet_cost(pool.space, c).mflops)
    buckets = [sum(c >= e for e in edges[1:-1]) for c in costs]
    assert len(set(buckets)) == len(buckets), (costs, edges)
    assert all(e.accuracy is not None and e.dataset == "digits" for e in pool.entries)
    # the pool's accuracy is what the reference executor measures on the test split
    d = load_dataset("digits", seed=0)
    e = pool.entries[-1]
    g = build_graph(pool.space, e.config, (8, 8))
    logits = reference.run(g, pool.tensors, d.x_test, e.bn)
    assert abs(float((logits.argmax(1) == d.y_test).mean()) - e.accuracy) < 0.01
    # a validation margin keeps a subset of those entries, and says which it left out
    assert r2.returncode == 0, r2.stderr[-2000:]
    few = load_pool(out2)
    assert len(few.entries) == 1 and few.entries[0].config == pool.entries[0].config
    assert "no cheaper entry trails by more than 99 points" in r2.stdout
    assert json.loads(few.metadata["adaptive_rt.build"])["min_gain"] == 0.99
    assert r3.returncode == 2 and "--min-gain" in r3.stderr and not (tmp_path / "x.safetensors").exists()


def test_channel_sorting_keeps_the_full_net_and_orders_importance():
    net = Supernet(TINY, seed=4)
    _randomize(net)
    net.eval()
    x = torch.rand(2, 28, 28, 1)
    mx = TINY.max_config()
    with torch.no_grad():
        before = net(x, mx)
    net.sort_channels()
    with torch.no_grad():
        after = net(x, mx)
    assert torch.allclose(before, after, atol=1e-5 * float(before.abs().max()))
    norms = net.tensor("s1.b0.project.weight").abs().sum(1)
    assert torch.all(norms[:-1] >= norms[1:])
    _check_equal(net, [TINY.sample(random.Random(9))])


def test_ps_sorts_channels_once_at_the_width_phase():
    s = make_sampler("ps", TINY, seed=0)
    flags = [s.sort_channels_now((i - 1) / 100 if i else -1.0, i / 100) for i in range(100)]
    assert sum(flags) == 1 and s.phase(flags.index(True) / 100) == "width"


def test_gene_codec_round_trips_every_choice():
    from adaptive_rt.train.search import GeneCodec
    codec = GeneCodec(TINY)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        genes = rng.integers(0, codec.upper + 1)
        c = codec.decode(genes)
        c.validate(TINY)
        seen.add(c.depths)
    assert len(seen) > 10
    assert codec.decode(codec.upper) == TINY.max_config()
    assert codec.decode(np.zeros(codec.n_var)) == TINY.min_config()


@pytest.mark.slow
def test_build_pool_with_nsga2(tmp_path, digits):
    from adaptive_rt.train.pool import build_pool
    cfg = TrainConfig(sampler="sandwich", dataset="digits", epochs=1, batch_size=128, seed=0)
    tr = Trainer(cfg, _few(digits), TINY, str(tmp_path / "run"))
    tr.train_epoch()
    tr.save()
    pool = build_pool(str(tmp_path / "run"), str(tmp_path / "p.safetensors"), buckets=2, per_bucket=2,
                      search="nsga2")
    costs = [e.mflops for e in pool.entries]
    assert costs == sorted(costs) and len(costs) >= 2
    assert pool.entries[0].config == TINY.min_config() or costs[0] <= costs[-1] / 2


def test_checkpoint_commit_point_and_untrusted_file_names(tmp_path, digits):
    import dataclasses
    small = dataclasses.replace(digits, x_train=digits.x_train[:128], y_train=digits.y_train[:128])
    cfg = TrainConfig(sampler="sandwich", dataset="digits", epochs=2, batch_size=64, seed=0)
    run = tmp_path / "run"
    a = Trainer(cfg, small, TINY, str(run))
    a.train_epoch()
    a.save()
    state = json.loads((run / "state.json").read_text())
    assert state["files"] == {"checkpoint": "checkpoint-e1.safetensors", "optimizer": "optimizer-e1.safetensors"}
    # a crash while epoch 2's tensors were being written: state.json still names epoch 1's files
    (run / "checkpoint-e2.safetensors").write_bytes(b"half a file")
    b = Trainer(cfg, small, TINY, str(run))
    b.load()
    assert b.epoch == 1
    for (n, p), (_, q) in zip(a.net.params.items(), b.net.params.items()):
        assert torch.equal(p, q), n
    # the next save commits epoch 2 and removes the stale files
    b.train_epoch()
    b.save()
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint-e2.safetensors", "optimizer-e2.safetensors",
                                                     "state.json"]
    # file names read back are never used as paths as given
    for bad in ("../../etc/passwd", "/etc/passwd", "checkpoint-e2.safetensors/..", 7):
        st = json.loads((run / "state.json").read_text())
        st["files"]["checkpoint"] = bad
        (run / "state.json").write_text(json.dumps(st))
        with pytest.raises(ValueError, match="invalid checkpoint file name"):
            Trainer(cfg, small, TINY, str(run)).load()
    # a checkpoint of another space is refused with the tensor named
    st["files"]["checkpoint"] = "checkpoint-e2.safetensors"
    (run / "state.json").write_text(json.dumps(st))
    from safetensors.torch import save_file
    save_file({"p.nope": torch.zeros(1)}, str(run / "checkpoint-e2.safetensors"))
    with pytest.raises(ValueError, match="missing or of another shape"):
        Trainer(cfg, small, TINY, str(run)).load()


def test_written_out_bn_equals_batch_norm_and_float64(digits):
    """--bn sync's written-out training BN (Supernet._batch_bn, no process
    group: one process) computes what F.batch_norm computes — forward,
    running statistics — and matches a float64 run, gradients included."""
    x = torch.from_numpy(digits.x_train[:64])
    y = torch.from_numpy(digits.y_train[:64]).long()
    c = TINY.max_config()
    out, grads, stats = {}, {}, {}
    for name, exact, dtype in (("fused", False, torch.float32), ("exact", True, torch.float32),
                               ("f64", False, torch.float64)):
        net = Supernet(TINY, seed=0).to(dtype)
        net.train()
        net.exact_bn = exact
        logits = net(x.to(dtype), c)[:, :10]
        torch.nn.functional.cross_entropy(logits, y).backward()
        out[name] = logits.detach().double()
        grads[name] = {k: p.grad.double() for k, p in net.params.items() if p.grad is not None}
        stats[name] = {k: b.double() for k, b in net.named_buffers()}

    def rel(a, b):
        num = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a)
        return (num / sum(float((b[k] ** 2).sum()) for k in a)) ** 0.5
    top = float(out["f64"].abs().max())
    assert torch.allclose(out["exact"], out["f64"], atol=1e-5 * top)
    assert torch.allclose(out["fused"], out["f64"], atol=1e-3 * top)     # the same function, its own rounding
    assert rel(stats["exact"], stats["f64"]) < 1e-5
    # 8x8 digits upsampled: BN channels of near-zero variance make this an ill-conditioned check
    assert rel(grads["exact"], grads["f64"]) < 2e-3


@pytest.mark.slow
def test_build_pool_cli_refuses_a_tampered_run(tmp_path, digits):
    cfg = TrainConfig(sampler="sandwich", dataset="digits", epochs=1, batch_size=128, seed=0)
    run = tmp_path / "run"
    Trainer(cfg, digits, TINY, str(run)).save()
    st = json.loads((run / "state.json").read_text())
    st["files"]["optimizer"] = "../optimizer-e0.safetensors"
    (run / "state.json").write_text(json.dumps(st))
    r = _cli("build-pool", run, "--out", tmp_path / "p.safetensors")
    assert r.returncode == 2 and "invalid optimizer file name" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "p.safetensors").exists()


@pytest.mark.parametrize("name", ["mbv3-tiny28", "mbv3-224"])
def test_pss_samples_the_whole_cost_range(name):
    """Every bucket has candidates and gets drawn — the top of the range
    too, which uniform draws left empty (so it was never trained)."""
    from adaptive_rt.model.presets import get_space
    from adaptive_rt.train.samplers import PSS
    p = PSS(get_space(name), seed=0)
    assert all(len(c) >= 20 for c in p.candidates), [len(c) for c in p.candidates]
    hits = [0] * p.num_buckets
    for step in range(400):
        c = p.draw(step, 0.0)
        hits[p.bucket(c)] += 1
    assert min(hits) >= 20, hits
    top = [c for c in p.candidates[-1]]
    assert all(p.metric(c) >= p.edges[-2] for c in top)


def test_pareto_front_drops_what_can_never_be_served():
    """The defect of the pool shipped before the Pareto filter: e1, e2, e4 cost more than e0 and are less
    accurate — the policy (most accurate entry that fits) never serves them."""
    from adaptive_rt.train.pool import pareto_front
    items = [(0.62, 0.9787, "e0"), (2.22, 0.9693, "e1"), (2.31, 0.9680, "e2"), (3.99, 0.9747, "e4"),
             (5.59, 0.9850, "e5"), (1.00, 0.9787, "tie"), (0.62, 0.95, "same-cost-worse")]
    kept, dropped = pareto_front(items)
    assert [x for _, _, x in kept] == ["e0", "e5"]
    assert {x for _, _, x in dropped} == {"e1", "e2", "e4", "tie", "same-cost-worse"}
    accs = [a for _, a, _ in kept]
    assert accs == sorted(accs) and len(set(accs)) == len(accs)


def test_pareto_front_with_a_margin_keeps_only_clear_steps():
    """min_gain: an entry stays only if it beats every cheaper kept entry by more than the margin."""
    from adaptive_rt.model.pareto import pareto_front
    items = [(1.0, 0.970, "a"), (2.0, 0.972, "b"), (3.0, 0.974, "c"), (4.0, 0.975, "d"), (5.0, 0.978, "e")]
    assert [x for _, _, x in pareto_front(items)[0]] == ["a", "b", "c", "d", "e"]
    kept, dropped = pareto_front(items, min_gain=0.003)     # b +0.2 over a, c +0.4, d +0.1 over c, e +0.4
    assert [x for _, _, x in kept] == ["a", "c", "e"] and [x for _, _, x in dropped] == ["b", "d"]
    with pytest.raises(ValueError, match="min_gain"):
        pareto_front(items, min_gain=-0.1)


def test_semi_streams_put_labels_in_every_step(digits):
    """Two streams: every FixMatch step has its labelled share; the
    labelled-only baseline draws its whole batch from the labelled images;
    both take the same number of steps per epoch."""
    for semi, share in (("fixmatch", 0.25), ("labelled-only", 1.0)):
        cfg = TrainConfig(sampler="sandwich", dataset="digits", epochs=1, labeled_fraction=0.1, seed=3,
                          batch_size=64, semi=semi, labelled_share=0.25)
        tr = Trainer(cfg, digits, TINY, "/nonexistent")
        batches = tr._batches(torch.Generator().manual_seed(0))
        assert len(batches) == tr.steps_per_epoch
        for b in batches:
            lab = tr.labeled[b]
            assert len(b) == 64 and int(lab.sum()) == round(64 * share)
        if semi == "fixmatch":   # the unlabelled stream covers the unlabelled images before repeating any
            seen = torch.cat([b[~tr.labeled[b]] for b in batches])
            n_unl = int((~tr.labeled).sum())
            assert len(set(seen[:n_unl].tolist())) == min(n_unl, len(seen))


def test_fixmatch_teacher_is_an_average_and_survives_resume(digits, tmp_path):
    cfg = TrainConfig(sampler="sandwich", dataset="digits", epochs=2, labeled_fraction=0.1, seed=0,
                      batch_size=128, threshold=0.5)
    digits = _few(digits)
    a = Trainer(cfg, digits, TINY, str(tmp_path / "a"))
    k = next(iter(a.net.params))
    assert torch.equal(a.teacher.params[k], a.net.params[k])
    before = a.net.params[k].detach().clone()
    r = a.train_step(a.x[:64], a.y[:64], a.labeled[:64])
    assert 0.0 <= r["confident"] <= 1.0
    # after one step the teacher is 0.99 old + 0.01 new weights: between them, and not the new ones
    want = 0.99 * before + 0.01 * a.net.params[k].detach()
    assert torch.allclose(a.teacher.params[k], want, atol=1e-6)
    assert not torch.equal(a.teacher.params[k], a.net.params[k])
    a.train_epoch()
    a.save()
    b = Trainer(cfg, digits, TINY, str(tmp_path / "a"))
    b.load()
    for n in a.teacher.params:
        assert torch.equal(a.teacher.params[n], b.teacher.params[n]), n
    a.train_epoch()
    b.train_epoch()
    for (n, p), (_, q) in zip(a.net.params.items(), b.net.params.items()):
        assert torch.allclose(p, q, atol=1e-6, rtol=0), n


def test_augment_views_are_seeded_and_differ():
    from adaptive_rt.train.augment import strong, weak
    x = torch.rand(8, 28, 28, 1)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    w1, w2 = weak(x, g1), weak(x, g2)
    assert torch.equal(w1, w2) and w1.shape == x.shape and not torch.equal(w1, x)
    s = strong(x, torch.Generator().manual_seed(6))
    assert s.shape == x.shape and torch.isfinite(s).all()
    assert (s - x).abs().mean() > (w1 - x).abs().mean() * 0.5


def test_fixmatch_batch_must_feed_every_rank_both_streams(digits):
    from adaptive_rt.train.distributed import Dist
    cfg = TrainConfig(sampler="sandwich", dataset="digits", epochs=1, labeled_fraction=0.1, batch_size=3)
    with pytest.raises(ValueError, match="at least twice the 2 processes"):
        Trainer(cfg, digits, TINY, "/nonexistent", dist=Dist(rank=0, world=2, backend="gloo"))
