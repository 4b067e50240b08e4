"""Prompt simulation on the low-res grid (L x L over the S x S canvas); coordinates returned in model pixels."""
import numpy as np
from scipy import ndimage as ndi

S, L = 256, 128
F = S / L


def cell_to_xy(r, c, rng=None):
    j = rng.uniform(-0.5, 0.5, 2) if rng is not None else (0.0, 0.0)
    return ((c + 0.5 + j[0]) * F, (r + 0.5 + j[1]) * F)


def deepest(mask):
    """Cell of maximal distance to the region's border (the evaluation's click)."""
    d = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(np.argmax(d), d.shape)
    return r, c, d


def random_interior(mask, rng, centre_bias=0.5):
    r0, c0, d = deepest(mask)
    if rng.random() < centre_bias:
        cand = np.argwhere(d >= 0.6 * d.max())
    else:
        cand = np.argwhere(d >= min(2.0, d.max()))
    if len(cand) == 0:
        return r0, c0
    return tuple(cand[rng.integers(len(cand))])


def box(mask, rng=None, mode="tight", valid=None):
    rows = np.nonzero(mask.any(1))[0]
    cols = np.nonzero(mask.any(0))[0]
    x0, x1 = cols[0] * F, (cols[-1] + 1) * F
    y0, y1 = rows[0] * F, (rows[-1] + 1) * F
    if rng is not None:
        w, h = x1 - x0, y1 - y0
        if mode == "tight":
            n = rng.normal(0, 0.04, 4) * np.array([w, h, w, h])
        else:
            n = rng.uniform(0, 0.2, 4) * np.array([w, h, w, h]) * np.array([-1, -1, 1, 1])
        x0, y0, x1, y1 = x0 + n[0], y0 + n[1], x1 + n[2], y1 + n[3]
    Wv, Hv = valid if valid is not None else (S, S)
    x0, x1 = np.clip([x0, x1], 0, Wv)
    y0, y1 = np.clip([y0, y1], 0, Hv)
    return [(x0, y0), (x1, y1)]
