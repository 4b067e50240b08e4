"""Export a training checkpoint to a model directory (ONNX + manifest.json).
Usage: export_model.py CKPT OUTDIR [VERSION] [--zoom POLICY_JSON] [--ranking RANKING_JSON] [--box-clip]
(the auto_zoom, ranking and box_clip policies, docs/MANIFEST.md)"""
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import export  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(2)
    argv = sys.argv[1:]
    zoom = json.loads(argv[argv.index("--zoom") + 1]) if "--zoom" in argv else None
    ranking = json.loads(argv[argv.index("--ranking") + 1]) if "--ranking" in argv else None
    pos = [a for i, a in enumerate(argv) if not a.startswith("--") and not (i > 0 and argv[i - 1] in ("--zoom", "--ranking"))]
    ver = pos[2] if len(pos) > 2 else "1.0.0"
    m, man = export.export_checkpoint(pos[0], pos[1], version=ver, auto_zoom=zoom, ranking=ranking,
                                      box_clip="--box-clip" in argv)
    total = sum(os.path.getsize(os.path.join(pos[1], f["path"])) for f in man["files"].values())
    print("exported", list(man["files"]), "bytes", total, "params", man["params"])
