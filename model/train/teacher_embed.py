"""Teacher embeddings for distillation (issue 10: "no teacher" is the first cause). LiteMedSAM's image encoder
(exported by export_model.py, run by ONNX Runtime: 3-5x faster than its torch form here) embeds the real training
slices once; train2.py --distill then teaches our encoder to predict those embeddings from its stride-4 features.

Two stages, two interpreters (torch is Debian's, onnxruntime lives in the triton venv):
  /usr/bin/python3 teacher_embed.py images OUT_IMG.npy
      the real unlabelled pool (dataengine.load_real_pool), the labelled pool, and the labelled pool again under
      another window (gamma and contrast, as users re-window), uint8 [N,256,256] in [0,1]*255
  .cache/triton-venv/bin/python teacher_embed.py embed OUT_IMG.npy ENCODER.onnx OUT_EMB.npy
      float16 [N,256,64,64], the encoder's input the [0,1] image replicated to 3 channels (LiteMedSAM's prep)
Never the validation or test items: both pools are training slices only."""
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def images(out):
    sys.path.insert(0, HERE)
    from medsa import dataengine as DE
    real = DE.load_real_pool(256, os.path.join(HERE, "data", "real_pool256.npy")).numpy()
    lab, _ = DE.load_labelled_pool(256, os.path.join(HERE, "data", "lab_pool256.npz"))
    lab = lab.numpy()
    rng = np.random.default_rng(0)
    g = rng.uniform(0.6, 1.6, (len(lab), 1, 1))
    lo, hi = rng.uniform(-0.1, 0.15, (len(lab), 1, 1)), rng.uniform(0.7, 1.2, (len(lab), 1, 1))
    rewin = np.clip((lab ** g - lo) / (hi - lo), 0, 1) * (lab > 0)
    a = np.concatenate([real, lab, rewin]).astype(np.float32)
    np.save(out, np.round(a * 255).clip(0, 255).astype(np.uint8))
    print(f"{out}: {len(a)} slices ({len(real)} real, {len(lab)} labelled, {len(lab)} re-windowed)")


def embed(img_path, onnx_path, out):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    img = np.load(img_path)
    emb = np.lib.format.open_memmap(out + ".tmp.npy", mode="w+", dtype=np.float16, shape=(len(img), 256, 64, 64))
    t0 = time.time()
    for i in range(len(img)):
        x = np.repeat(img[i][None, None].astype(np.float32) / 255.0, 3, axis=1)
        emb[i] = s.run(None, {name: x})[0][0].astype(np.float16)
        if (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(img)} {(time.time() - t0) / (i + 1):.2f} s/slice", flush=True)
    emb.flush()
    del emb
    os.replace(out + ".tmp.npy", out)
    print(f"{out}: {len(img)} embeddings in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "images":
        images(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "embed":
        embed(*sys.argv[2:])
    else:
        sys.exit(__doc__)
