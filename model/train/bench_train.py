"""Training throughput of Med-SA 2.0 on this CPU: fp32 vs bf16 autocast (+ channels_last), the same batches and
the same interaction rounds, forward + backward + AdamW step. Usage: bench_train.py [STEPS] [BATCH] [SIZE]"""
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train2 as T  # noqa: E402
from medsa import dataengine as DE, net  # noqa: E402


def run(bf16, batches, rounds):
    torch.manual_seed(0)
    m = net.MedSA2(net.Config())
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
    eng = DE.Engine(S, seed=0)
    batches = [eng.batch(B) for _ in range(steps)]
    rounds = [i % 3 for i in range(steps)]
    fp32 = run(False, batches, list(rounds))
    bf16 = run(True, batches, list(rounds))
    print(f"train2 step (batch {B}, {S} px, rounds 0-2): fp32 {fp32:.1f} samples/s, bf16 autocast + channels_last "
          f"{bf16:.1f} samples/s, ratio {bf16 / fp32:.2f}")


if __name__ == "__main__":
    main()
