"""A small plot writer with no dependency beyond NumPy and zlib: stacked
panels of points and lines over a shared time axis, with axes, ticks, tick
labels, axis labels, a title and a legend in a built-in 5x7 bitmap font.

It draws the demo's timeline where matplotlib is not installed (the runtime
needs neither matplotlib nor Pillow); with matplotlib installed the demo
uses matplotlib instead. Text is drawn in capitals.
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["Series", "Panel", "write_png", "text_image", "nice_ticks", "plot_panels"]

# 5x7 glyphs, one int per row, bit 4 the leftmost pixel (the HD44780 character shapes)
_FONT: dict[str, tuple[int, ...]] = {
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E), "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F), "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02), "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E), "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E), "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11), "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E), "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F), "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F), "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E), "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11), "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11), "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E), "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D), "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E), "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E), "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A), "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04), "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    " ": (0,) * 7, ".": (0, 0, 0, 0, 0, 0x0C, 0x0C), ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0), ";": (0, 0x0C, 0x0C, 0, 0x0C, 0x04, 0x08),
    "-": (0, 0, 0, 0x1F, 0, 0, 0), "+": (0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0),
    "=": (0, 0, 0x1F, 0, 0x1F, 0, 0), "_": (0, 0, 0, 0, 0, 0, 0x1F),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02), ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03), "/": (0, 0x01, 0x02, 0x04, 0x08, 0x10, 0),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04), "!": (0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04),
    "<": (0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02), ">": (0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08),
}


def text_image(text: str, scale: int = 2) -> np.ndarray:
    """A boolean mask of ``text`` (capitals; unknown characters drawn as
    '?'), one pixel of spacing between glyphs, magnified ``scale`` times."""
    rows = np.zeros((7, max(1, 6 * len(text) - 1)), bool)
    for i, ch in enumerate(text.upper()):
        for r, bits in enumerate(_FONT.get(ch, _FONT["?"])):
            for c in range(5):
                rows[r, 6 * i + c] = bool(bits >> (4 - c) & 1)
    return np.kron(rows, np.ones((scale, scale), bool)) if scale > 1 else rows


def _stamp(img: np.ndarray, mask: np.ndarray, x: int, y: int, colour=(0, 0, 0), anchor: str = "lt") -> None:
    """Draw ``mask`` with its anchor corner at (x, y): anchor is two letters,
    horizontal l/c/r then vertical t/c/b. Clipped to the image."""
    h, w = mask.shape
    x -= {"l": 0, "c": w // 2, "r": w}[anchor[0]]
    y -= {"t": 0, "c": h // 2, "b": h}[anchor[1]]
    y0, x0 = max(0, y), max(0, x)
    y1, x1 = min(img.shape[0], y + h), min(img.shape[1], x + w)
    if y1 <= y0 or x1 <= x0:
        return
    sub = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    img[y0:y1, x0:x1][sub] = colour


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (steps 1, 2 or 5 times a power of ten) in [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float, step: float) -> str:
    digits = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{v:.{digits}f}"


def write_png(path: str, img: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (zlib, filter 0)."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


@dataclass
class Series:
    t: Sequence[float]
    v: Sequence[float]
    colour: tuple[int, int, int]
    style: str = "points"            # "points", "line" (joined) or "step" (held until the next point)
    label: str = ""


@dataclass
class Panel:
    ylabel: str
    ylim: tuple[float, float]
    series: list[Series] = field(default_factory=list)
    yticks: list[tuple[float, str]] | None = None    # (value, label); default: round values


def _path(px: np.ndarray, py: np.ndarray, style: str) -> tuple[np.ndarray, np.ndarray]:
    if style == "step" and len(px) > 1:      # horizontal to the next time, then vertical
        px = np.repeat(px, 2)[1:]
        py = np.repeat(py, 2)[:-1]
    if style in ("line", "step") and len(px) > 1:
        n = np.maximum(2, np.ceil(np.maximum(np.abs(np.diff(px)), np.abs(np.diff(py)))).astype(int) + 1)
        px = np.concatenate([np.linspace(a, b, k) for a, b, k in zip(px[:-1], px[1:], n)])
        py = np.concatenate([np.linspace(a, b, k) for a, b, k in zip(py[:-1], py[1:], n)])
    return px, py


def plot_panels(path: str, panels: Sequence[Panel], t_end: float, *, xlabel: str = "time (s)", title: str = "",
                shade: Sequence[tuple[float, float]] = (), width: int = 1000, panel_height: int = 190) -> None:
    """Stacked panels over one time axis [0, t_end], with ``shade`` intervals
    tinted, written as a PNG to ``path``."""
    left, right, top_pad, gap, bottom_pad = 96, 16, 34 if title else 12, 26, 50
    H = top_pad + len(panels) * panel_height + (len(panels) - 1) * gap + bottom_pad
    img = np.full((H, width, 3), 255, np.uint8)
    x0, x1 = left, width - right
    t_end = t_end if t_end > 0 else 1.0
    xt = nice_ticks(0.0, t_end, 8)
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    if title:
        _stamp(img, text_image(title), (x0 + x1) // 2, 8, anchor="ct")

    def X(t):
        return x0 + (x1 - x0) * np.asarray(t, float) / t_end

    for k, p in enumerate(panels):
        top = top_pad + k * (panel_height + gap)
        bottom = top + panel_height
        for a, b in shade:
            img[top:bottom, int(X(a)):int(X(b))] = (228, 228, 248)
        lo, hi = p.ylim
        span = (hi - lo) or 1.0

        def Y(v, lo=lo, span=span, top=top, bottom=bottom):
            return bottom - (bottom - top) * (np.clip(np.asarray(v, float), lo, lo + span) - lo) / span
        ticks = p.yticks if p.yticks is not None else [
            (v, _fmt(v, (nice_ticks(lo, hi)[1] - nice_ticks(lo, hi)[0]) if len(nice_ticks(lo, hi)) > 1 else 1))
            for v in nice_ticks(lo, hi)]
        for v, lab in ticks:                 # y ticks, grid and labels
            y = int(round(float(Y(v))))
            img[y, x0 + 1:x1][::4] = (215, 215, 215)
            img[y, x0 - 5:x0] = (0, 0, 0)
            _stamp(img, text_image(lab), x0 - 8, y, anchor="rc")
        for t in xt:                         # x ticks on every panel, labels on the last
            x = int(round(float(X(t))))
            img[bottom:bottom + 5, x] = (0, 0, 0)
            if k == len(panels) - 1:
                _stamp(img, text_image(_fmt(t, xstep)), x, bottom + 8, anchor="ct")
        for s in p.series:
            if not len(s.t):
                continue
            px, py = _path(X(s.t), Y(s.v), s.style)
            cx = np.clip(px.astype(int), x0 + 1, x1 - 1)
            cy = np.clip(py.astype(int), top, bottom - 1)
            img[cy, cx] = s.colour
            img[np.clip(cy + 1, top, bottom - 1), cx] = s.colour
        img[top:bottom + 1, x0] = (0, 0, 0)           # axes: left and bottom
        img[bottom, x0:x1 + 1] = (0, 0, 0)
        ylab = np.rot90(text_image(p.ylabel))          # reads bottom to top
        _stamp(img, ylab, 6, (top + bottom) // 2, anchor="lc")
        ly = top + 6                                   # legend, top right
        for s in p.series:
            if s.label:
                m = text_image(s.label)
                _stamp(img, m, x1 - 6, ly, anchor="rt")
                img[ly + 6:ly + 9, x1 - 6 - m.shape[1] - 22:x1 - 6 - m.shape[1] - 6] = s.colour
                ly += m.shape[0] + 6
    _stamp(img, text_image(xlabel), (x0 + x1) // 2, H - 6, anchor="cb")
    write_png(path, img)
