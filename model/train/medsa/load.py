"""One loader for every checkpoint layout: Med-SA 1.x (model.py, ViT) and Med-SA 2.0 (net.py, "conv2")."""
import torch

from . import litemedsam, model as M, net, prep


def from_checkpoint(ck):
    """A checkpoint dict (or path) -> the model in eval mode, weights loaded. "litemedsam[:TOKENS]" (or a path
    to lite_medsam.pth[:TOKENS]) is LiteMedSAM's checkpoint with the mask tokens it returns, e.g. "litemedsam:0"."""
    if litemedsam.is_spec(ck):
        return litemedsam.from_spec(ck)
    if isinstance(ck, str):
        ck = torch.load(ck, map_location="cpu")
    if ck.get("arch") == net.ARCH or ck["config"].get("arch") == net.ARCH:
        m = net.MedSA2(net.Config.from_dict(ck["config"]))
    else:
        m = M.MedSA(M.Config.from_dict(ck["config"]))
    m.load_state_dict(ck["model"])
    if "prep" in ck:  # a model with its own preprocessing (LiteMedSAM-based: no mean/std, 128 px)
        m.prep = {**prep.DEFAULT, **ck["prep"]}
    return m.eval()
