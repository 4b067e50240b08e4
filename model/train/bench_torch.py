"""PyTorch eager timings of the bundled architecture (2 threads): encoder per slice, encoder3d per chunk,
decoder per prompt set. Usage: bench_torch.py CKPT [N]"""
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import model as M  # noqa: E402


def p(ts):
    return f"p50 {1000 * np.percentile(ts, 50):.1f} ms, p95 {1000 * np.percentile(ts, 95):.1f} ms"


def main():
    torch.set_num_threads(2)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    ck = torch.load(sys.argv[1], map_location="cpu")
    m = M.MedSA(M.Config.from_dict(ck["config"])).eval()
    m.load_state_dict(ck["model"])
    S, L = m.cfg.img_size, m.cfg.low_res
    x = torch.randn(1, 3, S, S)
    x3 = torch.randn(8, 3, S, S)
    co = torch.tensor([[[100.0, 120.0], [0.0, 0.0]]])
    lb = torch.tensor([[1.0, -1.0]])
    with torch.no_grad():
        e = m.image_encoder(x)
        te, t3, td = [], [], []
        for i in range(n):
            t = time.perf_counter(); m.image_encoder(x); te.append(time.perf_counter() - t)
            t = time.perf_counter(); m.decode(e, co, lb, torch.zeros(1, 1, L, L), torch.zeros(1)); td.append(time.perf_counter() - t)
        for i in range(max(3, n // 5)):
            t = time.perf_counter(); m.image_encoder(x3, depth=True); t3.append(time.perf_counter() - t)
    print(f"torch eager, 2 threads: encoder {p(te)}; decoder {p(td)}; encoder3d (D=8) {p(t3)}")


if __name__ == "__main__":
    main()
