"""Synthetic images with exact masks: generic shapes/textures (base pretraining) and medical look-alikes
(dermoscopy lesions, fundus disc/cup, ultrasound nodules with speckle, abdominal-CT-like organs in HU)."""
import numpy as np
from scipy import ndimage as ndi
from skimage import draw


def noise(h, w, scale, rng):
    n = ndi.gaussian_filter(rng.standard_normal((h, w)), scale)
    return (n - n.mean()) / (n.std() + 1e-6)


def shape_mask(h, w, rng, cy=None, cx=None, r=None):
    cy = rng.uniform(0.1, 0.9) * h if cy is None else cy
    cx = rng.uniform(0.1, 0.9) * w if cx is None else cx
    r = rng.uniform(0.04, 0.3) * min(h, w) if r is None else r
    kind = rng.integers(4)
    m = np.zeros((h, w), bool)
    if kind == 0:  # rotated ellipse
        rr, cc = draw.ellipse(cy, cx, r, r * rng.uniform(0.3, 1.0), shape=(h, w), rotation=rng.uniform(0, np.pi))
        m[rr, cc] = True
    elif kind == 1:  # star-convex polygon
        k = rng.integers(5, 12)
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = r * rng.uniform(0.5, 1.0, k)
        rr, cc = draw.polygon(cy + rad * np.sin(ang), cx + rad * np.cos(ang), shape=(h, w))
        m[rr, cc] = True
    elif kind == 2:  # blob: smooth noise inside an ellipse envelope
        yy, xx = np.mgrid[:h, :w]
        d = ((yy - cy) / r) ** 2 + ((xx - cx) / (r * rng.uniform(0.5, 1.2))) ** 2
        m = (1 - d + 0.35 * noise(h, w, max(2, r / 3), rng)) > 0.3
        m = ndi.binary_fill_holes(m)
    else:  # rectangle
        hh, ww = r * rng.uniform(0.4, 1.0), r * rng.uniform(0.4, 1.0)
        m[int(max(0, cy - hh)):int(cy + hh), int(max(0, cx - ww)):int(cx + ww)] = True
    return m


def _soft(m, sigma):
    f = m.astype(np.float32)
    return ndi.gaussian_filter(f, sigma) if sigma > 0 else f


def generic(rng):
    """Random textured objects (some nested) over a textured background; grey or RGB; random size/spacing."""
    h, w = int(rng.integers(128, 320)), int(rng.integers(128, 320))
    rgb = rng.random() < 0.5
    ch = 3 if rgb else 1
    img = rng.uniform(0.1, 0.9, ch)[None, None, :] + 0.12 * rng.uniform(0, 1) * np.stack(
        [noise(h, w, rng.uniform(1, 10), rng) for _ in range(ch)], -1)
    img = img.astype(np.float32)
    objs, owner = [], np.zeros((h, w), np.int16)
    n = int(rng.integers(2, 7))
    for i in range(n):
        if objs and rng.random() < 0.3:  # nested child inside a previous object
            p = objs[int(rng.integers(len(objs)))]
            ys, xs = np.nonzero(p)
            if len(ys) < 50:
                continue
            j = rng.integers(len(ys))
            r = 0.35 * np.sqrt(len(ys) / np.pi)
            m = shape_mask(h, w, rng, ys[j], xs[j], r) & p
        else:
            m = shape_mask(h, w, rng)
        if m.sum() < 30:
            continue
        col = rng.uniform(0, 1, ch)
        tex = 0.15 * rng.uniform(0, 1) * np.stack([noise(h, w, rng.uniform(0.7, 4), rng) for _ in range(ch)], -1)
        a = _soft(m, rng.uniform(0, 1.2))[..., None]
        img = img * (1 - a) + (col[None, None, :] + tex) * a
        objs.append(m)
        owner[m] = len(objs)
    masks = []
    for i, m in enumerate(objs):
        vis = owner == i + 1
        masks.append(vis)
        if (m & ~vis).sum() > 0.1 * m.sum():
            masks.append(m)  # whole object including what is nested inside it
    img = img + rng.uniform(0, 0.06) * rng.standard_normal(img.shape)
    img = np.clip(img, 0, 1)
    sp = (1.0, 1.0) if rng.random() < 0.6 else (1.0, float(rng.uniform(0.5, 2.0)))
    if rgb:
        return (img * 255).astype(np.float32), sp, None, masks
    return img[..., 0] * 1000.0, sp, (500.0, 1000.0), masks


# ---------------------------------------------------------------------------------------------- medical-like

def dermoscopy(rng):
    h = w = int(rng.integers(200, 320))
    skin = np.array([rng.uniform(0.75, 0.95), rng.uniform(0.55, 0.75), rng.uniform(0.45, 0.65)])
    img = skin[None, None] * (1 + 0.04 * noise(h, w, 6, rng)[..., None]) + 0.02 * noise(h, w, 1, rng)[..., None]
    m = shape_mask(h, w, rng, h * rng.uniform(0.35, 0.65), w * rng.uniform(0.35, 0.65),
                   min(h, w) * rng.uniform(0.12, 0.33))
    m = ndi.binary_opening(m, iterations=2) if m.sum() > 500 else m
    col = np.array([rng.uniform(0.25, 0.55), rng.uniform(0.12, 0.3), rng.uniform(0.05, 0.2)])
    a = _soft(m, rng.uniform(0.8, 3))[..., None]
    pig = col[None, None] * (1 + 0.25 * noise(h, w, rng.uniform(1.5, 4), rng)[..., None])
    img = img * (1 - a) + pig * a
    masks = [m]
    core = m & (ndi.distance_transform_edt(m) > 0.45 * ndi.distance_transform_edt(m).max())
    if rng.random() < 0.5 and core.sum() > 60:
        img = img * (1 - core[..., None] * 0.4)
        masks.append(core)
    for _ in range(int(rng.integers(0, 25))):  # hairs
        y0, x0, y1, x1 = rng.integers(0, h, 4)
        rr, cc = draw.line(y0, x0, y1, x1)
        img[rr, cc] *= 0.35
    yy, xx = np.mgrid[:h, :w]
    vig = 1 - 0.5 * np.clip(((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (0.5 * h) ** 2 - 0.6, 0, 1)
    img = np.clip(img * vig[..., None], 0, 1)
    return img * 255, (1.0, 1.0), None, masks


def fundus(rng):
    h = w = int(rng.integers(220, 320))
    yy, xx = np.mgrid[:h, :w]
    fov = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (0.47 * h) ** 2
    base = np.array([rng.uniform(0.6, 0.85), rng.uniform(0.25, 0.4), rng.uniform(0.08, 0.18)])
    img = base[None, None] * (1 + 0.08 * noise(h, w, 8, rng)[..., None])
    # vessels: thresholded ridges of smooth noise
    v = np.abs(noise(h, w, rng.uniform(5, 9), rng)) < 0.06
    img = img * (1 - 0.35 * v[..., None])
    cy, cx = h * rng.uniform(0.4, 0.6), w * rng.choice([rng.uniform(0.25, 0.38), rng.uniform(0.62, 0.75)])
    r = h * rng.uniform(0.07, 0.11)
    disc = ((yy - cy) / r) ** 2 + ((xx - cx) / (r * rng.uniform(0.85, 1.0))) ** 2 < 1
    cup = ((yy - cy) / (r * 0.5)) ** 2 + ((xx - cx) / (r * rng.uniform(0.4, 0.65))) ** 2 < 1
    img = img + 0.3 * _soft(disc, 2)[..., None] * np.array([0.9, 0.8, 0.5]) + 0.15 * _soft(cup, 2)[..., None]
    mac = ((yy - h / 2) ** 2 + (xx - (w - cx)) ** 2) < (h * 0.06) ** 2
    img = img * (1 - 0.25 * _soft(mac, 6)[..., None])
    img = np.clip(img * fov[..., None], 0, 1)
    return img * 255, (1.0, 1.0), None, [disc, cup, fov]


def ultrasound(rng):
    h, w = int(rng.integers(180, 300)), int(rng.integers(220, 340))
    tissue = 0.45 + 0.1 * noise(h, w, 10, rng)
    masks = []
    for _ in range(int(rng.integers(1, 3))):
        m = shape_mask(h, w, rng, h * rng.uniform(0.3, 0.7), w * rng.uniform(0.25, 0.75),
                       min(h, w) * rng.uniform(0.07, 0.22))
        if m.sum() < 40:
            continue
        val = rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.6, 0.85)])
        tissue = np.where(m, val + 0.05 * noise(h, w, 3, rng), tissue)
        # posterior acoustic shadow/enhancement under the nodule
        cols = np.nonzero(m.any(0))[0]
        rows = np.nonzero(m.any(1))[0]
        tissue[rows.max():, cols.min():cols.max() + 1] *= rng.uniform(0.7, 1.3)
        masks.append(m)
    speck = rng.rayleigh(1.0, (h, w))
    speck = ndi.gaussian_filter(speck, (0.6, 1.5))
    img = np.clip(tissue * speck / speck.mean(), 0, 1.6)
    yy, xx = np.mgrid[:h, :w]
    ang = np.abs(np.arctan2(xx - w / 2, yy + h * 0.3))
    sector = (ang < rng.uniform(0.55, 0.75)) & (yy > 6)
    img = img * sector * np.linspace(1.1, 0.7, h)[:, None]
    masks = [m & sector for m in masks]
    return img * 150, (1.0, 1.0), (90.0, 180.0), masks


def abdomen_ct(rng):
    """Axial abdominal-CT-like slice in HU with organ masks (liver, spleen, kidneys, aorta, spine, body)."""
    h = w = 256
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    cy, cx = h * 0.5 + rng.normal(0, 5), w * 0.5 + rng.normal(0, 5)
    ay, ax = h * rng.uniform(0.30, 0.38), w * rng.uniform(0.40, 0.46)
    body = ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 < 1
    hu = np.full((h, w), -1000.0, np.float32)
    hu[body] = -100  # fat
    muscle = body & ~(((yy - cy) / (ay - 8)) ** 2 + ((xx - cx) / (ax - 8)) ** 2 < 1)
    hu[muscle] = 50
    organs = {}

    def ell(oy, ox, ry, rx, rot=0.0):
        m = np.zeros((h, w), bool)
        rr, cc = draw.ellipse(cy + oy, cx + ox, ry, rx, shape=(h, w), rotation=rot)
        m[rr, cc] = True
        return m & body

    j = lambda s: rng.normal(0, s)
    organs["liver"] = ell(-ay * 0.15 + j(4), -ax * 0.35 + j(4), ay * 0.5 + j(4), ax * 0.38 + j(4), j(0.3)) & (
        noise(h, w, 12, rng) > -1.2)
    organs["spleen"] = ell(-ay * 0.2 + j(4), ax * 0.55 + j(4), ay * 0.25, ax * 0.14, 0.6 + j(0.2))
    organs["kidney_l"] = ell(ay * 0.35 + j(3), ax * 0.32 + j(3), ay * 0.18, ax * 0.1, 0.3)
    organs["kidney_r"] = ell(ay * 0.35 + j(3), -ax * 0.32 + j(3), ay * 0.18, ax * 0.1, -0.3)
    organs["aorta"] = ell(ay * 0.35 + j(2), ax * 0.05 + j(2), 7 + j(1), 7 + j(1))
    organs["spine"] = ell(ay * 0.62 + j(2), j(2), 16, 18)
    organs["stomach"] = ell(-ay * 0.35 + j(4), ax * 0.15 + j(4), ay * 0.22, ax * 0.2, j(0.5))
    vals = {"liver": 60, "spleen": 50, "kidney_l": 150, "kidney_r": 150, "aorta": 180, "spine": 500, "stomach": 10}
    for k, m in organs.items():
        hu[m] = vals[k] + rng.normal(0, 10)
    if rng.random() < 0.6:  # a hypodense lesion in the liver
        ys, xs = np.nonzero(organs["liver"])
        if len(ys):
            i = rng.integers(len(ys))
            les = ell(ys[i] - cy, xs[i] - cx, rng.uniform(5, 16), rng.uniform(5, 16)) & organs["liver"]
            hu[les] = 15
            organs["lesion"] = les
    hu = ndi.gaussian_filter(hu, 0.8) + rng.normal(0, rng.uniform(5, 20), (h, w))
    sp = float(rng.uniform(0.6, 0.9))
    win = [(40, 400), (60, 350), (40, 80)][int(rng.integers(3))]
    win = (win[0] + rng.normal(0, 15), win[1] * rng.uniform(0.8, 1.2))
    masks = [m for m in organs.values()] + [body]
    return hu, (sp, sp), win, masks
