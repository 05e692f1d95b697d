"""Import Once-for-All MobileNetV3 supernets (mit-han-lab/once-for-all).

``ofa_space(width)`` is OFA's ``OFAMobileNetV3`` (width 1.0 or 1.2) as a
SearchSpace: 3x3 stride-2 hard-swish stem, a first block (3x3 depthwise,
expand 1, relu, residual), five elastic stages (depth 2-4, kernel 3/5/7,
expand 3/4/6; widths 24/40/80/112/160 x width, strides 2/2/2/1/2, relu/relu/
hswish/hswish/hswish, SE on the 2nd, 4th and 5th), a 960 x width
expand layer, global pooling, a 1280 x width feature-mix layer with no BN
and no bias, the classifier; resolution 128-224 in steps of 4.

``ofa_tensors(state, space)`` maps an OFA state dict onto the native layout:
1x1 convs ``[Cout, Cin, 1, 1]`` -> ``[Cin, Cout]``, depthwise ``[C, 1, k, k]``
-> ``[k, k, C]``, the stem to ``[k*k*Cin, Cout]``; the 5x5 and 3x3 depthwise
kernels are computed once from the 7x7 with OFA's learned transform matrices
(``7to5_matrix``, then ``5to3_matrix`` on the transformed 5x5, as OFA's
``get_active_filter`` does); BN running statistics become the supernet's own
(unprefixed) statistics. Nothing but tensors is read: the checkpoint is
opened with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
from typing import Callable, Mapping

import numpy as np

from ..model.graph import build_graph
from ..model.layout import running_stat_specs, tensor_specs
from ..model.presets import OFA_WIDTHS, get_space
from ..model.space import SearchSpace

__all__ = ["OFA_WIDTHS", "ofa_space", "ofa_tensors", "ofa_supernet", "load_ofa_checkpoint", "import_ofa",
           "OfaImportError"]



class OfaImportError(ValueError):
    """The checkpoint is not an OFA MobileNetV3 of the given width; the
    message names the first missing or mis-shaped tensor."""


def ofa_space(width: float = 1.0) -> SearchSpace:
    if width not in OFA_WIDTHS:
        raise OfaImportError(f"OFA MobileNetV3 width {width} is not supported; use {' or '.join(map(str, OFA_WIDTHS))}")
    return get_space(f"ofa-mbv3-w{width}")


def _block_index(space: SearchSpace) -> dict[tuple[int, int], int]:
    """(stage, block) -> OFA's ``blocks.<i>`` index (every stage at its maximum depth)."""
    out, i = {}, 0
    for s, st in enumerate(space.stages):
        for b in range(max(st.depths)):
            out[(s, b)] = i
            i += 1
    return out


def _get(state: Mapping[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in state:
        raise OfaImportError(f"checkpoint has no tensor {name!r}: not an OFA MobileNetV3 of this width")
    a = np.asarray(state[name], dtype=np.float32)
    if tuple(a.shape) != tuple(shape):
        raise OfaImportError(f"tensor {name!r} has shape {tuple(a.shape)}, an OFA MobileNetV3 of this width has "
                             f"{tuple(shape)}")
    return a


def ofa_tensors(state: Mapping[str, np.ndarray], space: SearchSpace) -> dict[str, np.ndarray]:
    """Every tensor of ``space`` (native layout) plus the supernet's running
    BN statistics, from an OFA state dict."""
    specs = tensor_specs(space)
    stats = running_stat_specs(space)
    idx = _block_index(space)
    out: dict[str, np.ndarray] = {}

    def bn(ours: str, theirs: str, c: int) -> None:
        out[f"{ours}.bn.weight"] = _get(state, f"{theirs}.weight", (c,))
        out[f"{ours}.bn.bias"] = _get(state, f"{theirs}.bias", (c,))
        out[f"{ours}.bn.mean"] = _get(state, f"{theirs}.running_mean", (c,))
        out[f"{ours}.bn.var"] = _get(state, f"{theirs}.running_var", (c,))

    def pw(ours: str, theirs: str, cin: int, cout: int) -> None:
        out[f"{ours}.weight"] = np.ascontiguousarray(_get(state, theirs, (cout, cin, 1, 1))[:, :, 0, 0].T)

    c0 = space.stem_channels
    k = space.stem_kernel
    stem = _get(state, "first_conv.conv.weight", (c0, space.in_channels, k, k))
    out["stem.conv.weight"] = np.ascontiguousarray(stem.transpose(2, 3, 1, 0).reshape(k * k * space.in_channels, c0))
    bn("stem.conv", "first_conv.bn", c0)

    cin = c0
    for s, st in enumerate(space.stages):
        for b in range(max(st.depths)):
            p, o = f"s{s}.b{b}", f"blocks.{idx[(s, b)]}.conv"
            dyn = s > 0           # OFA's first block is a static MBConvLayer (no .conv./.bn. nesting)
            conv_, bn_ = (".conv.conv", ".bn.bn") if dyn else (".conv", ".bn")
            mid = specs[f"{p}.dw.bn.weight"][0]
            if f"{p}.expand.weight" in specs:
                pw(f"{p}.expand", f"{o}.inverted_bottleneck{conv_}.weight", cin, mid)
                bn(f"{p}.expand", f"{o}.inverted_bottleneck{bn_}", mid)
            kmax = max(st.kernel_sizes)
            big = _get(state, f"{o}.depth_conv{conv_}.weight", (mid, 1, kmax, kmax))[:, 0]    # C, k, k
            kernels = {kmax: big}
            cur = big
            for src, dst in zip(sorted(st.kernel_sizes, reverse=True), sorted(st.kernel_sizes, reverse=True)[1:]):
                m = _get(state, f"{o}.depth_conv.conv.{src}to{dst}_matrix", (dst * dst, dst * dst))
                a = (src - dst) // 2
                centre = cur[:, a:a + dst, a:a + dst].reshape(mid, dst * dst).astype(np.float64)
                cur = (centre @ m.astype(np.float64).T).reshape(mid, dst, dst).astype(np.float32)   # F.linear
                kernels[dst] = cur
            for kk in st.kernel_sizes:
                out[f"{p}.dw{kk}.weight"] = np.ascontiguousarray(kernels[kk].transpose(1, 2, 0))
            bn(f"{p}.dw", f"{o}.depth_conv{bn_}", mid)
            if st.se:
                r = specs[f"{p}.se.reduce.bias"][0]
                fc = f"{o}.depth_conv.se.fc"
                out[f"{p}.se.reduce.weight"] = np.ascontiguousarray(_get(state, f"{fc}.reduce.weight", (r, mid, 1, 1))[:, :, 0, 0].T)
                out[f"{p}.se.reduce.bias"] = _get(state, f"{fc}.reduce.bias", (r,))
                out[f"{p}.se.expand.weight"] = np.ascontiguousarray(_get(state, f"{fc}.expand.weight", (mid, r, 1, 1))[:, :, 0, 0].T)
                out[f"{p}.se.expand.bias"] = _get(state, f"{fc}.expand.bias", (mid,))
            cout = specs[f"{p}.project.bn.weight"][0]
            pw(f"{p}.project", f"{o}.point_linear{conv_}.weight", mid, cout)
            bn(f"{p}.project", f"{o}.point_linear{bn_}", cout)
            cin = cout
    pw("head.conv", "final_expand_layer.conv.weight", cin, space.head_channels)
    bn("head.conv", "final_expand_layer.bn", space.head_channels)
    pw("head.mix", "feature_mix_layer.conv.weight", space.head_channels, space.feature_channels)
    out["classifier.weight"] = np.ascontiguousarray(
        _get(state, "classifier.linear.weight", (space.num_classes, space.feature_channels)).T)
    out["classifier.bias"] = _get(state, "classifier.linear.bias", (space.num_classes,))
    want = dict(specs, **stats)
    missing = [n for n in want if n not in out]
    if missing:   # pragma: no cover - a space/mapping mismatch is a bug here, not the user's
        raise OfaImportError(f"internal: no OFA tensor mapped to {missing[0]!r}")
    for n, shape in want.items():
        if out[n].shape != tuple(shape):   # pragma: no cover
            raise OfaImportError(f"internal: {n} mapped to shape {out[n].shape}, expected {shape}")
    return out


def load_ofa_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """An OFA checkpoint's tensors. Accepts a bare state dict or one under
    ``"state_dict"`` (OFA's training checkpoints), strips a ``module.`` (DDP)
    prefix; opened with ``torch.load(weights_only=True)``: nothing but
    tensors and plain containers is unpickled."""
    try:
        import torch
    except ImportError:
        raise OfaImportError("reading an OFA checkpoint needs torch: from the adaptive_rt checkout, "
                             "pip install -c constraints.txt '.[train]'") from None
    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise OfaImportError(f"{path}: no such file") from None
    except Exception as e:   # torch raises many kinds for a file that is not a checkpoint
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        why = f"{type(e).__name__}: {first}" if first else type(e).__name__
        raise OfaImportError(f"{path}: not a torch checkpoint readable with weights_only=True ({why})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise OfaImportError(f"{path}: not a state dict")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise OfaImportError(f"{path}: state dict has a non-string key")
        if isinstance(v, torch.Tensor):
            out[k[7:] if k.startswith("module.") else k] = v.detach().cpu().float().numpy() if v.is_floating_point() \
                else v.cpu().numpy()
    return out


def ofa_supernet(state: Mapping[str, np.ndarray], space: SearchSpace):
    """The OFA weights in the training Supernet (torch): every tensor as
    mapped, the 7x7 depthwise kernels with OFA's transform matrices as the
    supernet's own kernel transforms (``dw.t5`` = ``7to5_matrix``, ``dw.t3`` =
    ``5to3_matrix``: the same ``T @ centre`` rule), BN running statistics as
    its buffers. For BN recalibration and accuracy on the user's data."""
    import torch
    from .supernet import Supernet, key
    w = ofa_tensors(state, space)
    net = Supernet(space)
    idx = _block_index(space)
    with torch.no_grad():
        for name, param in net.params.items():
            if ".dw.t" in name.replace("__", "."):
                continue
            src = name.replace("__", ".")
            param.copy_(torch.from_numpy(w[src]))
        for s, st in enumerate(space.stages):
            ks = sorted(st.kernel_sizes)
            for b in range(max(st.depths)):
                for big, small in zip(ks[::-1], ks[::-1][1:]):
                    m = state[f"blocks.{idx[(s, b)]}.conv.depth_conv.conv.{big}to{small}_matrix"]
                    net.params[key(f"s{s}.b{b}.dw.t{small}")].copy_(torch.from_numpy(np.asarray(m, np.float32)))
        for name in running_stat_specs(space):
            getattr(net, key(name)).copy_(torch.from_numpy(w[name]))
    return net.eval()


def import_ofa(checkpoint: str | os.PathLike | Mapping[str, np.ndarray], width: float, out: str | os.PathLike,
               buckets: int = 6, seed: int = 0, data: str | None = None, calib_batches: int = 16,
               configs: list | None = None, metric: str = "mflops",
               progress: Callable[[str], None] | None = None,
               expect: Callable[[int], None] | None = None, latency_table: str | None = None):
    """Write a pool file of ``buckets`` OFA subnets spread over MFLOPs (the
    smallest and largest included; or exactly ``configs``; ``metric="latency"``
    spreads them over a device's latency table instead — the file
    ``latency_table`` (made on the target device with ``adaptive-rt
    latency-table``), else this machine's, measured now — and stores each
    entry's predicted ``latency_ms``). Without ``data``
    each entry carries the supernet's own BN statistics and no accuracy (the
    file's metadata says so); with ``data`` (a dataset name or PATH.npz of
    preprocessed NHWC images) each entry's BN statistics are recalibrated on
    ``calib_batches`` batches of its train split and its top-1 measured on
    its test split. ``progress(msg)`` is called as each unit of work
    finishes and ``expect(n)`` as ``n`` more units become known (for a
    progress bar whose total grows). Returns the PoolFile."""
    from ..io.poolfile import make_entry, write_pool
    from ..model.weights import entry_bn_stats, spread_configs
    space = ofa_space(width)
    if expect:
        expect(1)
    state = checkpoint if isinstance(checkpoint, Mapping) else load_ofa_checkpoint(checkpoint)
    weights = ofa_tensors(state, space)
    if progress:
        progress(f"mapped {len(weights)} tensors of {space.name}")
    tensors = {n: a for n, a in weights.items() if not n.endswith((".bn.mean", ".bn.var"))}
    if metric not in ("mflops", "latency"):
        raise OfaImportError(f"unknown metric {metric!r}; use mflops or latency")
    table = None
    if latency_table is not None and metric != "latency":
        raise OfaImportError("a latency table is for metric latency, not mflops")
    if metric == "latency":
        from ..serve.latency import LatencyTable, LatencyTableError
        if latency_table is not None:
            try:
                table = LatencyTable.load(latency_table, space)
            except LatencyTableError as e:
                raise OfaImportError(str(e)) from None
        else:
            table = LatencyTable.measure(space, n=24, seed=seed, repeats=7, progress=progress, expect=expect)
    chosen = list(configs) if configs is not None else spread_configs(
        space, buckets, seed, metric=table.predict if table else None)
    if expect:
        expect(len(chosen))
    net = ds = None
    if data is not None:
        import torch
        from ..io.data import load_dataset
        ds = load_dataset(data, seed=seed)
        if ds.image_shape[2] != space.in_channels:
            raise OfaImportError(f"{data}: images have {ds.image_shape[2]} channels, the OFA network takes "
                                 f"{space.in_channels}")
        net = ofa_supernet(state, space)
        rng = np.random.default_rng(seed)
        calib = [torch.from_numpy(ds.x_train[rng.choice(len(ds.x_train), min(64, len(ds.x_train)), replace=False)])
                 for _ in range(calib_batches)]
    entries = []
    for i, cfg in enumerate(chosen):
        prefix = f"bn.e{i}."
        acc = None
        if net is None:
            tensors.update(entry_bn_stats(build_graph(space, cfg), weights, prefix))
        else:
            stats = net.recalibrate_bn(cfg, calib, prefix)
            tensors.update(stats)
            bn = {k[len(prefix):]: torch.from_numpy(v) for k, v in stats.items()}
            correct = 0
            with torch.no_grad():
                for j in range(0, len(ds.y_test), 128):
                    logits = net(torch.from_numpy(ds.x_test[j:j + 128]), cfg, bn_stats=bn)
                    correct += int((logits.argmax(1).numpy() == ds.y_test[j:j + 128]).sum())
            acc = correct / len(ds.y_test)
        entries.append(make_entry(space, cfg, f"e{i}", prefix, accuracy=acc,
                                  dataset=None if acc is None else ds.name, split="test",
                                  latency_ms=table.predict(cfg) if table else None))
        if progress:
            progress(f"e{i}: {entries[-1].mflops:.1f} MFLOPs" + ("" if acc is None else f", top-1 {acc:.4f}"))
    note = ("BN recalibrated per entry on %s; accuracy on its test split" % data if data is not None else
            "BN: the supernet's own running statistics, not recalibrated per entry; accuracy not measured")
    meta = {"adaptive_rt.import": f"once-for-all OFAMobileNetV3 w{width}; {note}"}
    return write_pool(out, space, entries, tensors, meta)
