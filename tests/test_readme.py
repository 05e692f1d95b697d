"""The README walk-through as a user pastes it: every ```sh and ```python
block of README.md, in order, in one shell session in an empty folder
(python blocks through `python -`). Blocks fenced as ```console are
illustrations that need more than a test can give (installing, training for
minutes, an OFA checkpoint) and are exercised by other tests."""
from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(sh|python)\n(.*?)^```$", re.S | re.M)


def script_of(markdown: str) -> str:
    parts = ["set -e", "trap 'kill %1 2>/dev/null || true' EXIT"]
    for lang, code in FENCE.findall(markdown):
        parts.append(code if lang == "sh" else f"python - <<'PYEOF'\n{code}PYEOF")
    return "\n".join(parts) + "\n"


def test_docs_have_no_untagged_code_blocks():
    """Every fence says what it is (sh, python, console, text), so none is skipped by accident."""
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        opened = False
        for ln in md.read_text().splitlines():
            if ln.startswith("```"):
                if not opened:
                    assert ln.strip() != "```", f"{md.name}: a code block without a language"
                opened = not opened


DOCS_WITH_EXAMPLES = sorted(p.name for p in (ROOT / "docs").glob("*.md") if FENCE.search(p.read_text()))


def test_docs_with_examples_are_found():
    assert "runtime.md" in DOCS_WITH_EXAMPLES


@pytest.mark.parametrize("name", DOCS_WITH_EXAMPLES)
def test_docs_examples_run_as_pasted(tmp_path, name):
    """Each doc's sh and python blocks, in order, in one shell session in an empty folder."""
    r = subprocess.run(["bash", "-c", script_of((ROOT / "docs" / name).read_text())], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_readme_walkthrough_runs_as_pasted(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    text = (ROOT / "README.md").read_text()
    script = script_of(text)
    assert script.count("python - <<'PYEOF'") >= 3 and "adaptive-rt serve" in script
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    assert "predicted" in r.stdout and '"entry"' in r.stdout and "adaptive_rt_" in r.stdout
    assert "Traceback" not in r.stderr
