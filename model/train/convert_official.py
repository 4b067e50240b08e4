"""Export an official checkpoint into a medsa model directory (ONNX + manifest.json, docs/MANIFEST.md).

Layouts:
  sam    segment-anything (facebookresearch) vit_b / vit_l / vit_h: 4 mask tokens, the 3 multimask outputs are
         exported (M=3, IoU head trained by SAM); longest-side resize + pad, ImageNet mean/std.
  medsa  Medical-SAM-Adapter (MedicineToken/KidsWithTokens): SAM encoder + Space/MLP/Depth adapters; mask token 0
         only (M=1; its IoU score is untrained); stretch to S x S, RGB in [0,1], no mean/std.
Decoder variants (--decoder): "sam" (SAM's two-way transformer; 2023 Med-SA checkpoints) or "efficientsam"
(Med-SA since 2024-01: residual self-attention in layer 0, PE kept in the query stream, mlp.layers.0.0/mlp.fc).

Usage: convert_official.py CKPT OUTDIR --layout sam|medsa [--decoder sam|efficientsam] [--img-size N]
       [--depth-chunk D] [--mlp-adapter-scale s] [--name NAME]
"""
import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import export, model as M  # noqa: E402

ARCH = {  # embed dim -> (heads, global attention blocks) for the three SAM ViTs
    768: (12, (2, 5, 8, 11)),
    1024: (16, (5, 11, 17, 23)),
    1280: (16, (7, 15, 23, 31)),
}


def load_state(path):
    ck = torch.load(path, map_location="cpu")
    if isinstance(ck, dict):
        for k in ("state_dict", "model"):
            if k in ck and isinstance(ck[k], dict):
                ck = ck[k]
                break
    sd = {}
    for k, v in ck.items():
        if not torch.is_tensor(v):
            continue
        for p in ("module.", "sam."):
            if k.startswith(p):
                k = k[len(p):]
        sd[k] = v
    return sd


def official_to_ours(sd, decoder):
    """Rename official keys to ours (which follow SAM)."""
    out = {}
    for k, v in sd.items():
        n = k
        n = n.replace(".attn.rel_h", ".attn.rel_pos_h").replace(".attn.rel_w", ".attn.rel_pos_w")
        if decoder == "efficientsam" and n.startswith("mask_decoder.transformer.layers."):
            n = n.replace(".mlp.layers.0.0.", ".mlp.lin1.").replace(".mlp.fc.", ".mlp.lin2.")
        out[n] = v
    return out


def ours_to_official(sd, layout, decoder):
    """Inverse mapping (used by the tests to build official-layout checkpoints from random models)."""
    out = {}
    for k, v in sd.items():
        if "depth_pos_embed" in k:
            continue
        n = k
        if layout == "medsa":
            n = n.replace(".attn.rel_pos_h", ".attn.rel_h").replace(".attn.rel_pos_w", ".attn.rel_w")
        if decoder == "efficientsam" and n.startswith("mask_decoder.transformer.layers."):
            n = n.replace(".mlp.lin1.", ".mlp.layers.0.0.").replace(".mlp.lin2.", ".mlp.fc.")
        out[n] = v
    return out


def config_for(sd, layout, decoder, img_size, mlp_adapter_scale):
    dim = sd["image_encoder.patch_embed.proj.weight"].shape[0]
    patch = sd["image_encoder.patch_embed.proj.weight"].shape[-1]
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("image_encoder.blocks."))
    heads, glob = ARCH.get(dim, (max(1, dim // 64), ()))
    glob = tuple(g for g in glob if g < depth)
    if not glob:  # depth-reduced test models: SAM's pattern is "every 4th block global, the last one included"
        glob = tuple(i for i in range(depth) if i % 4 == 3 or i == depth - 1)
    rel = "image_encoder.blocks.0.attn.rel_pos_h" in sd
    window = (sd["image_encoder.blocks.0.attn.rel_pos_h"].shape[0] + 1) // 2 if rel else 14
    emb = sd["image_encoder.neck.0.weight"].shape[0]
    pe = sd.get("image_encoder.pos_embed")
    n_tok = sd["mask_decoder.mask_tokens.weight"].shape[0]
    dec_depth = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("mask_decoder.transformer.layers."))
    mlp_key = "mask_decoder.transformer.layers.0.mlp.lin1.weight"
    adapters = any("_Adapter." in k for k in sd)
    return M.Config(
        img_size=img_size, patch=patch, enc_dim=dim, enc_depth=depth, enc_heads=heads,
        mlp_ratio=sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / dim, window=window, global_blocks=glob,
        use_rel_pos=rel, use_abs_pos=pe is not None, pos_embed_grid=pe.shape[1] if pe is not None else 0,
        embed_dim=emb, adapters=adapters, adapter_ratio=0.25, mlp_adapter_scale=mlp_adapter_scale,
        dec_depth=dec_depth, dec_heads=8, dec_mlp_dim=sd[mlp_key].shape[0], num_mask_tokens=n_tok,
        output_tokens=(1, 2, 3) if layout == "sam" else (0,),
        iou_head_hidden=sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0],
        mask_in_chans=sd["prompt_encoder.mask_downscaling.3.weight"].shape[0], dec_adapters=False,
        click_maps=False, decoder_variant=decoder)


def build(ckpt, layout, decoder, img_size, mlp_adapter_scale):
    sd = official_to_ours(load_state(ckpt), decoder)
    cfg = config_for(sd, layout, decoder, img_size, mlp_adapter_scale)
    m = M.MedSA(cfg)
    own = m.state_dict()
    missing = [k for k in own if k not in sd and "depth_pos_embed" not in k]
    unused = [k for k in sd if k not in own]
    shape_bad = [k for k in sd if k in own and own[k].shape != sd[k].shape]
    if missing or shape_bad:
        raise SystemExit(f"{ckpt}: cannot map: missing {missing[:8]} ({len(missing)}), "
                         f"shape mismatch {shape_bad[:8]}")
    for k in own:
        if "depth_pos_embed" in k:
            sd[k] = torch.zeros_like(own[k])  # official code has no depth position signal
    m.load_state_dict({k: sd[k] for k in own})
    return m.eval(), unused


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("outdir")
    ap.add_argument("--layout", choices=["sam", "medsa"], required=True)
    ap.add_argument("--decoder", choices=["sam", "efficientsam"], default="sam")
    ap.add_argument("--img-size", type=int, default=0, help="default 1024 (sam) / 256 (medsa)")
    ap.add_argument("--depth-chunk", type=int, default=0, help="export encoder3d with this D (medsa only)")
    ap.add_argument("--mlp-adapter-scale", type=float, default=0.5, help="official code: 0.5")
    ap.add_argument("--name", default="")
    ap.add_argument("--version", default="1.0.0")
    a = ap.parse_args()
    torch.set_num_threads(2)
    S = a.img_size or (1024 if a.layout == "sam" else 256)
    m, unused = build(a.ckpt, a.layout, a.decoder, S, a.mlp_adapter_scale)
    if unused:
        print(f"note: {len(unused)} checkpoint tensors not used, e.g. {unused[:4]}")
    files = export.export_onnx(m, a.outdir, a.depth_chunk, with_3d=a.depth_chunk > 1 and a.layout == "medsa")
    if a.layout == "sam":
        pre = {"resize": "longest_side_pad", "pixel_aspect": "physical", "rgb_scale": 255,
               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    else:
        pre = {"resize": "stretch", "pixel_aspect": "pixels", "rgb_scale": 255,
               "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    cfg = m.cfg
    tot = sum(p.numel() for p in m.parameters())
    ad = sum(p.numel() for n, p in m.named_parameters() if "_Adapter." in n)
    arch = (f"{a.layout} checkpoint {os.path.basename(a.ckpt)}: ViT d{cfg.enc_dim} L{cfg.enc_depth} "
            f"patch {cfg.patch} window {cfg.window} global {list(cfg.global_blocks)}, rel-pos {cfg.use_rel_pos}; "
            f"adapters {cfg.adapters} (s={cfg.mlp_adapter_scale}); decoder {a.decoder}, "
            f"outputs tokens {list(cfg.output_tokens)}")
    man = export.write_manifest(m, a.outdir, files, a.name or f"{a.layout}-{os.path.basename(a.ckpt)}",
                                a.version, arch, {"total": tot, "trainable": ad, "base_frozen": tot - ad},
                                a.depth_chunk, pre, {"source": os.path.basename(a.ckpt), "layout": a.layout})
    print("exported", a.outdir, list(man["files"]), "params", tot)


if __name__ == "__main__":
    main()
