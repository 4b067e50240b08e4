"""Export a training checkpoint to a model directory (ONNX + manifest.json). Usage: export_model.py CKPT OUTDIR [VERSION]"""
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import export  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(2)
    ver = sys.argv[3] if len(sys.argv) > 3 else "1.0.0"
    m, man = export.export_checkpoint(sys.argv[1], sys.argv[2], version=ver)
    total = sum(os.path.getsize(os.path.join(sys.argv[2], f["path"])) for f in man["files"].values())
    print("exported", list(man["files"]), "bytes", total, "params", man["params"])
