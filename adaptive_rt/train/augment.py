"""Image augmentation for semi-supervised training of small images (digits,
MNIST-like), in torch on NHWC batches, seeded: no downloads, no image
library. FixMatch's two views, without the flips and colour operations that
make no sense for digits:

- weak: a random shift of up to 12.5% of the side (bilinear, zero fill);
- strong: a random affine map — rotation up to 15 degrees, shear up to 0.2,
  scale 0.85-1.15, shift up to 12.5% —, then Gaussian noise (0.05 of the
  image's value range) and a cutout square of 12.5-25% of the side set to 0
  (milder than FixMatch's 50% cutout and 30-degree rotations, which erase
  much of an 8x8 digit).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["weak", "strong"]


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``x`` NHWC warped by per-image 2x3 affine maps (normalised coordinates)."""
    nchw = x.permute(0, 3, 1, 2)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(nchw.shape), align_corners=False)
    return F.grid_sample(nchw, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False).permute(0, 2, 3, 1).contiguous()


def _u(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def weak(x: torch.Tensor, g: torch.Generator, shift: float = 0.125) -> torch.Tensor:
    n = len(x)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = _u(g, n, -2 * shift, 2 * shift)     # normalised coordinates span 2
    theta[:, 1, 2] = _u(g, n, -2 * shift, 2 * shift)
    return _warp(x, theta)


def strong(x: torch.Tensor, g: torch.Generator, shift: float = 0.125, cutout: tuple = (0.125, 0.25),
           rotate: float = 15.0, noise: float = 0.05) -> torch.Tensor:
    n, h, w, _ = x.shape
    a = _u(g, n, -math.radians(rotate), math.radians(rotate))
    sh = _u(g, n, -0.2, 0.2)
    s = _u(g, n, 0.85, 1.15)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin + sh * cos
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos + sh * sin
    theta[:, 0, 2] = _u(g, n, -2 * shift, 2 * shift)
    theta[:, 1, 2] = _u(g, n, -2 * shift, 2 * shift)
    y = _warp(x, theta)
    span = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(n, 1, 1, 1).clamp_min(1e-6)
    y = y + noise * span * torch.randn(y.shape, generator=g).to(y.device, y.dtype)
    side = (_u(g, n, *cutout) * min(h, w)).long().clamp_min(1)
    cy = (torch.rand(n, generator=g) * h).long()
    cx = (torch.rand(n, generator=g) * w).long()
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    half = (side // 2).view(n, 1, 1)
    hole = ((rows - cy.view(n, 1, 1)).abs() <= half) & ((cols - cx.view(n, 1, 1)).abs() <= half)
    return y.masked_fill(hole.unsqueeze(-1).to(y.device), 0.0)
