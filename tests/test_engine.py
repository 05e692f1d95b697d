"""Native engine against the NumPy reference: every entry, random configs of
both presets, every kernel table this CPU has, 1 and 2 threads; concurrency;
bad input."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import threading

import numpy as np
import pytest

from adaptive_rt.model import reference
from adaptive_rt.io.poolfile import load_pool, write_pool
from adaptive_rt.model.presets import get_space
from adaptive_rt.io.randompool import random_pool

engine_mod = pytest.importorskip("adaptive_rt.engine")
Engine = engine_mod.Engine
ISAS = engine_mod.available_isas()
TOL = 1e-4


def _pool(tmp_path_factory, space_name: str, configs, seed: int):
    space = get_space(space_name)
    entries, tensors = random_pool(space, 0, seed=seed, configs=configs)
    path = tmp_path_factory.mktemp("pools") / f"{space_name}.safetensors"
    write_pool(path, space, entries, tensors)
    return path


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    sp = get_space("mbv3-tiny28")
    rng = random.Random(0)
    configs = list(dict.fromkeys([sp.min_config(), sp.max_config()] + [sp.sample(rng) for _ in range(60)]))
    return _pool(tmp_path_factory, "mbv3-tiny28", configs, seed=2)


@pytest.fixture(scope="module")
def big_path(tmp_path_factory):
    sp = get_space("mbv3-224")
    rng = random.Random(1)
    configs = list(dict.fromkeys([sp.min_config(), sp.max_config()] + [sp.sample(rng) for _ in range(50)]))
    return _pool(tmp_path_factory, "mbv3-224", configs, seed=3)


def _references(engine, batch, seed):
    out = {}
    for e in engine.pool.entries:
        g = engine.pool.graph(e)
        x = np.random.default_rng(seed).uniform(0, 1, (batch,) + g.input_shape).astype(np.float32)
        out[e.id] = (x, reference.run(g, engine.pool.tensors, x, e.bn))
    return out


@pytest.fixture(scope="module")
def tiny_refs(tiny_path):
    return _references(Engine.open(tiny_path), batch=2, seed=0)


@pytest.fixture(scope="module")
def big_refs(big_path):
    return _references(Engine.open(big_path), batch=1, seed=1)


def _check_all(path, refs, isa, threads):
    eng = Engine.open(path, max_threads=2, isa=isa)
    assert eng.isa == isa
    worst = 0.0
    for e in eng.pool.entries:
        x, ref = refs[e.id]
        y = eng.run(eng.plan(e.id), x, threads=threads)
        assert y.shape == ref.shape and y.dtype == np.float32
        err = float(np.abs(y - ref).max() / np.abs(ref).max())
        assert err <= TOL, (e.config.id, isa, threads, err)
        worst = max(worst, err)
    return worst


def test_isas_include_scalar_and_best():
    assert "scalar" in ISAS and engine_mod.default_isa() in ISAS


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("isa", ISAS)
def test_tiny_random_configs_match_reference(tiny_path, tiny_refs, isa, threads):
    assert len(tiny_refs) >= 50
    _check_all(tiny_path, tiny_refs, isa, threads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("isa", ISAS)
def test_224_random_configs_match_reference(big_path, big_refs, isa, threads):
    assert len(big_refs) >= 50
    _check_all(big_path, big_refs, isa, threads)


def test_every_entry_of_a_spread_pool(tiny_pool_path):
    eng = Engine.open(tiny_pool_path)
    refs = _references(eng, batch=3, seed=5)
    for e in eng.pool.entries:
        x, ref = refs[e.id]
        y = eng.run(eng.plan(e.id), x)
        assert np.abs(y - ref).max() <= TOL * np.abs(ref).max()


@pytest.mark.parametrize("hw", [(8, 8), (40, 36)])
def test_other_input_sizes_resize(tiny_pool_path, hw):
    eng = Engine.open(tiny_pool_path)
    e = eng.pool.entries[1]
    plan = eng.plan(e.id, input_hw=hw)
    assert plan.graph.ops[0].kind == "resize" and plan.input_shape == hw + (1,)
    x = np.random.default_rng(0).random((2,) + plan.input_shape, dtype=np.float32)
    ref = reference.run(plan.graph, eng.pool.tensors, x, e.bn)
    assert np.abs(eng.run(plan, x) - ref).max() <= TOL * np.abs(ref).max()


def test_224_threads_give_identical_results(big_path):
    """At 224 the thread splits differ by op: row bands (the stem streamed
    into the first block among them: each band makes its own stem rows),
    channel slices of a fused expand->depthwise step on a small map, the
    input resize by rows.
    Every entry's logits are the same bits at 1, 2 and 3 threads."""
    eng = Engine.open(big_path, max_threads=3)
    kinds = set()
    for e in eng.pool.entries[:12]:
        p = eng.plan(e.id)
        kinds |= {s[0] for s in p.native.steps()} | {"ring" for s in p.native.steps() if "ring of" in s[3]}
        kinds |= {"stem" for s in p.native.steps() if s[3].startswith("f32-conv-") and "ring of" in s[3]}
        kinds |= {"pulled" for s in p.native.steps() if "(pulls the rows of" in s[3]}
        x = np.random.default_rng(1).random((1,) + p.input_shape, dtype=np.float32)
        one = eng.run(p, x)
        for threads in (2, 3):
            assert np.array_equal(eng.run(p, x, threads=threads), one), (e.id, threads)
    assert {"resize", "ring", "se", "stem", "pulled"} <= kinds, kinds     # the split paths were exercised


def test_rows_pulled_from_a_block_that_reads_the_arena(tmp_path):
    """A first block whose input is stored (a 5x5 stem on RGB is too many
    taps to stream) and whose output only the second block's expand reads:
    the second block makes its rows as it needs them, the first block's
    input and residual stay live until then, and the logits match the
    reference at 1, 2 and 3 threads."""
    from adaptive_rt.model.space import SearchSpace
    d = get_space("mbv3-224").to_dict()
    d.update(name="stem5", stem_kernel=5)
    space = SearchSpace.from_dict(d)
    rng = random.Random(4)
    configs = [space.max_config(), space.min_config(), space.sample(rng)]
    entries, tensors = random_pool(space, 0, seed=4, configs=configs)
    path = tmp_path / "stem5.safetensors"
    write_pool(path, space, entries, tensors)
    eng = Engine.open(path, max_threads=3)
    for e in eng.pool.entries:
        p = eng.plan(e.id)
        steps = p.native.steps()
        i = next(i for i, st in enumerate(steps) if st[0] == "conv")   # the stem, after the resize if any
        assert "(rows made by " in steps[i + 1][3] and "(pulls the rows of " in steps[i + 2][3], p.describe()
        x = np.random.default_rng(5).uniform(0, 1, (1,) + p.input_shape).astype(np.float32)
        ref = reference.run(p.graph, eng.pool.tensors, x, e.bn)
        for threads in (1, 2, 3):
            y = eng.run(p, x, threads=threads)
            assert np.abs(y - ref).max() <= TOL * np.abs(ref).max(), (e.id, threads)


def test_weights_in_panels_and_row_major_give_identical_results(big_path):
    """A read-mode load holds the 1x1, SE and linear weights in panels; a
    mapped file holds them row-major. Both run the same kernels over the same
    values in the same order: every entry's logits are the same bits at 1
    and 2 threads (the fused, channel-sliced, gated and GEMV paths over both
    layouts)."""
    packed, rows = load_pool(big_path), load_pool(big_path, mode="mmap")
    assert packed.panels and not rows.panels
    a, b = Engine(packed, max_threads=2), Engine(rows, max_threads=2)
    for e in packed.entries:
        pa, pb = a.plan(e.id), b.plan(e.id)
        x = np.random.default_rng(2).random((1,) + pa.input_shape, dtype=np.float32)
        for threads in (1, 2):
            assert np.array_equal(a.run(pa, x, threads=threads), b.run(pb, x, threads=threads)), (e.id, threads)


def test_threads_give_identical_results(tiny_path):
    """Batches split by image across threads (plus a remainder split by op),
    in lockstep groups of up to 8 images, give exactly the one-image-at-a-time
    results, whatever the batch size."""
    eng = Engine.open(tiny_path, max_threads=3)
    x = np.random.default_rng(0).random((11, 28, 28, 1), dtype=np.float32)
    lockstep = 0
    for e in eng.pool.entries[:6]:
        p = eng.plan(e.id)
        lockstep += p.native.lockstep_from < p.native.num_steps
        single = np.concatenate([eng.run(p, x[i:i + 1]) for i in range(len(x))])
        for threads in (1, 2, 3):
            for n in (1, 2, 3, 5, 7, 9, 11):
                assert np.array_equal(eng.run(p, x[:n], threads=threads), single[:n]), (e.id, threads, n)
    assert lockstep   # the groups really ran step by step somewhere


def test_batches_of_224_plans_run_late_steps_in_lockstep(big_path):
    """At 224x224 the early steps (wide activations, small weights) run image
    by image and the late ones (the reverse: the head and classifier one GEMM
    per group) in lockstep; a batch gives exactly the one-image results."""
    eng = Engine.open(big_path, max_threads=2)
    entries = [eng.pool.entries[0], eng.pool.entries[1], eng.pool.entries[-1]]
    for e in entries:
        p = eng.plan(e.id)
        assert 0 < p.native.lockstep_from < p.native.num_steps, e.id
        assert f"lockstep from step {p.native.lockstep_from}," in p.describe()
        x = np.random.default_rng(1).random((10,) + p.input_shape, dtype=np.float32)
        single = np.concatenate([eng.run(p, x[i:i + 1]) for i in range(len(x))])
        for threads in (1, 2):
            for n in (2, 10):
                assert np.array_equal(eng.run(p, x[:n], threads=threads), single[:n]), (e.id, threads, n)


def test_concurrent_runs_are_exact(tiny_path):
    """4 Python threads, different plans (two share one), 1,000 calls each,
    on a 2-thread engine: every result equals the single-thread one."""
    eng = Engine.open(tiny_path, max_threads=2)
    ids = [e.id for e in eng.pool.entries[:3]]
    plans = [eng.plan(ids[0]), eng.plan(ids[1]), eng.plan(ids[2]), eng.plan(ids[2])]
    xs = [np.random.default_rng(i).random((1, 28, 28, 1), dtype=np.float32) for i in range(4)]
    expected = [eng.run(p, x) for p, x in zip(plans, xs)]
    errors: list = []
    barrier = threading.Barrier(4)

    def worker(i):
        try:
            out = np.empty_like(expected[i])
            barrier.wait()
            for n in range(1000):
                eng.run(plans[i], xs[i], threads=1 + (n % 2), out=out)
                if not np.array_equal(out, expected[i]):
                    errors.append((i, n))
                    return
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts)
    assert not errors, errors[:3]
    # one arena per concurrent run at most, each no larger than the largest plan needs
    assert eng.arena_bytes <= 4 * max(p.arena_bytes for p in plans) + 4 * 64


_ARENA_CHILD = r"""
import json, sys
import numpy as np
from adaptive_rt.engine import Engine
def heap_kb():
    rss, on = 0, False
    for line in open("/proc/self/smaps"):
        p = line.split()
        if "-" in p[0] and ":" not in p[0]:
            on = len(p) > 5 and p[5] == "[heap]"
        elif on and p[0] == "Rss:":
            rss += int(p[1])
    return rss
eng = Engine.open(sys.argv[1], max_threads=1)
plans = sorted(eng.plans().values(), key=lambda p: p.arena_bytes)      # every first run grows the arena
xs = [np.full((1,) + p.input_shape, 0.5, np.float32) for p in plans]
outs = [np.empty((1, p.num_classes), np.float32) for p in plans]
h0 = heap_kb()
for p, x, o in zip(plans, xs, outs):
    eng.run(p, x, out=o)
print(json.dumps({"heap_kb": heap_kb() - h0, "arena": eng.arena_bytes, "plan_arenas": [p.arena_bytes for p in plans]}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
@pytest.mark.skipif(not engine_mod._core.arenas_mapped, reason="arenas are heap blocks in this build (AddressSanitizer)")
def test_a_growing_arena_leaves_no_heap_behind(tmp_path):
    """Each larger plan's first run replaces the arena: the smaller one goes
    back to the system, not into a resident hole in the heap (the tiny pool's
    arenas, growing plan by plan, held twice their size in heap)."""
    space = get_space("mbv3-tiny28")
    entries, tensors = random_pool(space, 6, seed=0)
    path = tmp_path / "p.safetensors"
    write_pool(path, space, entries, tensors)
    try:
        r = subprocess.run([sys.executable, "-c", _ARENA_CHILD, str(path)], capture_output=True, text=True,
                           timeout=300)
    except OSError as e:    # an emulated interpreter (qemu-user without binfmt) cannot start another
        pytest.skip(f"cannot start {sys.executable}: {e}")
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(set(d["plan_arenas"])) >= 3, d            # the arena grew at least twice
    assert d["arena"] == max(d["plan_arenas"]), d      # one arena held, the largest plan's
    assert d["heap_kb"] <= 32, d                       # runs allocate nothing from the heap
def test_switching_plans_needs_no_rebuild(tiny_pool_path):
    eng = Engine.open(tiny_pool_path)
    plans = eng.plans()
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    first = {k: eng.run(p, x) for k, p in plans.items()}
    for _ in range(3):
        for k, p in plans.items():
            assert np.array_equal(eng.run(p, x), first[k])


def test_weights_are_not_copied(tiny_pool_path):
    """Plans hold references to the pool's arrays, not copies:
    building every plan adds only the folded BN vectors and tables."""
    eng = Engine.open(tiny_pool_path)
    import sys
    before = {k: sys.getrefcount(eng.pool.tensors[k]) for k in eng.pool.tensors}
    plan = eng.plan(eng.pool.entries[-1].id)
    used = {w.name for op in plan.graph.ops for w in op.weight_refs()}
    assert used
    for name in used:
        assert sys.getrefcount(eng.pool.tensors[name]) > before[name], name


def test_a_plan_of_another_engine_is_refused(tiny_pool_path):
    """A plan sized for one thread, run by an engine with more threads, would
    split work over scratch it never sized: refused with a clear error (and
    the C++ side never runs a plan with more threads than it was sized for)."""
    one = Engine.open(tiny_pool_path, max_threads=1)
    four = Engine.open(tiny_pool_path, max_threads=4)
    p1 = one.plan(one.pool.entries[-1].id)
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="another engine"):
        four.run(p1, x, threads=4)
    p4 = four.plan(four.pool.entries[-1].id)
    with pytest.raises(ValueError, match="another engine"):
        one.run(p4, x)
    assert np.array_equal(one.run(p1, x), four.run(p4, x, threads=4))
    other = Engine.open(tiny_pool_path)
    foreign = random_pool(get_space("mbv3-tiny28"), 3, seed=5)[0][-1]      # an entry of another pool
    with pytest.raises(ValueError, match="not an entry of"):
        other.plan(foreign)


def test_a_plan_over_the_activation_limit_is_refused_before_allocating(tiny_pool_path):
    eng = Engine.open(tiny_pool_path, max_threads=2)
    small = Engine(eng.pool, max_threads=2, max_activation_bytes=10_000)
    with pytest.raises(ValueError, match="over the limit of 10,000"):
        small.plan(eng.pool.entries[-1].id)
    gib = Engine(eng.pool, max_threads=2, max_activation_bytes=1 << 30)
    gib.plan(eng.pool.entries[-1].id)
    with pytest.raises(ValueError, match="bytes of activations"):
        gib.plan(eng.pool.entries[-1].id, input_hw=(16384, 16384))   # a 1 GiB input image, twice


# ----------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def eng_plan(tmp_path_factory):
    sp = get_space("mbv3-tiny28")
    entries, tensors = random_pool(sp, 2, seed=9)
    path = tmp_path_factory.mktemp("bad") / "p.safetensors"
    write_pool(path, sp, entries, tensors)
    eng = Engine.open(path)
    return eng, eng.plan("e1")


@pytest.mark.parametrize("x, exc, needle", [
    (np.zeros((1, 28, 28, 1), np.float64), TypeError, "float32"),
    (np.zeros((1, 28, 28, 1), np.int8), TypeError, "float32"),
    ([[0.0]], TypeError, "numpy array"),
    (np.zeros((28, 28, 1), np.float32), ValueError, "input has shape (28, 28, 1)"),
    (np.zeros((1, 24, 28, 1), np.float32), ValueError, "expected (N, 28, 28, 1)"),
    (np.zeros((1, 28, 28, 3), np.float32), ValueError, "expected (N, 28, 28, 1)"),
    (np.zeros((1, 28, 56, 1), np.float32)[:, :, ::2], ValueError, "C-contiguous"),
])
def test_bad_input_rejected(eng_plan, x, exc, needle):
    eng, plan = eng_plan
    with pytest.raises(exc) as ei:
        eng.run(plan, x)
    assert needle in str(ei.value)


def test_bad_out_and_threads(eng_plan):
    eng, plan = eng_plan
    x = np.zeros((2, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 10\)"):
        eng.run(plan, x, out=np.zeros((1, 10), np.float32))
    with pytest.raises(TypeError, match="float32"):
        eng.run(plan, x, out=np.zeros((2, 10), np.float64))
    ro = np.zeros((2, 10), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        eng.run(plan, x, out=ro)
    buf = np.zeros(2 * 28 * 28 + 10, np.float32)
    with pytest.raises(ValueError, match="overlaps the input"):
        eng.run(plan, buf[:2 * 784].reshape(2, 28, 28, 1), out=buf[2 * 784 - 10:2 * 784 + 10].reshape(2, 10))
    with pytest.raises(ValueError, match="threads"):
        eng.run(plan, x, threads=0)
    with pytest.raises(TypeError):
        eng.run(plan, x, threads=1.5)
    with pytest.raises(TypeError, match="Plan"):
        eng.run(plan.native, x)
    assert eng.run(plan, np.zeros((0, 28, 28, 1), np.float32)).shape == (0, 10)
    # many threads are clamped to the engine's pool, not an error
    assert eng.run(plan, x, threads=64).shape == (2, 10)


def test_plan_validation_names_the_op():
    core = engine_mod._core
    eng = core.Engine(1)
    with pytest.raises(ValueError, match="must be 1x1xC"):
        core.Plan([(4, 4, 8), (4, 4, 16)], 1)
    p = core.Plan([(1, 1, 8), (1, 1, 16)], 1)
    with pytest.raises(ValueError, match=r"op 'x' \(pwconv\): weight of shape \[8, 8\] is too small"):
        p.add_op("pwconv", "x", 0, out=1, w=np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="input value 5 is not defined"):
        p.add_op("pwconv", "x", 5, out=1, w=np.zeros((8, 16), np.float32))
    with pytest.raises(ValueError, match="scale has 3 values"):
        p.add_op("pwconv", "x", 0, out=1, w=np.zeros((8, 16), np.float32), scale=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="unknown op kind"):
        p.add_op("matmul", "x", 0, out=1)
    with pytest.raises(ValueError, match=r"x weight in panels must be a 1-D array of K\*N = 8\*16"):
        p.add_op("pwconv", "x", 0, out=1, w=np.zeros(8 * 15, np.float32), w_panels=(8, 16))
    with pytest.raises(ValueError, match=r"x weight in panels must be a 1-D"):
        p.add_op("pwconv", "x", 0, out=1, w=np.zeros((8, 16), np.float32), w_panels=(8, 16))
    with pytest.raises(ValueError, match=r"weight is in panels, which only 1x1 conv, linear and SE weights may be"):
        core.Plan([(1, 1, 8), (1, 1, 16)], 1).add_op("conv", "c", 0, out=1, k=1, w=np.zeros(8 * 16, np.float32),
                                                       w_panels=(8, 16))
    with pytest.raises(ValueError, match="output value is never produced"):
        p.finalize(eng)
    p.add_op("pwconv", "x", 0, out=1, w=np.zeros((8, 16), np.float32))
    with pytest.raises(ValueError, match="written twice"):
        p.add_op("pwconv", "y", 0, out=1, w=np.zeros((8, 16), np.float32))
    p.finalize(eng)
    other = core.Engine(1, "scalar")
    if core.default_isa() != "scalar":
        with pytest.raises(ValueError, match="another engine"):
            other.run(p, np.zeros((1, 1, 1, 8), np.float32))


def test_unknown_isa(tiny_pool_path):
    with pytest.raises(ValueError, match="not available"):
        Engine.open(tiny_pool_path, isa="sse9")
