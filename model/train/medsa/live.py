"""Samples generated on the fly (fresh every step) instead of read from a stored set: the synthetic generators and
crops of the generic photos with unsupervised regions. Used when training on a machine with an accelerator, where a
fixed store would be seen many times over; each sample goes through Store.add exactly as a stored one did."""
import numpy as np
from skimage import segmentation

from . import store, synth

SYNTH = {
    "synth-generic": synth.generic,
    "synth:dermoscopy": synth.dermoscopy,
    "synth:fundus": synth.fundus,
    "synth:ultrasound": synth.ultrasound,
    "synth:abdomen_ct": synth.abdomen_ct,
}


def region_masks(rgb, rng):
    """Felzenszwalb or SLIC regions of a photo crop, largest first (one component each), shuffled."""
    f = rgb.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        seg = segmentation.felzenszwalb(f, scale=float(rng.uniform(100, 600)), sigma=0.8, min_size=80)
    else:
        seg = segmentation.slic(f, n_segments=int(rng.integers(8, 30)), compactness=float(rng.uniform(5, 20)),
                                start_label=1)
    ids, cnt = np.unique(seg, return_counts=True)
    order = np.argsort(-cnt)
    out = []
    for i in order[:12]:
        out.extend(store.components(seg == ids[i], min_px=60, max_n=1))
    rng.shuffle(out)
    return out


def photo_crop(photos, rng):
    return random_crop(photos[int(rng.integers(len(photos)))], rng)


def random_crop(a, rng):
    """A random crop of 40-100 % of each side."""
    H, W = a.shape[:2]
    ch, cw = int(H * rng.uniform(0.4, 1.0)), int(W * rng.uniform(0.4, 1.0))
    y0, x0 = rng.integers(0, H - ch + 1), rng.integers(0, W - cw + 1)
    return a[y0:y0 + ch, x0:x0 + cw]


def load_photos(path):
    z = np.load(path)
    return [z[k] for k in sorted(z.files)]


def parse(spec):
    """'synth-generic:3000,photo:700' -> (names, probabilities)."""
    names, w = [], []
    for part in spec.split(","):
        n, _, x = part.partition(":")
        if n == "synth":  # 'synth:dermoscopy:400'
            n2, _, x = x.partition(":")
            n = "synth:" + n2
        if n not in SYNTH and n != "photo":
            raise ValueError(f"unknown live source {n!r}")
        names.append(n)
        w.append(float(x or 1))
    w = np.array(w)
    return names, w / w.sum()


class Live:
    def __init__(self, spec, photos=None):
        self.names, self.p = parse(spec)
        self.photos = photos
        if "photo" in self.names and not photos:
            raise ValueError("live source 'photo' needs --photos")

    def sample(self, rng):
        """-> (uint8 [3,S,S] canvas, (w, h), bool [L,L] target, source name)."""
        while True:
            name = self.names[rng.choice(len(self.names), p=self.p)]
            st = store.Store()
            if name == "photo":
                crop = photo_crop(self.photos, rng)
                ok = st.add(crop.astype(np.float32), (1.0, 1.0), None, region_masks(crop, rng), "photo")
            else:
                img, sp, win, masks = SYNTH[name](rng)
                if name == "synth-generic":
                    rng.shuffle(masks)
                ok = st.add(img, sp, win, masks, name)
            if not ok:
                continue
            k = int(rng.integers(st.nm[0]))
            m = store.unpack_masks(st.masks[0][k:k + 1], 1)[0]
            return st.imgs[0], st.wh[0], m, name

    def fixed(self, n, seed):
        """n samples in the stored-set layout (one target each), for a fixed validation set."""
        rng = np.random.default_rng(seed)
        s = [self.sample(rng) for _ in range(n)]
        return {"imgs": np.stack([x[0] for x in s]), "wh": np.array([x[1] for x in s], np.int16),
                "masks": np.stack([np.packbits(x[2].reshape(1, -1), axis=1) for x in s]),
                "nm": np.ones(n, np.int16), "src": np.array([x[3] for x in s])}
