"""LiteMedSAM's image encoder (TinyViT, medsa/tinyvit.py) at smaller inputs, run by ONNX Runtime on 2 threads as
the app would run it: can the pretrained medical encoder itself meet the encoder target (p50 <= 150 ms)?
(REPORT.md, "distillation at length".) Two interpreters, as teacher_embed.py:
  /usr/bin/python3 bench_litemedsam.py export DIR [SIZES]      (Debian's torch: DIR/enc{S}.onnx, default 256,192,160,128)
  .cache/triton-venv/bin/python bench_litemedsam.py run DIR [N] (ORT 1.30: p50/p95 ms over N runs, default 30)"""
import glob
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def export(d, sizes):
    import torch
    sys.path.insert(0, HERE)
    from medsa import litemedsam
    enc = litemedsam.load().image_encoder.eval()
    os.makedirs(d, exist_ok=True)
    for s in sizes:
        x = torch.rand(1, 3, s, s)
        with torch.no_grad():
            torch.onnx.export(enc, (x,), os.path.join(d, f"enc{s}.onnx"), input_names=["image"],
                              output_names=["embedding"], opset_version=17)
        print(f"{d}/enc{s}.onnx: output {tuple(enc(x).shape)}")


def run(d, n):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    for f in sorted(glob.glob(os.path.join(d, "enc*.onnx")), key=lambda p: -int(os.path.basename(p)[3:-5])):
        s = ort.InferenceSession(f, so, providers=["CPUExecutionProvider"])
        i = s.get_inputs()[0]
        x = np.random.default_rng(0).random([1, 3] + list(i.shape[2:])).astype(np.float32)
        for _ in range(3):
            s.run(None, {i.name: x})
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            s.run(None, {i.name: x})
            ts.append((time.perf_counter() - t) * 1e3)
        print(f"{os.path.basename(f)}: input {i.shape[2]} px, p50 {np.percentile(ts, 50):.0f} ms, "
              f"p95 {np.percentile(ts, 95):.0f} ms ({n} runs, 2 threads)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "export":
        export(sys.argv[2], [int(v) for v in (sys.argv[3] if len(sys.argv) > 3 else "256,192,160,128").split(",")])
    elif len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 30)
    else:
        sys.exit(__doc__)
