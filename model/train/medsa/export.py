"""ONNX export (opset 17) of encoder / encoder3d / decoder with SAM's decoder contract, and manifest.json."""
import hashlib
import json
import os
import warnings

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import litemedsam, load as LD, model as M, net as N

OPSET = 17


class EncoderOnnx(nn.Module):
    def __init__(self, m, depth=False):
        super().__init__()
        self.enc = m.image_encoder
        self.depth = depth

    def forward(self, image):
        return self.enc(image, depth=self.depth)


class DecoderOnnx(nn.Module):
    """SAM's ONNX decoder contract. `masks` is computed in-graph the way SAM's exporter does it, with W', H'
    derived from orig_im_size (pixel aspect); for physical pixel aspect the engine derives masks from
    low_res_masks with the manifest's formula (W', H' from the spacing)."""

    def __init__(self, m):
        super().__init__()
        self.m = m
        self.S = m.cfg.img_size

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        low, iou = self.m.decode(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)
        L = low.shape[-1]
        size = orig_im_size.to(torch.float32)
        scale = self.S / torch.max(size)
        pre = torch.floor(scale * size + 0.5)
        crop = torch.ceil(pre * L / self.S).to(torch.int64)
        masks = low[..., : crop[0], : crop[1]]
        hw = orig_im_size.to(torch.int64)
        masks = F.interpolate(masks, size=(hw[0], hw[1]), mode="bilinear", align_corners=False)
        return masks, iou, low


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def export_onnx(m: M.MedSA, outdir, depth_chunk=8, with_3d=True):
    m = m.eval()
    cfg = m.cfg
    S, g, L, e = cfg.img_size, cfg.grid, cfg.low_res, cfg.emb_channels
    os.makedirs(outdir, exist_ok=True)
    files = {}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        x = torch.zeros(1, 3, S, S)
        torch.onnx.export(EncoderOnnx(m), (x,), os.path.join(outdir, "encoder.onnx"), opset_version=OPSET,
                          input_names=["image"], output_names=["image_embeddings"], do_constant_folding=True)
        files["encoder"] = "encoder.onnx"
        if with_3d and depth_chunk > 1 and cfg.adapters:
            xs = torch.zeros(depth_chunk, 3, S, S)
            torch.onnx.export(EncoderOnnx(m, True), (xs,), os.path.join(outdir, "encoder3d.onnx"),
                              opset_version=OPSET, input_names=["images"], output_names=["image_embeddings"],
                              do_constant_folding=True)
            files["encoder3d"] = "encoder3d.onnx"
        elif os.path.exists(os.path.join(outdir, "encoder3d.onnx")):
            os.remove(os.path.join(outdir, "encoder3d.onnx"))  # a previous model's, which the manifest won't list
        args = (torch.zeros(1, e, g, g), torch.tensor([[[10.0, 20.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]]),
                torch.zeros(1, 1, L, L), torch.zeros(1), torch.tensor([300.0, 200.0]))
        torch.onnx.export(DecoderOnnx(m), args, os.path.join(outdir, "decoder.onnx"), opset_version=OPSET,
                          input_names=["image_embeddings", "point_coords", "point_labels", "mask_input",
                                       "has_mask_input", "orig_im_size"],
                          output_names=["masks", "iou_predictions", "low_res_masks"],
                          dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"},
                                        "masks": {2: "height", 3: "width"}},
                          do_constant_folding=True)
        files["decoder"] = "decoder.onnx"
    for f in files.values():
        onnx.checker.check_model(onnx.load(os.path.join(outdir, f)))
    return files


def write_manifest(m: M.MedSA, outdir, files, name, version, architecture, params, depth_chunk, preprocessing,
                   training=None, notes="", auto_zoom=None, ranking=None):
    cfg = m.cfg
    man = {
        "format": "medsa-manifest/1",
        "name": name,
        "version": version,
        "architecture": architecture,
        "input_size": cfg.img_size,
        "resize": preprocessing.get("resize", "longest_side_pad"),
        "pixel_aspect": preprocessing.get("pixel_aspect", "physical"),
        "interpolation": "bilinear_half_pixel",
        "value_range": [0, 1],
        "rgb_scale": preprocessing.get("rgb_scale", 255),
        "mean": preprocessing.get("mean", [0.5, 0.5, 0.5]),
        "std": preprocessing.get("std", [0.25, 0.25, 0.25]),
        "grey_to_rgb": "replicate",
        "windowing": {"ct": "view", "default": "view", "percentiles": [0.5, 99.5], "ct_default_window": [40, 400]},
        "coords": "xy_model_pixels",
        "embedding_shape": [1, cfg.emb_channels, cfg.grid, cfg.grid],
        "low_res_mask_size": cfg.low_res,
        "num_mask_outputs": len(cfg.output_tokens),
        "mask_threshold": 0.0,
        "depth_chunk": depth_chunk if "encoder3d" in files else 0,
        "files": {k: {"path": v, "sha256": sha256(os.path.join(outdir, v))} for k, v in files.items()},
        "tensors": {
            "encoder": {"inputs": ["image"], "outputs": ["image_embeddings"]},
            "decoder": {"inputs": ["image_embeddings", "point_coords", "point_labels", "mask_input",
                                   "has_mask_input", "orig_im_size"],
                        "outputs": ["masks", "iou_predictions", "low_res_masks"]},
        },
        "params": params,
        "training": training or {"report": "model/train/REPORT.md", "seed": 0},
    }
    if "encoder3d" in files:
        man["tensors"]["encoder3d"] = {"inputs": ["images"], "outputs": ["image_embeddings"]}
    if notes:
        man["notes"] = notes
    if auto_zoom:
        man["auto_zoom"] = auto_zoom
    if ranking:
        man["ranking"] = ranking
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    return man


MASKS_NOTE = ("decoder.onnx computes `masks` the way SAM's exporter does, with W',H' derived from orig_im_size "
              "(pixel aspect); with physical pixel aspect and anisotropic spacing compute masks from "
              "low_res_masks with the manifest formula (W',H' from the spacing), as the goldens do.")


def export_checkpoint(ckpt_path, outdir, name="medsa-tiny", version="1.0.0", depth_chunk=8, auto_zoom=None,
                      ranking=None, box_clip=False):
    """auto_zoom, ranking, box_clip: the engine's zoom, candidate-ranking and box-clip policies for this model
    (docs/MANIFEST.md), written to the manifest."""
    m, man = _export_checkpoint(ckpt_path, outdir, name, version, depth_chunk, auto_zoom, ranking)
    if box_clip:
        man["box_clip"] = True
        with open(os.path.join(outdir, "manifest.json"), "w") as f:
            json.dump(man, f, indent=2)
            f.write("\n")
    return m, man


def _export_checkpoint(ckpt_path, outdir, name, version, depth_chunk, auto_zoom, ranking):
    if litemedsam.is_spec(ckpt_path):
        return _export_litemedsam(litemedsam.from_spec(ckpt_path), ckpt_path, outdir, name, version, auto_zoom,
                                  ranking)
    ck = torch.load(ckpt_path, map_location="cpu")
    m = LD.from_checkpoint(ck)
    if isinstance(m, N.MedSA2):
        return _export_conv2(m, ck, outdir, name, version, depth_chunk, auto_zoom, ranking)
    if m.cfg.encoder.startswith("tinyvit"):
        return _export_lm(m, ck, outdir, name, version, auto_zoom, ranking)
    cfg = m.cfg
    files = export_onnx(m, outdir, depth_chunk)
    total = sum(p.numel() for p in m.parameters())
    base = set(M.base_param_names(m))
    base_n = sum(p.numel() for n, p in m.named_parameters() if n in base)
    pinfo = ck.get("params", {})
    extra = pinfo.get("extra", [])
    extra_n = sum(p.numel() for n, p in m.named_parameters() if n in base and any(n.startswith(x) for x in extra))
    if ck.get("phase") == "adapt":
        trainable, frozen = total - base_n + extra_n, base_n - extra_n
    else:
        trainable, frozen = base_n, 0
    arch = (f"Med-SA (our compact implementation): ViT encoder d{cfg.enc_dim} L{cfg.enc_depth} h{cfg.enc_heads}, "
            f"patch {cfg.patch}, window {cfg.window}, global blocks {list(cfg.global_blocks)}, abs pos; "
            f"Space/MLP(s={cfg.mlp_adapter_scale})/Depth adapters (ratio {cfg.adapter_ratio}) in every block, "
            f"SD-Trans depth branch with depth position embedding (encoder3d, D={depth_chunk}); neck to "
            f"{cfg.embed_dim} ch"
            + (f" + high-res detail stem ({cfg.hires} ch at {cfg.low_res}², packed as {cfg.hires * 16} extra "
               f"embedding channels, fused after the decoder's upscaling)" if cfg.hires else "")
            + f"; SAM prompt encoder + rendered click/box maps on the dense path; SAM two-way "
            f"decoder depth {cfg.dec_depth} with HyP-Adpt ({cfg.hyp_layers} layers, h={cfg.hyp_hidden}) and decoder "
            f"MLP/cross adapters; {len(cfg.output_tokens)} mask outputs + IoU head; phase: {ck.get('phase')}")
    man = write_manifest(m, outdir, files, name, version, arch,
                         {"total": total, "trainable": trainable, "base_frozen": frozen},
                         depth_chunk, {}, {"report": "model/train/REPORT.md", "seed": 0,
                                           "steps": ck.get("step", 0), "phase": ck.get("phase")},
                         notes=MASKS_NOTE, auto_zoom=auto_zoom)
    return m, man


def _export_litemedsam(m, src, outdir, name, version, auto_zoom=None, ranking=None):
    """LiteMedSAM as it is (medsa/litemedsam.py): no encoder3d, its own preprocessing (no mean/std)."""
    files = export_onnx(m, outdir, 0, with_3d=False)
    total = sum(p.numel() for p in m.parameters())
    arch = (f"LiteMedSAM (bowang-lab, Apache-2.0): TinyViT encoder 64/128/160/320 ch, 64x64 tokens at 256 px, "
            f"SAM prompt encoder and two-way mask decoder; mask tokens {list(m.cfg.output_tokens)}; no adapters")
    man = write_manifest(m, outdir, files, name, version, arch, {"total": total, "trainable": 0, "base_frozen": total},
                         0, m.prep, {"report": "model/train/REPORT.md", "source": os.path.basename(src.split(":")[0])},
                         notes=MASKS_NOTE, auto_zoom=auto_zoom, ranking=ranking)
    return m, man


def _export_lm(m, ck, outdir, name, version, auto_zoom=None, ranking=None):
    """Med-SA 2.2 (train_lm.py): LiteMedSAM's encoder frozen, its decoder fine-tuned with HyP-Adpt; no encoder3d."""
    cfg = m.cfg
    files = export_onnx(m, outdir, 0, with_3d=False)
    total = sum(p.numel() for p in m.parameters())
    frozen = sum(p.numel() for p in m.image_encoder.parameters())
    arch = (f"Med-SA 2.2: LiteMedSAM's pretrained TinyViT encoder (bowang-lab, Apache-2.0; 64/128/160/320 ch, "
            f"frozen) at {cfg.img_size} px, {cfg.grid}x{cfg.grid} tokens; SAM prompt encoder with rendered click/box "
            f"maps on the dense path; SAM two-way decoder depth {cfg.dec_depth} with HyP-Adpt ({cfg.hyp_layers} "
            f"layers, h={cfg.hyp_hidden}) and decoder MLP/cross adapters, fine-tuned on clicks, boxes and corrective "
            f"rounds; mask tokens {list(cfg.output_tokens)} + IoU head; low-res logits {cfg.low_res}x{cfg.low_res}; "
            f"no encoder3d (propagation encodes each slice)")
    man = write_manifest(m, outdir, files, name, version, arch,
                         {"total": total, "trainable": total - frozen, "base_frozen": frozen}, 0, m.prep,
                         {"report": "model/train/REPORT.md", "seed": ck.get("args", {}).get("seed", 0),
                          "steps": ck.get("step", 0), "phase": ck.get("phase")},
                         notes=MASKS_NOTE, auto_zoom=auto_zoom, ranking=ranking)
    return m, man


def conv2_architecture(cfg, depth_chunk):
    w = cfg.widths
    return (f"Med-SA 2.0 (medsa-conv, our design for training from scratch): convolutional encoder, stages "
            f"{w[0]}/{w[1]}/{w[2]} ch at strides 2/4/8 (residual, BatchNorm), {cfg.attn_depth} attention blocks "
            f"({w[3]} ch, {cfg.attn_heads} heads) at stride 16 carrying the Med-SA Space/MLP(s={cfg.mlp_adapter_scale})"
            f"/Depth adapters (ratio {cfg.adapter_ratio}) and the SD-Trans depth branch (encoder3d, D={depth_chunk}); "
            f"FPN to stride 4: {cfg.emb_dim} semantic channels at {cfg.grid}x{cfg.grid} + {cfg.fine} stride-2 channels "
            f"packed space-to-depth ({cfg.emb_channels} embedding channels); prompts as dense maps rendered in-graph "
            f"(click discs r={cfg.click_radius:g} px, Gaussians, filled box, previous logits) and prompt-feature "
            f"similarity ({cfg.proto_dim}-d prototypes) fused at stride 4; {cfg.dec_dim}-channel dilated residual "
            f"convs {list(cfg.dilations)} at stride 4 with HyP-Adpt ({cfg.hyp_layers} layers, "
            f"h={cfg.hyp_hidden}) conditioned on SAM's sparse prompt embedding; stride-2 head guided by the fine "
            f"channels; {len(cfg.output_tokens)} candidates + IoU head; low-res logits {cfg.low_res}x{cfg.low_res}")


def _export_conv2(m, ck, outdir, name, version, depth_chunk, auto_zoom=None, ranking=None):
    cfg = m.cfg
    files = export_onnx(m, outdir, depth_chunk)
    total = sum(p.numel() for p in m.parameters())
    trainable = sum(p.numel() for n, p in m.named_parameters()
                    if (N.adapter_param(n) if ck.get("phase") == "adapt" else True))
    man = write_manifest(m, outdir, files, name, version, conv2_architecture(cfg, depth_chunk),
                         {"total": total, "trainable": trainable, "base_frozen": total - trainable
                          if ck.get("phase") == "adapt" else 0,
                          "adapters": sum(p.numel() for n, p in m.named_parameters() if N.adapter_param(n))},
                         depth_chunk, {}, {"report": "model/train/REPORT.md", "seed": ck.get("args", {}).get("seed", 0),
                                           "steps": ck.get("step", 0), "phase": ck.get("phase"),
                                           "history": ck.get("history", [])},
                         notes=MASKS_NOTE, auto_zoom=auto_zoom, ranking=ranking)
    return m, man
