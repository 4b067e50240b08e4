"""Tests the LiteMedSAM loader (medsa/tinyvit.py, medsa/litemedsam.py) on a randomly initialised model in the
checkpoint's layout: (1) every tensor maps and the loaded model reproduces the original exactly, (2) a checkpoint
with a missing or misshapen tensor is refused with the file named, (3) the encoder gives SAM's 64x64 grid and the
decoder 256x256 logits with 4 candidates. With --write PATH it also saves that random checkpoint there, for the
ONNX/Go parity step of scripts/test.d/model-smoke.sh.

Usage: test_litemedsam.py [--write PATH]"""
import os
import sys
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import litemedsam as LM, load as L, model as M  # noqa: E402
from test_convert import output_diff  # noqa: E402


def random_checkpoint():
    torch.manual_seed(0)
    m = M.MedSA(LM.config()).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics and attention biases, so the mapping is exercised
        for n, b in m.named_buffers():
            if n.endswith("running_mean"):
                b.normal_(0, 0.1)
            elif n.endswith("running_var"):
                b.uniform_(0.5, 1.5)
        for n, p in m.named_parameters():
            if "attention_biases" in n:
                p.normal_(0, 0.5)
    return m, m.state_dict()


def main():
    torch.set_num_threads(2)
    ref, sd = random_checkpoint()
    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "lite_medsam.pth")
        torch.save(sd, path)
        m = L.from_checkpoint(path)
        assert m.cfg.encoder == "tinyvit" and m.prep["std"] == [1.0, 1.0, 1.0]
        n_enc = sum(p.numel() for p in m.image_encoder.parameters())
        assert 5_500_000 < n_enc < 6_000_000, n_enc  # TinyViT-5M in LiteMedSAM's configuration
        diff, e2, d2 = output_diff(ref, m, torch.rand(1, 3, 256, 256), 256)
        assert e2.shape == (1, 256, 64, 64), e2.shape
        assert d2[0].shape == (1, 4, 256, 256) and d2[1].shape == (1, 4), (d2[0].shape, d2[1].shape)
        assert diff == 0.0, f"loaded model differs by {diff}"
        # a non-square input still yields whole windows (padding inside the attention blocks)
        with torch.no_grad():
            assert m.image_encoder(torch.rand(1, 3, 256, 200)).shape == (1, 256, 64, 50)
        for broken, what in (({k: v for k, v in sd.items() if "neck.2" not in k}, "missing tensors"),
                             ({**sd, "image_encoder.neck.0.weight": torch.zeros(256, 320, 3, 3)}, "wrong-shape tensors")):
            bad = os.path.join(td, "broken_lite_medsam.pth")
            torch.save(broken, bad)
            try:
                L.from_checkpoint(bad)
            except ValueError as e:
                assert bad in str(e) and what in str(e), e
            else:
                raise AssertionError(f"a checkpoint with a {what} tensor was accepted")
        try:
            L.from_checkpoint(os.path.join(td, "absent", "lite_medsam.pth"))
        except FileNotFoundError as e:
            assert "absent" in str(e), e
        else:
            raise AssertionError("a missing file was accepted")
    if "--write" in sys.argv:
        torch.save(sd, sys.argv[sys.argv.index("--write") + 1])
    print("litemedsam: loader exact, errors name the file, shapes as SAM's")


if __name__ == "__main__":
    main()
