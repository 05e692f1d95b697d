"""Strict, bounded JSON: every JSON document the package reads from a file
or a peer (pool headers, device profiles, latency tables, traces, daemon
requests) goes through :func:`strict_json`: duplicate keys, NaN/Infinity and
deep nesting are refused, and nothing parsed from such a text is returned."""
from __future__ import annotations

import json
import os
import re
import stat

import numpy as np

__all__ = ["MAX_JSON_DEPTH", "strict_json", "read_json_file", "read_bounded", "json_depth"]

MAX_JSON_DEPTH = 16              # our documents nest 4 deep
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]")


def json_depth(text: str) -> int:
    """Nesting depth of a JSON text, found without recursion."""
    br = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode()
    if not br:
        return 0
    b = np.frombuffer(br, np.uint8)
    step = np.where((b == ord("[")) | (b == ord("{")), 1, -1)
    return int(np.cumsum(step).max())


def _no_duplicates(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):   # the first key seen twice, by name
        seen: set = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k[:80]!r}")
            seen.add(k)
    return d


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _deeper_than(obj: object, limit: int) -> bool:
    """Whether parsed JSON nests lists and objects more than ``limit`` deep
    (walked without recursion; stops at the first branch past the limit)."""
    stack = [(obj, 1)] if isinstance(obj, (list, dict)) else []
    while stack:
        o, d = stack.pop()
        if d > limit:
            return True
        for v in (o.values() if isinstance(o, dict) else o):
            if isinstance(v, (list, dict)):
                stack.append((v, d + 1))
    return False


def strict_json(text: str, what: str, max_depth: int = MAX_JSON_DEPTH, error: type = ValueError) -> object:
    """Parse JSON, rejecting duplicate keys, NaN/Infinity and nesting deeper
    than ``max_depth``; raises ``error`` naming ``what``.

    The parser's own recursion limit (about a thousand levels) bounds what an
    absurdly deep text costs; the depth is checked on what it built, and
    counted from the text (:func:`json_depth`) only for the message of a
    text past the limit: a regular-expression pass over every document was
    most of the time a pool header took to read."""
    parsed, obj = True, None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except RecursionError:
        parsed = False
    except ValueError as e:
        if json_depth(text) <= max_depth:   # a too-deep text says so, whatever else is wrong with it
            raise error(f"{what}: invalid JSON: {e}") from None
        parsed = False
    if not parsed or _deeper_than(obj, max_depth):
        depth = json_depth(text)
        if depth > max_depth:
            raise error(f"{what}: JSON nests {depth} levels deep, limit {max_depth}")
        raise error(f"{what}: invalid JSON: nests too deep to parse")
    return obj


def read_bounded(path: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError
    otherwise. A FIFO or device at the path is refused, never waited on."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError("not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"larger than {limit} bytes")
    return data


def read_json_file(path: str, what: str, error: type, limit: int = 16 << 20) -> object:
    """A small JSON file (:func:`read_bounded`) parsed with :func:`strict_json`;
    any failure raises ``error`` naming ``path`` and ``what``."""
    try:
        text = read_bounded(path, limit).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read {what}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return strict_json(text, what)
    except ValueError as e:
        raise error(f"{path}: {e}") from None
