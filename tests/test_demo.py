"""``adaptive-rt demo`` end to end (short setting): the shipped pool serves
the shipped test digits while a real CPU-hog child runs; the runtime moves
to a cheaper entry under the load and the timeline PNG is written."""
from __future__ import annotations

import pytest

import json
import subprocess
import sys


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    js, png = tmp_path / "demo.json", tmp_path / "demo.png"
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "demo", "--seconds", "8", "--json", str(js),
                        "--png", str(png)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "entry e" in ln and "SLO" in ln]
    assert len(lines) >= 5, r.stdout            # one line a second
    s = json.loads(js.read_text())
    calm, hog, _ = s["phases"]
    assert s["requests"] > 100 and s["accuracy"] > 0.95       # real digits, real labels
    assert hog["hogs"] == 1 and calm["hogs"] == 0
    # what each phase served is reported (the adaptation itself is measured by bench_adapt and tested
    # deterministically on a trace in test_runtime: a wall-clock comparison here fails on a busy machine)
    for ph in (calm, hog):
        assert ph["other_cpu_cores_mean"] >= 0 and ph["mean_mflops"] > 0
    assert s["switches"] >= 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "demo", "--seconds", "0.5"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "--seconds" in r.stderr


def test_builtin_png_without_matplotlib(tmp_path):
    """Where matplotlib is absent the demo's own plot writer draws the
    timeline with axes, ticks and labels; the file reads back as a real PNG."""
    code = f"""
import sys
sys.modules['matplotlib'] = None
from adaptive_rt.bench.demo import Phase, Record, write_timeline_png
recs = [Record(t * 0.01, 1.0 + (t % 7) * 0.1, 'e%d' % (t // 300), 16, 16, t // 300) for t in range(900)]
tl = [{{'t': t * 0.1, 'other_cpu_cores': 1.0 if 3 <= t * 0.1 < 6 else 0.0}} for t in range(90)]
sched = [Phase('calm', 0, 3, 0), Phase('contended', 3, 6, 1), Phase('calm', 6, 9, 0)]
print(write_timeline_png({str(tmp_path / 'b.png')!r}, recs, tl, 1.5, sched, ['e0', 'e1', 'e2'], 'title'))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "builtin", r.stderr
    import matplotlib.image as mpimg
    img = mpimg.imread(str(tmp_path / "b.png"))
    assert img.shape[1] == 1000 and img.shape[0] > 600
    dark = img.max(axis=2) < 0.3
    assert dark[:, 96].sum() > 500                    # the y axes
    assert dark[:30, 100:900].any()                   # the title
    assert dark[:, :20].sum() > 200                   # rotated y-axis labels
    assert dark[-50:, 100:900].sum() > 300            # x tick labels and the x-axis label


def test_plot_text_and_ticks():
    from adaptive_rt.bench.plot import nice_ticks, text_image
    assert nice_ticks(0, 9, 8) == [0, 2, 4, 6, 8] and nice_ticks(0, 30, 8) == [0, 5, 10, 15, 20, 25, 30]
    assert nice_ticks(0, 4.5) == [0, 2, 4] and nice_ticks(0, 4.5, 6) == [0, 1, 2, 3, 4]
    assert nice_ticks(0.0, 2.0) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert nice_ticks(1, 1) == [1]
    m = text_image("E1", scale=1)
    assert m.shape == (7, 11) and m[:, 5].sum() == 0  # two 5-wide glyphs, one column apart
    assert (text_image("a") == text_image("A")).all() and text_image("\u00b5").any()   # capitals; '?' for unknown


def test_demo_says_when_the_pool_was_not_made_for_its_digits(tmp_path, tiny_pool_path):
    r = subprocess.run([sys.executable, "-m", "adaptive_rt", "demo", str(tiny_pool_path), "--seconds", "1",
                        "--hogs", "0", "--png", ""], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "note: the demo serves the shipped mnist5k test digits" in r.stdout
    assert "not measured on any dataset" in r.stdout            # a pool of random weights
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.safetensors"]   # --png "": no PNG, no profile beside
