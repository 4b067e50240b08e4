"""Training throughput of Med-SA 2.0 on this CPU: fp32 vs bf16 autocast (+ channels_last), the same batches and
the same interaction rounds, forward + backward + AdamW step. Usage: bench_train.py [STEPS] [BATCH] [SIZE] [CONFIG_JSON]
(CONFIG_JSON: net.Config fields, e.g. '{"widths": [48, 96, 192, 320], "emb_dim": 128}')"""
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train2 as T  # noqa: E402
from medsa import dataengine as DE, net  # noqa: E402


def run(bf16, batches, rounds, cfg):
    torch.manual_seed(0)
    m = net.MedSA2(net.Config.from_dict(cfg))
    net.set_phase(m, "base")
    m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], 1e-3)
    T.rounds_dist = lambda gen, dev: rounds.pop(0)  # the same rounds in both runs
    g = torch.Generator()
    g.manual_seed(0)
    t0 = None
    for i, (x, t, v) in enumerate(batches):
        if i == 2:
            t0 = time.time()
        loss, _ = T.step(m, x.contiguous(memory_format=torch.channels_last), t, v, g, bf16)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (len(batches) - 2) * batches[0][0].shape[0] / (time.time() - t0)


def main():
    torch.set_num_threads(2)
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    B = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    S = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    cfg = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    eng = DE.Engine(S, seed=0)
    batches = [eng.batch(B) for _ in range(steps)]
    rounds = [i % 3 for i in range(steps)]
    fp32 = run(False, batches, list(rounds), cfg)
    bf16 = run(True, batches, list(rounds), cfg)
    print(f"train2 step ({cfg or 'default config'}, batch {B}, {S} px, rounds 0-2): fp32 {fp32:.1f} samples/s, bf16 autocast + channels_last "
          f"{bf16:.1f} samples/s, ratio {bf16 / fp32:.2f}; {cpu_name()}, native bf16: {T.cpu_bf16_native()}")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


if __name__ == "__main__":
    main()
