"""The layout holds: the import graph has no cycle, arrows go one way
(model -> io -> engine -> serve -> daemon/cli; train and bench on the side),
no private name is imported across modules, and every module outside
``adaptive_rt.train`` imports in a process where torch cannot be imported."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import adaptive_rt

ROOT = pathlib.Path(adaptive_rt.__file__).resolve().parent

# Layers, lowest first. A module may import its own layer and the ones below;
# train and bench sit beside the stack and may import any of it, but nothing
# in the stack below the command line imports them (the torch backend joins
# the backend registry through an entry point).
LAYERS = {
    "registry": 0,
    "model": 1,
    "io": 2, "assets": 2,
    "export": 3, "quant": 3,
    "engine": 4,
    "serve": 5,
    "daemon": 6,
    "cli": 7, "__main__": 7,
    "train": 8, "bench": 8,
}
SIDE = {"train", "bench"}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        rel = f.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(name: str, path: pathlib.Path, modules: dict) -> set[tuple[str, str, int]]:
    """(imported adaptive_rt module, imported name or '', line) of every import in the file."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    tree = ast.parse(path.read_text())
    type_only = set()   # `if TYPE_CHECKING:` blocks never run: annotations, not arrows
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            type_only.update(id(n) for b in node.body for n in ast.walk(b))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("adaptive_rt"):
                    out.add((a.name, "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("adaptive_rt"):
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.add((sub, "", node.lineno) if sub in modules else (mod, a.name, node.lineno))
    return out


def _top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_import_graph_has_no_cycle_and_arrows_go_one_way():
    modules = _modules()
    graph = {m: set() for m in modules}
    wrong = []
    for m, path in modules.items():
        for target, _, line in _imports(m, path, modules):
            t = target
            while t not in modules and "." in t:
                t = t.rsplit(".", 1)[0]
            if t == m or t == "adaptive_rt" and m != "adaptive_rt":
                continue
            graph[m].add(t)
            src, dst = _top(m), _top(t)
            if not src or not dst or src == dst:
                continue
            if dst in SIDE:
                if src not in SIDE | {"cli", "__main__"}:
                    wrong.append(f"{m}:{line} imports {t} (train/bench are beside the stack)")
            elif src not in SIDE and LAYERS[dst] > LAYERS[src]:
                wrong.append(f"{m}:{line} imports {t} (an arrow upwards)")
    assert not wrong, "\n".join(wrong)
    # cycles (depth-first search; a package is a node like any module)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_no_private_name_imported_across_modules():
    modules = _modules()
    bad = []
    for m, path in modules.items():
        for target, name, line in _imports(m, path, modules):
            private = name.startswith("_") and not name.startswith("__")
            private_mod = any(p.startswith("_") and not p.startswith("__") for p in target.split(".")[1:])
            if (private or private_mod) and not (m == "adaptive_rt.engine" and name == "_core"):   # the C++ core's one user
                bad.append(f"{m}:{line} imports {target} {name}".strip())
    assert not bad, "\n".join(bad)


def test_every_module_outside_train_imports_without_torch():
    mods = sorted(m for m in _modules() if _top(m) != "train" and not m.endswith("__main__"))
    code = (
        "import importlib, sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "print(len(sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(mods) > 40


def test_torch_backend_joins_through_the_registry():
    from adaptive_rt.serve.backends import BACKENDS
    names = BACKENDS.names()
    assert {"native", "onnxruntime", "litert"} <= set(names)
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    assert "torch" in names


def test_one_registry_class_serves_every_registry():
    from adaptive_rt.bench.report import BENCHES
    from adaptive_rt.cli.common import COMMANDS
    from adaptive_rt.io.data import DATASETS
    from adaptive_rt.model.presets import SPACES
    from adaptive_rt.registry import Registry, RegistryError
    from adaptive_rt.serve.backends import BACKENDS
    from adaptive_rt.serve.monitor import SOURCES
    regs = [BENCHES, COMMANDS, DATASETS, SPACES, BACKENDS, SOURCES]
    assert all(isinstance(r, Registry) and len(r) > 0 for r in regs)
    r = Registry("thing")
    r.register("a", 1)
    try:
        r.register("a", 2)
    except RegistryError as e:
        assert "registered twice" in str(e)
    else:
        raise AssertionError("a name registered twice was accepted")
    try:
        r.get("b")
    except RegistryError as e:
        assert "unknown thing 'b'" in str(e) and "known: a" in str(e)
    else:
        raise AssertionError("an unknown name was accepted")
