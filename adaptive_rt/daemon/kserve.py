"""The Open Inference Protocol (KServe v2 / Triton HTTP) on the daemon's HTTP
transport, next to its own routes:

    GET  /v2                                   server metadata
    GET  /v2/health/live, /v2/health/ready     200 when live / ready
    GET  /v2/models/{name}[/versions/1]        model metadata
    GET  /v2/models/{name}[/versions/1]/ready  200 when ready
    POST /v2/models/{name}[/versions/1]/infer  inference

The model is the pool: its name is the pool's (the file name without
``.safetensors``), version "1", one input ``input`` (FP32, [-1, H, W, C]:
NHWC, values as the pool was trained on) and one output ``logits`` (FP32,
[-1, classes]). The entry the runtime chose is reported in the response's
``parameters`` (``entry``, ``latency_ms``). Inputs come as JSON ``data``
(flat or nested, row-major) or, with the binary tensor extension, as raw
little-endian bytes after the JSON header (``Inference-Header-Content-Length``
and the input's ``binary_data_size`` parameter); the output is JSON unless
binary data is asked for (the output's ``binary_data`` parameter or the
request's ``binary_data_output``). Every size is checked against the body
before anything is allocated; errors answer ``{"error": message}``.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np

from ..io.jsonio import strict_json
from .protocol import ProtocolError, float32_bytes, float32_from_json, tensor_shape

__all__ = ["match", "model_name"]

VERSION = "1"
_MODEL = re.compile(r"^/v2/models/([A-Za-z0-9_.\-]{1,200})(?:/versions/([A-Za-z0-9_.\-]{1,50}))?(/ready|/infer)?$")


def model_name(pool_path: str) -> str:
    base = os.path.basename(str(pool_path))
    return base[:-len(".safetensors")] if base.endswith(".safetensors") else base


def match(path: str) -> tuple[str, str | None, str | None] | None:
    """(what, model, version) for a v2 route: what is one of server, live,
    ready, model, model_ready, infer; None for anything else under /v2."""
    if path in ("/v2", "/v2/"):
        return "server", None, None
    if path == "/v2/health/live":
        return "live", None, None
    if path == "/v2/health/ready":
        return "ready", None, None
    m = _MODEL.match(path)
    if not m:
        return None
    what = {None: "model", "/ready": "model_ready", "/infer": "infer"}[m.group(3)]
    return what, m.group(1), m.group(2)


def metadata(daemon) -> dict:
    rt = daemon.rt
    h, w, c = rt.input_shape
    classes = rt.pool.graph(rt.pool.entries[0]).num_classes
    return {"name": model_name(daemon.pool_path), "versions": [VERSION], "platform": "adaptive_rt",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, h, w, c]}],
            "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, classes]}],
            "parameters": {"entries": rt.entries, "sha256": rt.pool.sha256}}


def parse_infer(body: bytes, header_length: str | None, max_depth: int) -> tuple[np.ndarray, dict, bool]:
    """(input batch, the request's JSON, binary output wanted?) of an infer
    request body; ProtocolError naming the problem."""
    if header_length is not None:
        if not (header_length.isascii() and header_length.isdigit()) or int(header_length) > len(body):
            raise ProtocolError(f"Inference-Header-Content-Length {header_length[:20]!r} does not fit the "
                                f"{len(body)}-byte body")
        n = int(header_length)
        head, binary = body[:n], memoryview(body)[n:]
    else:
        head, binary = body, memoryview(b"")
    try:
        text = bytes(head).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("inference request header is not UTF-8") from None
    req = strict_json(text, "inference request", max_depth, ProtocolError)
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list) or len(req["inputs"]) != 1:
        raise ProtocolError('the request must be an object with "inputs": a list of one tensor ("input")')
    t = req["inputs"][0]
    if not isinstance(t, dict):
        raise ProtocolError("inputs[0] must be an object")
    if t.get("name") not in (None, "input"):
        raise ProtocolError(f"unknown input {str(t.get('name'))[:50]!r}: the model's input is 'input'")
    if t.get("datatype") != "FP32":
        raise ProtocolError(f"input datatype {str(t.get('datatype'))[:20]!r} is not supported: send FP32")
    shape = tensor_shape(t.get("shape"), "inputs[0]")
    nbytes = float32_bytes(shape, "inputs[0]")
    params = t.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError("inputs[0].parameters must be an object")
    size = params.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size != nbytes or size != len(binary):
            raise ProtocolError(f"binary_data_size {str(size)[:20]} must equal the tensor's {nbytes} bytes and the "
                                f"{len(binary)} bytes after the header")
        x = np.frombuffer(binary, "<f4").reshape(shape)
    else:
        if len(binary):
            raise ProtocolError(f"{len(binary)} bytes after the header but no input has binary_data_size")
        if "data" not in t:
            raise ProtocolError('inputs[0] has neither "data" nor binary_data_size')
        x = float32_from_json(t["data"], "inputs[0].data")
        if x.size * 4 != nbytes:
            raise ProtocolError(f"inputs[0].data has {x.size} values, shape {list(shape)} needs {nbytes // 4}")
        x = x.reshape(shape)
    outs = req.get("outputs")
    rparams = req.get("parameters") or {}
    if not isinstance(rparams, dict):
        raise ProtocolError('"parameters" must be an object')
    want_binary = bool(rparams.get("binary_data_output", False))
    if outs is not None:
        if not isinstance(outs, list) or any(not isinstance(o, dict) for o in outs):
            raise ProtocolError('"outputs" must be a list of objects')
        for o in outs:
            if o.get("name") != "logits":
                raise ProtocolError(f"unknown output {str(o.get('name'))[:50]!r}: the model's output is 'logits'")
            p = o.get("parameters") or {}
            if isinstance(p, dict) and p.get("binary_data"):
                want_binary = True
    return x, req, want_binary


def infer_response(daemon, req: dict, y: np.ndarray, entry: str, ms: float, binary: bool) -> tuple[bytes, dict]:
    """(body, extra headers) of an infer response."""
    y = np.ascontiguousarray(y, "<f4")
    out = {"name": "logits", "datatype": "FP32", "shape": list(y.shape)}
    resp = {"model_name": model_name(daemon.pool_path), "model_version": VERSION,
            "parameters": {"entry": entry, "latency_ms": ms}, "outputs": [out]}
    if isinstance(req.get("id"), str):
        resp["id"] = req["id"][:200]
    if not binary:
        out["data"] = y.reshape(-1).tolist()
        return json.dumps(resp, allow_nan=False).encode(), {}
    out["parameters"] = {"binary_data_size": y.nbytes}
    head = json.dumps(resp, allow_nan=False).encode()
    return head + y.tobytes(), {"Inference-Header-Content-Length": str(len(head))}
