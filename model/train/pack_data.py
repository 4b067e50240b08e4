"""Pack a sample store compactly for carrying (e.g. to a GPU machine): grey canvases keep one channel, the file is
xz-compressed. store.load reads the result like any .npz. Usage: pack_data.py IN.npz OUT.npz.xz [--real-only]"""
import io
import lzma
import sys

import numpy as np


def main():
    src, dst = sys.argv[1], sys.argv[2]
    z = np.load(src)
    d = {k: z[k] for k in z.files}
    if "--real-only" in sys.argv[3:]:
        keep = np.array([not str(s).startswith("synth") for s in d["src"]])
        d = {k: v[keep] for k, v in d.items()}
    imgs = d["imgs"].copy()
    grey = (imgs[:, 0] == imgs[:, 1]).all((1, 2)) & (imgs[:, 1] == imgs[:, 2]).all((1, 2))
    imgs[grey, 1:] = 0  # restored by store.load from the "grey" flags
    d["imgs"], d["grey"] = imgs, grey
    b = io.BytesIO()
    np.savez(b, **d)
    with open(dst, "wb") as f:
        f.write(lzma.compress(b.getvalue(), preset=6))
    print(f"{dst}: {len(imgs)} samples, {int(grey.sum())} grey")


if __name__ == "__main__":
    main()
