"""Tests the official-checkpoint exporter on randomly initialised vit_b-shaped models (dim 768, 12 heads, patch 16,
window 14, rel-pos, 64x64 pos_embed, 256-channel neck, SAM decoder dims) in both layouts and both decoder
variants: build a random model, write its state dict in the official key layout, convert, and check (1) every
tensor maps, (2) the converted PyTorch model reproduces the original's outputs exactly, (3) the ONNX export passes
check_export. With --full-depth the encoder has vit_b's 12 blocks (slow); default depth 2. With --golden DIR it
also writes goldens per variant for the Go parity test.

Usage: test_convert.py [--full-depth] [--golden DIR]"""
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert_official as C  # noqa: E402
from medsa import model as M  # noqa: E402


def vit_b_like(layout, decoder, depth):
    glob = (2, 5, 8, 11) if depth == 12 else (depth - 1,)
    return M.Config(img_size=256, patch=16, enc_dim=768, enc_depth=depth, enc_heads=12, window=14,
                    global_blocks=glob, use_rel_pos=True, pos_embed_grid=64, embed_dim=256,
                    adapters=layout == "medsa", mlp_adapter_scale=0.5, dec_depth=2, dec_heads=8, dec_mlp_dim=2048,
                    num_mask_tokens=4, output_tokens=(1, 2, 3) if layout == "sam" else (0,), iou_head_hidden=256,
                    mask_in_chans=16, dec_adapters=False, click_maps=False, decoder_variant=decoder)


def output_diff(ref, m, x, L):
    """Run two models on the same image and prompts (a positive and a negative click, a random L x L mask input):
    the largest |difference| of embeddings and logits, and the second model's embeddings and decoder outputs."""
    co = torch.tensor([[[100.0, 120.0], [30.0, 40.0], [0.0, 0.0]]])
    lb = torch.tensor([[1.0, 0.0, -1.0]])
    mi = torch.randn(1, 1, L, L)
    with torch.no_grad():
        e1, e2 = ref.image_encoder(x), m.image_encoder(x)
        d1, d2 = ref.decode(e1, co, lb, mi, torch.ones(1)), m.decode(e2, co, lb, mi, torch.ones(1))
    return max((e1 - e2).abs().max().item(), (d1[0] - d2[0]).abs().max().item()), e2, d2


def main():
    full = "--full-depth" in sys.argv
    gold = sys.argv[sys.argv.index("--golden") + 1] if "--golden" in sys.argv else ""
    depth = 12 if full else 2
    torch.set_num_threads(2)
    torch.manual_seed(0)
    for layout, decoder in (("sam", "sam"), ("medsa", "sam"), ("medsa", "efficientsam")):
        cfg = vit_b_like(layout, decoder, depth)
        ref = M.MedSA(cfg).eval()
        with torch.no_grad():  # non-zero adapters and rel-pos so the mapping is really exercised
            for n, p in ref.named_parameters():
                if "D_fc2" in n or "rel_pos" in n:
                    p.normal_(0, 0.02)
        with tempfile.TemporaryDirectory() as td:
            ck = os.path.join(td, "official.pth")
            sd = C.ours_to_official(ref.state_dict(), layout, decoder)
            torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}} if layout == "medsa" else sd, ck)
            m, unused = C.build(ck, layout, decoder, 256, 0.5)
            assert not unused, unused
            assert m.cfg.global_blocks == cfg.global_blocks and m.cfg.window == 14, m.cfg
            diff, _, _ = output_diff(ref, m, torch.randn(1, 3, 256, 256), 64)
            assert diff == 0.0, f"{layout}/{decoder}: converted model differs by {diff}"
            out = os.path.join(td, "model")
            args = [sys.executable, os.path.join(HERE, "convert_official.py"), ck, out, "--layout", layout,
                    "--decoder", decoder, "--img-size", "256"] + (["--depth-chunk", "4"] if layout == "medsa" else [])
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
            r = subprocess.run([sys.executable, os.path.join(HERE, "check_export.py"), out, "--max-mb", "0"], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr[-2000:]
            if gold:
                dst = os.path.join(gold, f"{layout}-{decoder}")
                os.makedirs(dst, exist_ok=True)
                ours = os.path.join(td, "ours.pt")
                torch.save({"config": m.cfg.to_dict(), "model": m.state_dict()}, ours)
                subprocess.run(["cp", "-r", out, os.path.join(dst, "model")], check=True)
                subprocess.run([sys.executable, os.path.join(HERE, "goldens.py"), ours, os.path.join(dst, "golden"),
                                os.path.join(out, "manifest.json")], check=True, stdout=subprocess.DEVNULL)
        print(f"convert {layout}/{decoder} (vit_b-shaped, depth {depth}): mapped, exact, exported")


if __name__ == "__main__":
    main()
