"""The Open Inference Protocol (KServe v2) on a real `adaptive-rt serve`
process, driven by Triton's own client (`tritonclient.http`) and by raw
requests: health, metadata, JSON and binary tensors, the chosen entry in the
response parameters, errors as {"error": message}."""
from __future__ import annotations

import json

import numpy as np
import pytest

from adaptive_rt.io.poolfile import load_pool
from adaptive_rt.model import reference

from test_daemon import DaemonProc, pools  # noqa: F401  (the pools fixture)
from test_daemon_attacks import _http_raw, _req

httpclient = pytest.importorskip("tritonclient.http")


@pytest.fixture()
def d(tmp_path, pools):  # noqa: F811
    p = DaemonProc(tmp_path, pools[0])
    yield p
    p.stop()


def _ref(pools, x):  # noqa: F811
    pool = load_pool(pools[0])
    return {e.id: pool.reference(e, x) for e in pool.entries}


def test_tritonclient_health_metadata_and_infer(d, pools):  # noqa: F811
    name = pools[0].stem
    c = httpclient.InferenceServerClient(d.http)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(name)
    meta = c.get_model_metadata(name)
    assert meta["name"] == name and meta["inputs"][0]["shape"] == [-1, 28, 28, 1]
    assert meta["outputs"][0]["name"] == "logits" and meta["outputs"][0]["shape"] == [-1, 10]
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    refs = _ref(pools, x)
    scale = max(float(np.abs(r).max()) for r in refs.values())
    for binary in (True, False):
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        out = httpclient.InferRequestedOutput("logits", binary_data=binary)
        r = c.infer(name, [inp], outputs=[out])
        y = r.as_numpy("logits")
        entry = r.get_response()["parameters"]["entry"]
        assert y.shape == (3, 10) and np.abs(y - refs[entry]).max() <= 1e-4 * scale, (binary, entry)
    with pytest.raises(Exception, match="unknown model"):
        c.infer("no-such-model", [inp])
    c.close()


def test_v2_errors_are_error_objects(d, pools):  # noqa: F811
    name = pools[0].stem
    cases = [
        (_req("POST", f"/v2/models/{name}/infer", b'{"inputs": []}', {"Content-Type": "application/json"}), 400),
        (_req("POST", f"/v2/models/{name}/infer", json.dumps({"inputs": [{"name": "input", "datatype": "INT8",
                                                                          "shape": [1], "data": [1]}]}).encode()), 400),
        (_req("POST", f"/v2/models/{name}/infer", json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                                                          "shape": [1, 28, 28, 1],
                                                                          "data": [0.5] * 10}]}).encode()), 400),
        (_req("POST", f"/v2/models/{name}/infer", json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                                                          "shape": [1, 28, 28, 1],
                                                                          "data": [1e39] * 784}]}).encode()), 400),
        # binary size that does not match the tensor
        (_req("POST", f"/v2/models/{name}/infer", b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": '
              b'[1, 28, 28, 1], "parameters": {"binary_data_size": 8}}]}' + b"\0" * 8,
              {"Inference-Header-Content-Length": "97"}), 400),
        (_req("GET", f"/v2/models/{name}/versions/7"), 404),
        (_req("GET", f"/v2/models/{name}/infer"), 405),
    ]
    for raw, status in cases:
        st, _, body = _http_raw(d.port, raw)
        msg = json.loads(body)
        assert st == status and isinstance(msg.get("error"), str) and msg["error"], (raw[:100], st, msg)
    # JSON tensors, nested data, the entry in the parameters
    x = np.zeros((1, 28, 28, 1), np.float32)
    st, _, body = _http_raw(d.port, _req("POST", f"/v2/models/{name}/versions/1/infer", json.dumps(
        {"id": "r1", "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 28, 28, 1],
                                 "data": x.tolist()}]}).encode(), {"Content-Type": "application/json"}))
    resp = json.loads(body)
    assert st == 200 and resp["id"] == "r1" and resp["model_name"] == name and resp["parameters"]["entry"]
    assert resp["outputs"][0]["shape"] == [1, 10] and len(resp["outputs"][0]["data"]) == 10
