"""Checks of the procedural data engine (medsa/dataengine.py) and the Med-SA 2.0 trainer's prompt helpers
(train2.py): shapes, value ranges, targets that are connected and inside the canvas, determinism by seed, the
corrective clicks, and throughput (printed, samples/s on this machine). Run by scripts/test.d/model-smoke.sh.
Usage: test_dataengine.py"""
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train2 as T  # noqa: E402
from medsa import dataengine as DE, net  # noqa: E402

S = 64


def fake_real(n=6):
    yy, xx = np.mgrid[:S, :S] / S
    return torch.from_numpy(np.stack([(0.5 + 0.5 * np.sin(6 * xx * (i + 1)) * np.cos(5 * yy)) for i in range(n)])
                            .astype(np.float32))


def test_batch_shapes_ranges_targets():
    eng = DE.Engine(S, seed=3, real=fake_real(), real_frac=0.4)
    x, t, v = eng.batch(12)
    assert x.shape == (12, 3, S, S) and t.shape == (12, S, S) and v.shape == (12, S, S), (x.shape, t.shape)
    assert torch.isfinite(x).all()
    # normalised [0,1] values: (x - 0.5) / 0.25 lies in [-2, 2]; zero (grey) outside the canvas
    assert x.min() >= -2.0001 and x.max() <= 2.0001, (x.min(), x.max())
    assert (x[~v[:, None].expand_as(x)] == 0).all(), "padding not zero"
    check_targets(t, v)


def check_targets(t, v):
    """Every sample's target: at least 4 px, inside the canvas, one 8-connected component."""
    for i in range(t.shape[0]):
        ti = t[i].numpy() > 0.5
        assert ti.sum() >= 4, f"sample {i}: target of {ti.sum()} px"
        assert not (ti & ~v[i].numpy()).any(), f"sample {i}: target outside the canvas"
        _, n = ndi.label(ti, structure=np.ones((3, 3)))
        assert n == 1, f"sample {i}: target has {n} components"


def fake_labelled(n=5):
    """Nested discs as a labelled 'anatomy': label 1 a large disc, 2 and 3 small ones inside it."""
    yy, xx = np.mgrid[:S, :S]
    imgs, labs = [], []
    for i in range(n):
        r = ((yy - 32) ** 2 + (xx - 30 - i) ** 2) ** 0.5
        lab = np.where(r < 24, 1, 0) + (((yy - 24) ** 2 + (xx - 24) ** 2) < 25) + 2 * (((yy - 40) ** 2 + (xx - 36) ** 2) < 16)
        labs.append(lab.astype(np.int64))
        imgs.append((0.2 + 0.25 * lab).astype(np.float32))
    return torch.from_numpy(np.stack(imgs)), torch.from_numpy(np.stack(labs))


def test_labelled_batch():
    """A batch drawn wholly from real labelled slices: the image keeps the anatomy (the label map and the image
    agree after the shared zoom/warp), targets are connected, inside the labelled region and the canvas, and
    the same seed gives the same batch."""
    lab = fake_labelled()
    eng = DE.Engine(S, seed=4, labelled=lab, lab_frac=1.0)
    x, t, v = eng.batch(16)
    assert x.shape == (16, 3, S, S) and torch.isfinite(x).all()
    check_targets(t, v)
    labs, body, img = DE.Engine(S, seed=4, labelled=lab, lab_frac=1.0).labelled_samples(8)
    assert (labs[~body] == 0).all() and body.any(), "body is not the labelled region"
    # image and labels moved together: the bright label-3 disc stays brighter than the label-1 disc around it
    for i in range(8):
        if (labs[i] == 3).sum() > 10 and (labs[i] == 1).sum() > 10:
            assert img[i][labs[i] == 3].mean() > img[i][labs[i] == 1].mean() + 0.2, f"sample {i}: image and labels apart"
    a = DE.Engine(S, seed=9, labelled=lab, lab_frac=0.5).batch(6)
    b = DE.Engine(S, seed=9, labelled=lab, lab_frac=0.5).batch(6)
    assert all(torch.equal(p, q) for p, q in zip(a, b)), "same seed, different labelled batch"


def test_labelled_zoom():
    """lab_zoom below 0.45 reaches the box-crop scales: the small label-3 disc (r 4 px on the slice) is seen
    several times larger in some samples, and on average larger than with the default range; the default range
    never magnifies beyond 1/0.45."""
    lab = fake_labelled()

    def areas(z):
        labs, _, _ = DE.Engine(S, seed=21, labelled=lab, lab_frac=1.0, lab_zoom=z).labelled_samples(64)
        return (labs == 3).flatten(1).sum(1).float()

    base, deep = areas(0.45), areas(0.15)
    disc3 = float((lab[1][0] == 3).sum())
    assert base.max() <= disc3 / 0.45 ** 2 * 1.3, f"default zoom magnified {base.max() / disc3:.1f}x in area"
    assert deep.max() >= disc3 * 9, f"lab_zoom 0.15 never magnified 3x: max area {deep.max():.0f} of {disc3:.0f}"
    assert deep[deep > 0].mean() > 1.5 * base[base > 0].mean(), "lab_zoom 0.15 does not zoom in more on average"


def test_determinism():
    a = DE.Engine(S, seed=11).batch(4)
    b = DE.Engine(S, seed=11).batch(4)
    c = DE.Engine(S, seed=12).batch(4)
    assert all(torch.equal(p, q) for p, q in zip(a, b)), "same seed, different batch"
    assert not torch.equal(a[0], c[0]), "different seeds, same batch"


def test_chunk():
    eng = DE.Engine(S, seed=5)
    x, t, v = eng.chunk(8)
    assert x.shape == (8, 3, S, S) and t.shape == (8, S, S)
    assert t[4].sum() >= 4, "middle slice has no target"
    # the target moves smoothly: neighbouring slices overlap
    for k in range(7):
        a, b = t[k] > 0.5, t[k + 1] > 0.5
        if a.any() and b.any():
            assert (a & b).sum() > 0, f"slices {k},{k + 1} do not overlap"


def disc(cy, cx, r):
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_error_click():
    g = torch.Generator()
    g.manual_seed(0)
    cases = [(disc(32, 32, 6), disc(32, 32, 18), 1.0), (disc(32, 32, 18), disc(32, 32, 6), 0.0),
             (disc(20, 20, 8), disc(20, 20, 8), -1.0)]
    pred = torch.stack([c[0] for c in cases])
    tgt = torch.stack([c[1] for c in cases])
    valid = torch.ones_like(tgt)
    xy, lab = T.error_click(pred, tgt, valid, g)
    for i, (p, t, want) in enumerate(cases):
        assert lab[i].item() == want, (i, lab[i].item(), want)
        if want >= 0:
            c, r = int(xy[i, 0]), int(xy[i, 1])
            err = (t & ~p) if want == 1 else (p & ~t)
            assert err[r, c], f"case {i}: click ({c},{r}) not in the error"


def test_prompts():
    g = torch.Generator()
    g.manual_seed(1)
    tgt = torch.stack([disc(30, 25, 7), disc(10, 50, 4)])
    co, lb, single = T.initial_prompts(tgt, torch.ones_like(tgt), g, S)
    assert co.shape == (2, 5, 2) and lb.shape == (2, 5)
    for i in range(2):
        for (x, y), l in zip(co[i].tolist(), lb[i].tolist()):
            if l == 1:
                assert tgt[i, int(y), int(x)], "positive click outside the target"
    bx = T.bbox(tgt, g, S)
    assert (bx[:, 1] > bx[:, 0]).all(), "box corners out of order"


def test_loose_boxes():
    """bbox(loose=1): every box encloses the target and is wider than its tight box on at least one side, by at
    most 30 % of the size + 3 px per side; loose=0 draws exactly what it drew before the option existed."""
    tgt = torch.stack([disc(30, 25, 7), disc(20, 40, 4), disc(45, 45, 10)])
    g = torch.Generator()
    g.manual_seed(5)
    bx = T.bbox(tgt, g, S, loose=1.0)
    for i in range(len(tgt)):
        ys, xs = torch.nonzero(tgt[i], as_tuple=True)
        t0, t1 = (float(xs.min()), float(ys.min())), (float(xs.max()) + 1, float(ys.max()) + 1)
        (x0, y0), (x1, y1) = bx[i].tolist()
        assert x0 <= t0[0] and y0 <= t0[1] and x1 >= min(t1[0], S) and y1 >= min(t1[1], S), (bx[i], t0, t1)
        size = (t1[0] - t0[0], t1[1] - t0[1])
        assert t0[0] - x0 <= 0.3 * size[0] + 3 and x1 - t1[0] <= 0.3 * size[0] + 3, (bx[i], t0, t1)
        assert (x0, y0, x1, y1) != (*t0, *t1), "a loose box equal to the tight one"
    a, b = torch.Generator(), torch.Generator()
    a.manual_seed(9)
    b.manual_seed(9)
    assert torch.equal(T.bbox(tgt, a, S), T.bbox(tgt, b, S, loose=0.0))


def test_anchor_holds_clicks():
    """step(anchor=m) with the model itself as the anchor: samples without a box are held to its own answer, so
    with every first prompt a click and no box the gradient is zero; with boxes it is not."""
    cfg = net.Config(img_size=S, widths=(8, 16, 24, 32), emb_dim=16, fine=4, dec_dim=16, prompt_dim=16, proto_dim=8)
    torch.manual_seed(0)
    m = net.MedSA2(cfg).eval()  # eval: BatchNorm on running statistics, so the anchor's answer is the model's
    eng = DE.Engine(S, seed=4)
    x, t, v = eng.batch(4)
    for p_click, p_box, want_zero in ((1.0, 0.0, True), (0.0, 1.0, False)):
        g = torch.Generator()
        g.manual_seed(11)
        m.zero_grad()
        loss, _ = T.step(m, x, t, v, g, bf16=False, p_click=p_click, p_box=p_box, anchor=m)
        loss.backward()
        gn = sum(float(p.grad.abs().sum()) for p in m.mask_decoder.parameters() if p.grad is not None)
        assert (gn < 1e-4) == want_zero, (p_click, p_box, gn)


def test_step_runs():
    m = net.MedSA2(net.Config())
    eng = DE.Engine(S, seed=2)
    g = torch.Generator()
    g.manual_seed(2)
    x, t, v = eng.batch(2)
    loss, st = T.step(m, x, t, v, g, bf16=False)
    loss.backward()
    assert torch.isfinite(loss), loss
    x, t, v = eng.chunk(4)
    loss, st = T.step(m, x, t, v, g, bf16=False, depth=True)
    assert torch.isfinite(loss), loss


def test_masked_iou_head():
    """The mask-aware IoU head scores each candidate from its own mask: phase 'iou' trains it alone, and the
    scores follow the masks (the same masks in another order give the scores in that order)."""
    cfg = net.Config(img_size=S, widths=(8, 16, 24, 32), emb_dim=16, fine=4, dec_dim=16, prompt_dim=16,
                     proto_dim=8, iou_masked=True)
    m = net.MedSA2(cfg)
    net.set_phase(m, "iou")
    train = [n for n, p in m.named_parameters() if p.requires_grad]
    assert train and all("iou_mask_head" in n for n in train), train
    dec = m.mask_decoder
    x = torch.randn(2, cfg.dec_dim, S // 4, S // 4)
    masks = torch.randn(2, 3, S // 2, S // 2) * 4
    e = torch.randn(2, cfg.prompt_dim)
    a = dec.masked_iou(x, masks, e)
    b = dec.masked_iou(x, masks[:, [2, 0, 1]], e)
    assert a.shape == (2, 3) and torch.allclose(a[:, [2, 0, 1]], b, atol=1e-5), (a, b)
    eng = DE.Engine(S, seed=6)
    x, t, v = eng.batch(2)
    g = torch.Generator()
    g.manual_seed(3)
    loss, _ = T.step(m, x, t, v, g, bf16=False)
    loss.backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if "iou_mask_head" in n)


def test_distill():
    """train2.Distill: teacher embeddings that are a fixed function of the image are learnt (the loss falls by
    more than a third in 30 steps on 3 images); mismatched files are refused naming both."""
    import tempfile
    cfg = net.Config(img_size=S, widths=(8, 16, 24, 32), emb_dim=16, fine=4, dec_dim=16, prompt_dim=16, proto_dim=8)
    m = net.MedSA2(cfg)
    rng = np.random.default_rng(1)
    img = (rng.random((3, S, S)) * 255).astype(np.uint8)
    # a teacher: 8 channels of smoothed intensity and its square at stride 4
    x = torch.from_numpy(img).float()[:, None] / 255
    p = F.avg_pool2d(x, 4)
    emb = torch.cat([p * (k + 1) for k in range(4)] + [p ** 2 * (k + 1) for k in range(4)], 1).numpy().astype(np.float16)
    with tempfile.TemporaryDirectory() as d:
        ip, ep = os.path.join(d, "i.npy"), os.path.join(d, "e.npy")
        np.save(ip, img)
        np.save(ep, emb)
        dist = T.Distill(f"{ip},{ep}", cfg.emb_dim, 1.0, 3)
        # the least-squares head: its R^2 is 1 - the loss it gives on the same slices
        r2 = dist.fit_head(m, ridge=1e-6)
        m.eval()
        with torch.no_grad():
            x, t = dist.batch(torch.arange(3))
            mse = float(F.mse_loss(dist.head(m.image_encoder(x)[:, :cfg.emb_dim]), t))
        m.train()
        assert 0.0 < r2 < 1.0 and abs((1 - r2) - mse) < 0.02, (r2, mse)
        opt = torch.optim.Adam(list(m.image_encoder.parameters()) + list(dist.head.parameters()), lr=3e-3)
        g = torch.Generator()
        g.manual_seed(0)
        losses = []
        for _ in range(30):
            loss = dist.loss(m, g, bf16=False)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        assert np.mean(losses[-5:]) < 0.66 * np.mean(losses[:5]), losses
        np.save(ep, emb[:2])
        try:
            T.Distill(f"{ip},{ep}", cfg.emb_dim, 1.0, 3)
            raise AssertionError("mismatched teacher files accepted")
        except ValueError as e:
            assert ip in str(e) and ep in str(e), e


def test_online_distill():
    """train2.Distill.online: a teacher applied to engine batches (the GPU recipe's path). Its held-out R^2 lies
    in (0, 1), training on fresh batches lowers the loss by more than a quarter and raises the held-out R^2; the
    teacher sees the [0,1] image with zero padding (LiteMedSAM's preprocessing), whatever the normalisation."""
    cfg = net.Config(img_size=S, widths=(8, 16, 24, 32), emb_dim=16, fine=4, dec_dim=16, prompt_dim=16, proto_dim=8)
    torch.manual_seed(0)
    m = net.MedSA2(cfg)
    seen = []

    def teacher(x, valid):
        x01 = ((x.float() * DE.STD + DE.MEAN) * valid[:, None]).clamp(0, 1)
        seen.append((float(x01.min()), float(x01.max()), bool((x01[valid[:, None].expand_as(x01) == 0] == 0).all())))
        p = F.avg_pool2d(x01.mean(1, keepdim=True), 4)
        return torch.cat([p * (k + 1) for k in range(4)] + [p ** 2 * (k + 1) for k in range(4)], 1)
    eng = DE.Engine(S, seed=5, real=fake_real(), real_frac=0.4)
    xs, vs = zip(*[(x, v) for x, _, v in (eng.batch(8) for _ in range(2))])
    d = T.Distill.online(teacher, torch.cat(xs), torch.cat(vs), cfg.emb_dim, 1.0, 6)
    assert all(lo >= 0 and hi <= 1 and pad for lo, hi, pad in seen), seen
    fit, held = torch.arange(0, 16, 2), torch.arange(1, 16, 2)
    r0 = d.r2(m, fit, held)
    assert 0.0 < r0 < 1.0, r0
    opt = torch.optim.Adam(list(m.image_encoder.parameters()) + list(d.head.parameters()), lr=3e-3)
    g = torch.Generator()
    g.manual_seed(0)
    losses = []
    for _ in range(40):
        x, _, v = eng.batch(6)
        loss = d.loss(m, g, bf16=False, x=x, valid=v)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5]), losses
    r1 = d.r2(m, fit, held)
    assert r1 > r0, (r0, r1)


def throughput():
    torch.set_num_threads(2)
    eng = DE.Engine(128, seed=0)
    eng.batch(16)
    t0 = time.time()
    n = 0
    while time.time() - t0 < 3:
        eng.batch(16)
        n += 16
    print(f"data engine: {n / (time.time() - t0):.1f} samples/s at 128 px on this CPU")


if __name__ == "__main__":
    torch.set_num_threads(2)
    for name, f in list(globals().items()):
        if name.startswith("test_") and callable(f):
            f()
            print("ok", name)
    throughput()
