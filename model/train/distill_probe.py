"""How much of the teacher (LiteMedSAM's embedding, teacher_embed.py) our encoder can carry: starting from CKPT,
the encoder and a linear head are trained on the distillation loss alone (train2.Distill; no decoder, BatchNorm
on running statistics) for MINUTES, and the least-squares R^2 of its stride-4 features is measured before and
after on every 10th slice, which training never sees. (REPORT.md, "teacher".)
Usage: distill_probe.py CKPT MINUTES [LR [OUT_CKPT [STEPS]]]   (needs `make distill-data`; MEDSA_THREADS threads,
default 1; seed 0; OUT_CKPT gets the distilled weights, loadable by train2.py --init). With STEPS the learning rate
follows a cosine over STEPS steps (to 5 %), OUT_CKPT is written every 5 minutes with the optimiser, head, step and
generator state, and a rerun with the same arguments resumes from it: a long distillation spans sessions."""
import math
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
    return d.r2(m, train, idx)


out = sys.argv[4] if len(sys.argv) > 4 else ""
steps = int(sys.argv[5]) if len(sys.argv) > 5 else 0
enc = list(m.image_encoder.parameters()) + list(d.head.parameters())
opt = torch.optim.AdamW(enc, lr=lr, weight_decay=0.01)
g = torch.Generator().manual_seed(0)
s = 0
prev = torch.load(out, map_location="cpu") if steps and os.path.exists(out) else None
if prev is not None and "distill_state" in prev:
    st = prev["distill_state"]
    if (st["source"], st["steps"], st["lr"]) != (sys.argv[1], steps, lr):
        sys.exit(f"{out}: a distillation of {st['source']} over {st['steps']} steps at lr {st['lr']:g}, "
                 f"not this one; remove it or use another OUT_CKPT")
    m.load_state_dict(prev["model"])
    d.head.load_state_dict(st["head"])
    opt.load_state_dict(st["opt"])
    g.set_state(st["gen"])
    s = st["step"]
    print(f"{out}: resumed at step {s}/{steps}", flush=True)
else:
    print(f"before: R^2 held-out {r2(held):.3f}", flush=True)
sched = (lambda k: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps))) if steps else (lambda k: 1.0)


def save():
    if not out:
        return
    keep = {k: v for k, v in ck.items() if k not in ("opt", "model", "distill_state")}
    state = {"source": sys.argv[1], "steps": steps, "lr": lr, "step": s, "head": d.head.state_dict(),
             "opt": opt.state_dict(), "gen": g.get_state()} if steps else None
    torch.save({**keep, "model": m.state_dict(), **({"distill_state": state} if state else {})}, out + ".tmp")
    os.replace(out + ".tmp", out)


m.train()
t0 = last = time.time()
s0 = s
while time.time() - t0 < minutes * 60 and not (steps and s >= steps):
    for grp in opt.param_groups:
        grp["lr"] = lr * sched(s)
    loss = d.loss(m, g, bf16=False, pool=train)
    opt.zero_grad()
    loss.backward()
    opt.step()
    s += 1
    if s % 50 == 0:
        print(f"step {s} loss {loss.item():.3f} lr {lr * sched(s):.2e} {(time.time() - t0) / (s - s0):.2f} s/step",
              flush=True)
    if steps and time.time() - last > 300:
        save()
        last = time.time()
print(f"after {s} steps ({minutes:g} min, lr {lr:g}): R^2 held-out {r2(held):.3f}", flush=True)
save()
if out:
    print("saved", out)
