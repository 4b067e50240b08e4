#!/usr/bin/python3
"""Generates testdata/tinymodel/: a tiny model that satisfies docs/MANIFEST.md.

The weights are random (seeded) but the decoder is built so its masks follow the
prompts and the image: inside a box or near a positive click AND where the
windowed image is bright enough, the logits are positive. That keeps engine tests (prompts,
refinement, propagation that stops when the structure ends) meaningful without a
trained model. It also writes a golden case in the testdata/golden layout so the
Go golden test can run against this model.

Run: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 model/testmodel/gen_tiny.py [OUTDIR]
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

S = 64  # input size
C = 8  # embedding channels
G = 8  # embedding grid
L = 32  # low-res mask size
M = 3  # mask candidates
D = 4  # depth chunk of encoder3d
MEAN = [0.5, 0.5, 0.5]
STD = [0.25, 0.25, 0.25]


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, C - 1, kernel_size=S // G, stride=S // G)

    def forward(self, image):
        # Channel 0: the mean normalised intensity per cell (the decoder's "brightness").
        bright = F.avg_pool2d(image.mean(dim=1, keepdim=True), S // G)
        return torch.cat([bright, 0.1 * torch.tanh(self.conv(image))], dim=1)


class Encoder3D(nn.Module):
    """Same per-slice encoder plus a little mixing along depth, so chunk borders matter."""

    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, images):
        e = self.enc(images)  # [D, C, G, G]
        return 0.9 * e + 0.1 * e.mean(dim=0, keepdim=True)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = nn.Conv2d(C, M, kernel_size=1)
        self.iou = nn.Linear(M, M)
        # Candidate m looks at clicks with a growing radius (small, medium, large).
        self.register_buffer("sigma", torch.tensor([3.0, 6.0, 12.0]).view(1, M, 1, 1))
        c = (torch.arange(L, dtype=torch.float32) + 0.5) * (S / L)
        self.register_buffer("gy", c.view(1, 1, L, 1))
        self.register_buffer("gx", c.view(1, 1, 1, L))

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        up = F.interpolate(image_embeddings, size=(L, L), mode="bilinear", align_corners=False)
        bright = up[:, 0:1]
        x = point_coords[..., 0].view(1, -1, 1, 1)
        y = point_coords[..., 1].view(1, -1, 1, 1)
        lab = point_labels.view(1, -1, 1, 1)
        d2 = (self.gx - x) ** 2 + (self.gy - y) ** 2  # [1, N, L, L]
        pos = (lab == 1).float()
        neg = (lab == 0).float()
        g = []
        for m in range(M):
            s2 = 2.0 * self.sigma[0, m, 0, 0] ** 2
            k = torch.exp(-d2 / s2)
            g.append(((pos - neg) * k).sum(dim=1, keepdim=True))
        clicks = torch.cat(g, dim=1)  # [1, M, L, L]
        tl = (lab == 2).float()
        br = (lab == 3).float()
        has_box = tl.sum()
        x0 = (x * tl).sum()
        y0 = (y * tl).sum()
        x1 = (x * br).sum()
        y1 = (y * br).sum()
        inside = torch.sigmoid(self.gx - x0) * torch.sigmoid(x1 - self.gx) * torch.sigmoid(self.gy - y0) * torch.sigmoid(y1 - self.gy)
        prompt = 8.0 * clicks + has_box * (10.0 * inside - 2.0) - 4.0
        # Inside the prompt AND bright enough (window-normalised intensity > 0.25).
        image = 4.0 * (bright + 1.0)
        logits = torch.minimum(prompt, image) + 0.3 * self.mix(up) + 0.5 * has_mask_input.view(1, 1, 1, 1) * mask_input
        low_res_masks = logits
        iou_predictions = torch.sigmoid(self.iou(torch.tanh(logits.mean(dim=(2, 3)))))
        h = orig_im_size[0].to(torch.int64)
        w = orig_im_size[1].to(torch.int64)
        masks = F.interpolate(low_res_masks, size=(h, w), mode="bilinear", align_corners=False)
        return masks, iou_predictions, low_res_masks


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def preprocess(sl, spacing, window):
    """docs/MANIFEST.md preprocessing of a grey H x W slice, float32 throughout."""
    c, w = np.float32(window[0]), np.float32(window[1])
    x = torch.from_numpy(sl.astype(np.float32))
    x = torch.clamp((x - (c - w / np.float32(2))) / w, 0, 1)
    H, W = sl.shape
    eu, ev = W * spacing[0], H * spacing[1]
    scale = S / max(eu, ev)
    W2 = max(1, int(np.floor(eu * scale + 0.5)))
    H2 = max(1, int(np.floor(ev * scale + 0.5)))
    x = x.view(1, 1, H, W).expand(1, 3, H, W)
    x = F.interpolate(x, size=(H2, W2), mode="bilinear", align_corners=False)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    out = torch.zeros(1, 3, S, S)
    out[:, :, :H2, :W2] = x
    return out, W2, H2


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "testdata/tinymodel"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    enc, dec = Encoder().eval(), Decoder().eval()
    enc3 = Encoder3D(enc).eval()
    with torch.no_grad():
        torch.onnx.export(enc, torch.zeros(1, 3, S, S), os.path.join(out, "encoder.onnx"), opset_version=17,
                          input_names=["image"], output_names=["image_embeddings"])
        torch.onnx.export(enc3, torch.zeros(D, 3, S, S), os.path.join(out, "encoder3d.onnx"), opset_version=17,
                          input_names=["images"], output_names=["image_embeddings"])
        dummy = (torch.zeros(1, C, G, G), torch.zeros(1, 2, 2), torch.tensor([[1.0, -1.0]]),
                 torch.zeros(1, 1, L, L), torch.zeros(1), torch.tensor([48.0, 40.0]))
        torch.onnx.export(dec, dummy, os.path.join(out, "decoder.onnx"), opset_version=17,
                          input_names=["image_embeddings", "point_coords", "point_labels", "mask_input",
                                       "has_mask_input", "orig_im_size"],
                          output_names=["masks", "iou_predictions", "low_res_masks"],
                          dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"},
                                        "masks": {2: "height", 3: "width"}})
    n_enc = sum(p.numel() for p in enc.parameters())
    n_dec = sum(p.numel() for p in dec.parameters())
    files = {k: {"path": k + ".onnx", "sha256": sha256(os.path.join(out, k + ".onnx"))}
             for k in ("encoder", "decoder", "encoder3d")}
    manifest = {
        "format": "medsa-manifest/1",
        "name": "medsa-testtiny",
        "version": "0.0.1",
        "architecture": "test model: patch conv encoder + analytic prompt decoder, random weights (model/testmodel/gen_tiny.py)",
        "input_size": S,
        "resize": "longest_side_pad",
        "pixel_aspect": "physical",
        "interpolation": "bilinear_half_pixel",
        "value_range": [0, 1],
        "rgb_scale": 255,
        "mean": MEAN,
        "std": STD,
        "grey_to_rgb": "replicate",
        "windowing": {"ct": "view", "default": "view", "percentiles": [0.5, 99.5], "ct_default_window": [40, 400]},
        "coords": "xy_model_pixels",
        "embedding_shape": [1, C, G, G],
        "low_res_mask_size": L,
        "num_mask_outputs": M,
        "mask_threshold": 0.0,
        "depth_chunk": D,
        "files": files,
        "tensors": {
            "encoder": {"inputs": ["image"], "outputs": ["image_embeddings"]},
            "encoder3d": {"inputs": ["images"], "outputs": ["image_embeddings"]},
            "decoder": {"inputs": ["image_embeddings", "point_coords", "point_labels", "mask_input",
                                   "has_mask_input", "orig_im_size"],
                        "outputs": ["masks", "iou_predictions", "low_res_masks"]},
        },
        "params": {"total": n_enc + n_dec, "trainable": n_enc + n_dec, "base_frozen": 0},
        "training": {"report": "none: random weights", "seed": 0},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    # A golden case: a smooth synthetic slice with non-square pixels and an odd size.
    gdir = os.path.join(out, "golden", "blob")
    os.makedirs(gdir, exist_ok=True)
    H, W = 45, 70
    spacing = [0.8, 1.1]
    window = [100.0, 300.0]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    sl = (250 * np.exp(-(((xx - 40) / 12) ** 2 + ((yy - 20) / 9) ** 2)) - 20 + 10 * np.sin(xx / 5)).astype(np.float32)
    img, W2, H2 = preprocess(sl, spacing, window)
    pts = [[40.0, 20.0, 1], [10.0, 5.0, 0]]
    box = [30.0, 12.0, 52.0, 30.0]
    coords = [[p[0] * W2 / W, p[1] * H2 / H] for p in pts] + [[box[0] * W2 / W, box[1] * H2 / H],
                                                              [box[2] * W2 / W, box[3] * H2 / H]]
    labels = [p[2] for p in pts] + [2, 3]
    with torch.no_grad():
        emb = enc(img)
        masks, iou, low = dec(emb, torch.tensor([coords], dtype=torch.float32),
                              torch.tensor([labels], dtype=torch.float32), torch.zeros(1, 1, L, L), torch.zeros(1),
                              torch.tensor([H, W], dtype=torch.float32))
    # Reference masks per MANIFEST.md: crop the W' x H' region of the low-res logits, resize to W x H.
    cw = int(np.ceil(W2 * L / S))
    ch = int(np.ceil(H2 * L / S))
    ref = F.interpolate(low[:, :, :ch, :cw], size=(H, W), mode="bilinear", align_corners=False)

    def dump(name, t):
        a = np.ascontiguousarray(np.asarray(t, dtype=np.float32))
        a.astype("<f4").tofile(os.path.join(gdir, name))
        return {"file": name, "shape": list(a.shape)}

    case = {
        "model": "medsa-testtiny",
        "slice": dump("slice.f32", sl.reshape(H, W, 1)),
        "height": H, "width": W, "channels": 1,
        "spacing": spacing,
        "window": window,
        "points": [{"u": p[0], "v": p[1], "positive": bool(p[2])} for p in pts],
        "box": box,
        "mask_input": None,
        "expected": {
            "image": dump("image.f32", img.numpy()),
            "embeddings": dump("embeddings.f32", emb.numpy()),
            "low_res_masks": dump("low_res_masks.f32", low.numpy()),
            "iou_predictions": dump("iou_predictions.f32", iou.numpy()),
            "masks": dump("masks.f32", ref.numpy()),
        },
    }
    with open(os.path.join(gdir, "case.json"), "w") as f:
        json.dump(case, f, indent=2)
        f.write("\n")
    print("wrote", out, "params", n_enc + n_dec, "W'", W2, "H'", H2)


if __name__ == "__main__":
    main()
