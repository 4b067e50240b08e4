"""Training sample store: preprocessed [0,1] canvases (uint8) + candidate target masks on the low-res grid."""
import io
import lzma

import numpy as np
from scipy import ndimage as ndi

from . import prep

S, L = 256, 128


class Store:
    def __init__(self, K=8):
        self.K = K
        self.imgs, self.wh, self.masks, self.nm, self.src = [], [], [], [], []

    def add(self, slice_, spacing, window, masks, src, min_px=10, max_frac=0.7):
        """slice_: raw grey [H,W] (with window) or RGB [H,W,3]; masks: binary arrays [H,W] (slice frame)."""
        a = np.asarray(slice_)
        H, W = a.shape[:2]
        Wp, Hp = prep.extent(W, H, spacing)
        r = prep.resize01(prep.to01(a, window), Wp, Hp)
        lr = []
        cap = max_frac * (Wp * Hp) / 4.0
        for mk in masks:
            t = prep.mask_to_lowres(mk, Wp, Hp, L, S)
            n = int(t.sum())
            if n < min_px or n > cap:
                continue
            lr.append(t)
            if len(lr) >= self.K:
                break
        if not lr:
            return False
        img = np.zeros((3, S, S), np.uint8)
        img[:, :Hp, :Wp] = np.clip(np.rint(r * 255), 0, 255).astype(np.uint8)
        mk = np.zeros((self.K, L, L), bool)
        mk[:len(lr)] = np.stack(lr)
        self.imgs.append(img)
        self.wh.append((Wp, Hp))
        self.masks.append(np.packbits(mk.reshape(self.K, -1), axis=1))
        self.nm.append(len(lr))
        self.src.append(src)
        return True

    def __len__(self):
        return len(self.imgs)

    def save(self, path):
        np.savez(path, imgs=np.stack(self.imgs), wh=np.array(self.wh, np.int16), masks=np.stack(self.masks),
                 nm=np.array(self.nm, np.int16), src=np.array(self.src))


def _load_one(path):
    """A store .npz, or one packed by pack_data.py (.xz; grey canvases keep one channel)."""
    if str(path).endswith(".xz"):
        with open(path, "rb") as f:
            z = np.load(io.BytesIO(lzma.decompress(f.read())))
        d = {k: z[k] for k in z.files}
        g = d.pop("grey")
        d["imgs"][g, 1] = d["imgs"][g, 0]
        d["imgs"][g, 2] = d["imgs"][g, 0]
        return d
    z = np.load(path)
    return {k: z[k] for k in z.files}


def load(paths):
    parts = [_load_one(p) for p in paths]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("imgs", "wh", "masks", "nm", "src")}


def unpack_masks(packed, K):
    return np.unpackbits(packed, axis=-1)[..., :L * L].reshape(*packed.shape[:-1], L, L).astype(bool)


def components(mask, min_px=30, max_n=6):
    """Connected components of a binary mask, largest first, holes filled."""
    lab, n = ndi.label(mask)
    if n == 0:
        return []
    sizes = ndi.sum(np.ones_like(lab), lab, index=np.arange(1, n + 1))
    out = []
    for i in np.argsort(-sizes)[:max_n]:
        if sizes[i] < min_px:
            break
        out.append(ndi.binary_fill_holes(lab == i + 1))
    return out
