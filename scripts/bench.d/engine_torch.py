#!/usr/bin/python3
"""PyTorch-eager side of scripts/bench.d/engine.sh: the same Med-SA model (model/train/medsa) on the same
input as `medsa bench`, timed the same way (encode one slice; click -> mask with the embedding cached).

  engine_torch.py time --model DIR [--checkpoint PT] [--n N] [--threads T]   -> one JSON line
  engine_torch.py export OUTDIR                                            -> a random-weight stand-in model

The model's Config comes from the checkpoint when one is given (key "cfg"/"config"), else from the manifest's
"config" key when present, else the defaults. Weights don't change the speed: without a checkpoint the eager
model has random weights of the same architecture.
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "model", "train"))
from medsa.model import Config, MedSA  # noqa: E402


def phantom(n=256):
    """The synthetic 2D image of `medsa bench` without --image (cmd_bench.go: phantom)."""
    img = np.zeros((n, n), np.float32)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    for cx, cy, rx, ry, val in [(128, 128, 100, 80, 80), (100, 110, 30, 20, 200), (160, 150, 20, 35, 160)]:
        img[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1] = val
    return img, (1.0, 1.0), (128.0, 256.0)


def load_cfg(manifest, ckpt):
    if ckpt:
        sd = torch.load(ckpt, map_location="cpu")
        for k in ("cfg", "config"):
            if isinstance(sd, dict) and k in sd:
                return Config.from_dict(sd[k]), sd
        return Config(), sd
    if manifest and isinstance(manifest.get("config"), dict):
        return Config.from_dict(manifest["config"]), None
    return Config(), None


def build(cfg, sd):
    m = MedSA(cfg).eval()
    if sd is not None:
        state = sd.get("model", sd.get("state_dict", sd)) if isinstance(sd, dict) else sd
        m.load_state_dict(state, strict=False)
    return m


def preprocess(sl, spacing, window, S, mean, std):
    x = torch.from_numpy(sl)
    c, w = float(window[0]), float(window[1])
    x = torch.clamp((x - (c - w / 2)) / w, 0, 1)
    H, W = sl.shape
    eu, ev = W * spacing[0], H * spacing[1]
    scale = S / max(eu, ev)
    W2, H2 = max(1, int(np.floor(eu * scale + 0.5))), max(1, int(np.floor(ev * scale + 0.5)))
    x = F.interpolate(x.view(1, 1, H, W).expand(1, 3, H, W), size=(H2, W2), mode="bilinear", align_corners=False)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    out = torch.zeros(1, 3, S, S)
    out[:, :, :H2, :W2] = x
    return out, W2, H2


def cmd_time(a):
    torch.set_num_threads(a.threads)
    man = None
    if a.model and os.path.exists(os.path.join(a.model, "manifest.json")):
        man = json.load(open(os.path.join(a.model, "manifest.json")))
    cfg, sd = load_cfg(man, a.checkpoint)
    m = build(cfg, sd)
    S, L = cfg.img_size, cfg.low_res
    mean = man["mean"] if man else [0.5] * 3
    std = man["std"] if man else [0.25] * 3
    sl, spacing, window = phantom()
    H, W = sl.shape

    def encode():
        img, W2, H2 = preprocess(sl, spacing, window, S, mean, std)
        return m.image_encoder(img), W2, H2

    def click(emb, W2, H2, i):
        u, v = W // 2 + (i % 5 - 2), H // 2 + (i % 3 - 1)
        coords = torch.tensor([[[u * W2 / W, v * H2 / H], [0.0, 0.0]]], dtype=torch.float32)
        labels = torch.tensor([[1.0, -1.0]])
        low, iou = m.decode(emb, coords, labels, torch.zeros(1, 1, L, L), torch.zeros(1))
        cw, ch = int(np.ceil(W2 * L / S)), int(np.ceil(H2 * L / S))
        masks = F.interpolate(low[:, :, :ch, :cw], size=(H, W), mode="bilinear", align_corners=False) > 0
        best = int(iou[0].argmax())
        return masks[0, best].numpy().astype(np.uint8)

    enc, c2m = [], []
    with torch.inference_mode():
        for i in range(a.n + 2):
            t = time.perf_counter()
            emb, W2, H2 = encode()
            if i >= 2:
                enc.append((time.perf_counter() - t) * 1000)
        for i in range(a.n + 3):
            t = time.perf_counter()
            click(emb, W2, H2, i)
            if i >= 3:
                c2m.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        emb, W2, H2 = encode()
        click(emb, W2, H2, 0)
        first = (time.perf_counter() - t) * 1000

    def pct(x, p):
        s = sorted(x)
        return s[max(0, min(len(s) - 1, int(np.ceil(p / 100 * len(s))) - 1))]

    print(json.dumps({"impl": "pytorch-eager", "torch": torch.__version__, "threads": a.threads,
                      "weights": "checkpoint" if sd is not None else "random (same architecture)",
                      "config": cfg.to_dict(),
                      "encode_ms_p50": pct(enc, 50), "encode_ms_p95": pct(enc, 95),
                      "click_to_mask_ms_p50": pct(c2m, 50), "click_to_mask_ms_p95": pct(c2m, 95),
                      "first_mask_ms": first}))


class EncoderWrap(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, image):
        return self.m.image_encoder(image)


class DecoderWrap(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        low, iou = self.m.decode(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)
        h = orig_im_size[0].to(torch.int64)
        w = orig_im_size[1].to(torch.int64)
        masks = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
        return masks, iou, low


def sha256(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def cmd_export(a):
    """A random-weight stand-in with the default Config (benchmarks before the bundled model exists)."""
    torch.manual_seed(0)
    cfg = Config()
    m = MedSA(cfg).eval()
    os.makedirs(a.out, exist_ok=True)
    S, L, e, g = cfg.img_size, cfg.low_res, cfg.embed_dim, cfg.grid
    with torch.no_grad():
        torch.onnx.export(EncoderWrap(m), torch.zeros(1, 3, S, S), os.path.join(a.out, "encoder.onnx"),
                          opset_version=17, input_names=["image"], output_names=["image_embeddings"])
        dummy = (torch.zeros(1, e, g, g), torch.zeros(1, 2, 2), torch.tensor([[1.0, -1.0]]),
                 torch.zeros(1, 1, L, L), torch.zeros(1), torch.tensor([200.0, 300.0]))
        torch.onnx.export(DecoderWrap(m), dummy, os.path.join(a.out, "decoder.onnx"), opset_version=17,
                          input_names=["image_embeddings", "point_coords", "point_labels", "mask_input",
                                       "has_mask_input", "orig_im_size"],
                          output_names=["masks", "iou_predictions", "low_res_masks"],
                          dynamic_axes={"point_coords": {1: "n"}, "point_labels": {1: "n"},
                                        "masks": {2: "h", 3: "w"}})
    M = len(cfg.output_tokens)
    man = {"format": "medsa-manifest/1", "name": "medsa-standin", "version": "0.0.0",
           "architecture": "random-weight stand-in (scripts/bench.d/engine_torch.py export)", "input_size": S,
           "resize": "longest_side_pad", "pixel_aspect": "physical", "interpolation": "bilinear_half_pixel",
           "value_range": [0, 1], "rgb_scale": 255, "mean": [0.5] * 3, "std": [0.25] * 3, "grey_to_rgb": "replicate",
           "windowing": {"ct": "view", "default": "view", "percentiles": [0.5, 99.5], "ct_default_window": [40, 400]},
           "coords": "xy_model_pixels", "embedding_shape": [1, e, g, g], "low_res_mask_size": L,
           "num_mask_outputs": M, "mask_threshold": 0.0, "depth_chunk": 0,
           "files": {k: {"path": k + ".onnx", "sha256": sha256(os.path.join(a.out, k + ".onnx"))}
                     for k in ("encoder", "decoder")},
           "tensors": {"encoder": {"inputs": ["image"], "outputs": ["image_embeddings"]},
                       "decoder": {"inputs": ["image_embeddings", "point_coords", "point_labels", "mask_input",
                                              "has_mask_input", "orig_im_size"],
                                   "outputs": ["masks", "iou_predictions", "low_res_masks"]}},
           "config": cfg.to_dict()}
    json.dump(man, open(os.path.join(a.out, "manifest.json"), "w"), indent=1)
    print(a.out)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("--model", default="")
    t.add_argument("--checkpoint", default="")
    t.add_argument("--n", type=int, default=20)
    t.add_argument("--threads", type=int, default=2)
    x = sub.add_parser("export")
    x.add_argument("out")
    a = p.parse_args()
    {"time": cmd_time, "export": cmd_export}[a.cmd](a)


if __name__ == "__main__":
    main()
