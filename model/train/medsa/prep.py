"""THE preprocessing (docs/MANIFEST.md), used by training, evaluation and golden generation alike."""
import math

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT = {
    "input_size": 256,
    "resize": "longest_side_pad",
    "pixel_aspect": "physical",
    "rgb_scale": 255.0,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "percentiles": [0.5, 99.5],
    "ct_default_window": [40.0, 400.0],
}


def extent(W, H, spacing=(1.0, 1.0), m=DEFAULT):
    """(W', H') of the resized slice inside the S x S canvas. spacing = (along u/columns, along v/rows)."""
    S = m["input_size"]
    if m["resize"] == "stretch":
        return S, S
    if m["pixel_aspect"] == "physical":
        eu, ev = W * float(spacing[0]), H * float(spacing[1])
    else:
        eu, ev = float(W), float(H)
    scale = S / max(eu, ev)
    return max(1, int(math.floor(eu * scale + 0.5))), max(1, int(math.floor(ev * scale + 0.5)))


def window01(x, window):
    c, w = float(window[0]), float(window[1])
    x = np.asarray(x, dtype=np.float32)
    lo = np.float32(c - w / 2.0)
    return np.clip((x - lo) / np.float32(w), 0.0, 1.0).astype(np.float32)


def percentile_window(vol, p=(0.5, 99.5)):
    lo, hi = np.percentile(np.asarray(vol, dtype=np.float64), p)
    if hi <= lo:
        hi = lo + 1.0
    return ((lo + hi) / 2.0, hi - lo)


def to01(slice_, window=None, m=DEFAULT):
    """Grey [H,W] with a window -> [3,H,W] in [0,1] (replicated); RGB [H,W,3] -> /rgb_scale."""
    a = np.asarray(slice_, dtype=np.float32)
    if a.ndim == 3 and a.shape[2] == 3:
        return np.ascontiguousarray((a / np.float32(m["rgb_scale"])).transpose(2, 0, 1))
    if a.ndim == 3:
        a = a[..., 0]
    g = window01(a, window)
    return np.repeat(g[None], 3, axis=0)


def axis_weights(n_in, n_out):
    """Bilinear half-pixel taps, float32 throughout, in this exact order of operations (the Go engine does the
    same): scale = in/out; src = scale*(d+0.5) - 0.5, clamped at 0; i0 = floor(src) (<= in-1); l = src - i0."""
    sc = np.float32(n_in) / np.float32(n_out)
    src = sc * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    src = np.maximum(src, np.float32(0)).astype(np.float32)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(np.float32), np.float32(0), np.float32(1)).astype(np.float32)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    return i0, i1, (np.float32(1) - lam).astype(np.float32), lam


def resize_bilinear(img, Wp, Hp):
    """[C,H,W] float32 -> [C,H',W']: t0 = r0[a]*w0 + r0[b]*w1, t1 likewise, out = t0*h0 + t1*h1 (float32)."""
    img = np.asarray(img, dtype=np.float32)
    xa, xb, xw0, xw1 = axis_weights(img.shape[-1], Wp)
    ya, yb, yh0, yh1 = axis_weights(img.shape[-2], Hp)
    r0 = img[..., ya, :]
    r1 = img[..., yb, :]
    t0 = r0[..., xa] * xw0 + r0[..., xb] * xw1
    t1 = r1[..., xa] * xw0 + r1[..., xb] * xw1
    return (t0 * yh0[:, None] + t1 * yh1[:, None]).astype(np.float32)


def resize01(img01, Wp, Hp):
    """[3,H,W] -> [3,H',W'] bilinear half-pixel, no antialiasing (= torch align_corners=False up to rounding)."""
    return resize_bilinear(img01, Wp, Hp)


def normalise_pad(r01, m=DEFAULT):
    S = m["input_size"]
    mean = np.asarray(m["mean"], np.float32).reshape(3, 1, 1)
    std = np.asarray(m["std"], np.float32).reshape(3, 1, 1)
    out = np.zeros((3, S, S), np.float32)
    _, h, w = r01.shape
    out[:, :h, :w] = (r01 - mean) / std
    return out


def preprocess(slice_, spacing=(1.0, 1.0), window=None, m=DEFAULT):
    """Raw slice -> encoder input [3,S,S] float32 and (W', H')."""
    a = np.asarray(slice_)
    H, W = a.shape[0], a.shape[1]
    Wp, Hp = extent(W, H, spacing, m)
    r = resize01(to01(a, window, m), Wp, Hp)
    return normalise_pad(r, m), (Wp, Hp)


def to_model_coords(u, v, W, H, Wp, Hp):
    """Slice pixel (u, v) -> model-input (x, y) (SAM's transform: x = u*W'/W)."""
    return u * Wp / W, v * Hp / H


def postprocess_masks(low_res, W, H, Wp, Hp, S=256):
    """low_res [B,M,L,L] logits -> [B,M,H,W] logits per the manifest: crop to ceil(W'*L/S) x ceil(H'*L/S),
    bilinear half-pixel to H x W."""
    L = low_res.shape[-1]
    cw = int(math.ceil(Wp * L / S))
    ch = int(math.ceil(Hp * L / S))
    t = np.asarray(low_res, dtype=np.float32)[..., :ch, :cw]
    return torch.from_numpy(np.ascontiguousarray(resize_bilinear(t, W, H)))


def mask_to_lowres(mask, Wp, Hp, L=128, S=256):
    """Binary slice mask [H,W] -> [L,L] target on the canvas grid (area fraction > 0.5)."""
    t = torch.from_numpy(np.asarray(mask, np.float32))[None, None]
    r = F.interpolate(t, size=(Hp, Wp), mode="bilinear", align_corners=False)[0, 0]
    c = torch.zeros(S, S)
    c[:Hp, :Wp] = r
    f = S // L
    return (F.avg_pool2d(c[None, None], f)[0, 0] > 0.5).numpy()
