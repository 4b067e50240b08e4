"""Generic (non-medical) segmentation data for base pretraining: synthetic shapes + skimage natural photos
with unsupervised regions (Felzenszwalb, SLIC).
Usage: build_generic.py OUT.npz N_SYNTH N_PHOTO SEED | build_generic.py --photos OUT.npz (the photos alone)"""
import os
import sys

import numpy as np
from skimage import io

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import synth, store  # noqa: E402
from medsa.live import random_crop, region_masks  # noqa: E402

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "camera.png", "coins.png", "horse.png",
          "motorcycle_left.png", "rocket.jpg", "page.png", "text.png", "moon.png", "brick.png", "grass.png",
          "gravel.png", "hubble_deep_field.jpg", "ihc.png", "logo.png", "color.png", "cell.png"]


def skimage_dir():
    import skimage
    return os.path.join(os.path.dirname(skimage.__file__), "data")


def skimage_photos():
    photos = []
    for p in PHOTOS:
        fp = os.path.join(skimage_dir(), p)
        if os.path.exists(fp):
            a = io.imread(fp)
            if a.ndim == 2:
                a = np.stack([a] * 3, -1)
            photos.append(a[..., :3].astype(np.uint8))
    return photos


def main():
    if sys.argv[1] == "--photos":  # the photos alone, for live crops on another machine (train.py --photos)
        ph = skimage_photos()
        np.savez_compressed(sys.argv[2], **{f"p{i:02d}": a for i, a in enumerate(ph)})
        print("wrote", sys.argv[2], len(ph), "photos")
        return
    out, n_syn, n_photo, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(seed)
    st = store.Store()
    while len(st) < n_syn:
        img, sp, win, masks = synth.generic(rng)
        rng.shuffle(masks)
        st.add(img, sp, win, masks, "synth-generic")
    photos = skimage_photos()
    k = 0
    while len(st) < n_syn + n_photo and photos:
        crop = random_crop(photos[k % len(photos)], rng)
        k += 1
        st.add(crop.astype(np.float32), (1.0, 1.0), None, region_masks(crop, rng), "photo")
    st.save(out)
    print("wrote", out, len(st))


if __name__ == "__main__":
    main()
