"""How much of the teacher (LiteMedSAM's embedding, teacher_embed.py) our encoder can carry: starting from CKPT,
the encoder and a linear head are trained on the distillation loss alone (train2.Distill; no decoder, BatchNorm
on running statistics) for MINUTES, and the least-squares R^2 of its stride-4 features is measured before and
after on every 10th slice, which training never sees. (REPORT.md, "teacher".)
Usage: distill_probe.py CKPT MINUTES [LR [OUT_CKPT]]   (needs `make distill-data`; MEDSA_THREADS threads, default 1;
seed 0; OUT_CKPT gets the distilled weights, loadable by train2.py --init)"""
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.chdir(os.path.dirname(os.path.abspath(__file__)))
import train2 as T  # noqa: E402
from medsa import net  # noqa: E402

torch.set_num_threads(int(os.environ.get("MEDSA_THREADS", "1")))
torch.manual_seed(0)
ck = torch.load(sys.argv[1], map_location="cpu")
minutes, lr = float(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
m = net.MedSA2(net.Config.from_dict(ck["config"]))
m.load_state_dict(ck["model"], strict=False)
d = T.Distill("data/distill_img256.npy,data/distill_emb256.npy", m.cfg.emb_dim, 1.0, 4)
N = len(d.img)
held = torch.arange(0, N, 10)
train = torch.tensor([i for i in range(N) if i % 10])


def r2(idx):
    """R^2 on idx of the least-squares readout fitted on training slices."""
    d.fit_head(m, n=256, pool=train)
    m.eval()
    se = st = 0.0
    with torch.no_grad():
        for ch in idx.split(8):
            x, t = d.batch(ch)
            p = d.head(m.image_encoder(x)[:, :d.sem])
            se += float(((p - t) ** 2).sum())
            st += float((t ** 2).sum())
    return 1 - se / st


print(f"before: R^2 held-out {r2(held):.3f}", flush=True)
enc = list(m.image_encoder.parameters()) + list(d.head.parameters())
opt = torch.optim.AdamW(enc, lr=lr, weight_decay=0.01)
m.train()
g = torch.Generator().manual_seed(0)
t0, s = time.time(), 0
while time.time() - t0 < minutes * 60:
    loss = d.loss(m, g, bf16=False, pool=train)
    opt.zero_grad()
    loss.backward()
    opt.step()
    s += 1
    if s % 50 == 0:
        print(f"step {s} loss {loss.item():.3f} {(time.time() - t0) / s:.2f} s/step", flush=True)
print(f"after {s} steps ({minutes:g} min, lr {lr:g}): R^2 held-out {r2(held):.3f}", flush=True)
if len(sys.argv) > 4:
    torch.save({**{k: v for k, v in ck.items() if k not in ("opt", "model")}, "model": m.state_dict()}, sys.argv[4])
    print("saved", sys.argv[4])
