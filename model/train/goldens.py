"""Golden cases for the Go engine (docs/MANIFEST.md): raw slice, preprocessed image, embeddings, decoder
outputs, all computed with PyTorch from the checkpoint that was exported.

Usage: goldens.py CKPT OUTDIR [MANIFEST]   (with a manifest that has auto_zoom: one more case, decoded by the policy)"""
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import load as L, model as M, prep, sources  # noqa: E402


MODEL_NAME = "medsa-tiny"


def wr(d, name, arr):
    a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    a.tofile(os.path.join(d, name))
    return {"file": name, "shape": list(a.shape)}


def cases(zoom=None):
    out = []
    vol, sp, _ = sources.inv3()
    cor = vol[::-1, 128, :]  # coronal reformat: rows = z (superior up), cols = x
    out.append(dict(name="ct_coronal_aniso", modality="CT", slice=np.ascontiguousarray(cor),
                    spacing=[sp[0], sp[2]], window=[40.0, 400.0],
                    points=[[128.0, 40.0, 1], [60.5, 90.25, 0]], box=None, refine=False))
    if zoom:  # the engine's auto-zoom on a small box of the same anisotropic reformat
        out.append(dict(name="ct_coronal_box_zoom", modality="CT", slice=np.ascontiguousarray(cor),
                        spacing=[sp[0], sp[2]], window=[40.0, 400.0], points=[[150.0, 50.0, 1]],
                        box=[135.0, 38.0, 171.0, 66.0], refine=False, zoom=zoom))
    from skimage import io
    ret = io.imread(os.path.join(sources.SKIMAGE, "retina.jpg"))[::4, ::4][120:280, 180:380, :3]
    out.append(dict(name="rgb_fundus", modality="RGB", slice=np.ascontiguousarray(ret.astype(np.float32)),
                    spacing=[1.0, 1.0], window=None, points=[[100.0, 80.0, 1], [30.0, 30.0, 1]], box=None,
                    refine=False))
    import pydicom
    ds = pydicom.dcmread(os.path.join(sources.PYDICOM, "MR_small.dcm"))
    mr = ds.pixel_array.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1)) + float(
        getattr(ds, "RescaleIntercept", 0))
    ps = [float(x) for x in ds.PixelSpacing]  # (row spacing, col spacing)
    win = prep.percentile_window(mr)
    out.append(dict(name="mr_box_refine", modality="MR", slice=mr, spacing=[ps[1], ps[0]],
                    window=[float(win[0]), float(win[1])], points=[[40.0, 30.0, 1]], box=[12.0, 10.0, 52.0, 50.0],
                    refine=True))
    return out


@torch.no_grad()
def run_case(m, c, d, man=prep.DEFAULT, ranking=None):
    os.makedirs(d, exist_ok=True)
    sl = c["slice"]
    H, W = sl.shape[:2]
    C = sl.shape[2] if sl.ndim == 3 else 1
    img, (Wp, Hp) = prep.preprocess(sl, c["spacing"], c["window"], man)
    x = torch.from_numpy(img)[None]
    emb = m.image_encoder(x)
    # The engine's order (model/engine.go promptTensors): clicks, then box corners (2, 3) or a padding point.
    pts, labs = [], []
    for u, v, l in c["points"]:
        pts.append(prep.to_model_coords(u, v, W, H, Wp, Hp))
        labs.append(float(l))
    if c["box"] is not None:
        u0, v0, u1, v1 = c["box"]
        pts += [prep.to_model_coords(u0, v0, W, H, Wp, Hp), prep.to_model_coords(u1, v1, W, H, Wp, Hp)]
        labs += [2.0, 3.0]
    else:
        pts.append((0.0, 0.0))
        labs.append(-1.0)
    co = torch.tensor([pts], dtype=torch.float32)
    lb = torch.tensor([labs], dtype=torch.float32)
    L = m.cfg.low_res
    mask_in = torch.zeros(1, 1, L, L)
    has = torch.zeros(1)
    if c["refine"]:  # mask_input = best candidate of a first decode with the same prompt
        low0, iou0 = m.decode(emb, co, lb, mask_in, has)
        mask_in = low0[:, int(torch.argmax(iou0[0]))][:, None].contiguous()
        has = torch.ones(1)
    low, iou = m.decode(emb, co, lb, mask_in, has)
    masks = prep.postprocess_masks(low, W, H, Wp, Hp, m.cfg.img_size)
    case = {
        "model": MODEL_NAME,
        "name": c["name"], "modality": c["modality"],
        "slice": wr(d, "slice.f32", sl.reshape(H, W, C)),
        "height": H, "width": W, "channels": C,
        "spacing": [float(s) for s in c["spacing"]],
        "window": c["window"],
        "points": [{"u": float(u), "v": float(v), "positive": bool(l)} for u, v, l in c["points"]],
        "box": c["box"],
        "mask_input": wr(d, "mask_input.f32", mask_in.numpy()) if c["refine"] else None,
        "resized": [Wp, Hp],
        "decoder_inputs": {"point_coords": co.numpy().tolist(), "point_labels": lb.numpy().tolist(),
                           "has_mask_input": [float(has[0])], "orig_im_size": [float(H), float(W)]},
        "expected": {"image": wr(d, "image.f32", x.numpy()), "embeddings": wr(d, "embeddings.f32", emb.numpy()),
                     "low_res_masks": wr(d, "low_res_masks.f32", low.numpy()),
                     "iou_predictions": wr(d, "iou_predictions.f32", iou.numpy()),
                     "masks": wr(d, "masks.f32", masks.numpy())},
        "notes": "PyTorch reference. point_coords: slice points (u,v) -> x=u*W'/W, y=v*H'/H; clicks, then box "
                 "corners or a padding point (0,0,-1). masks.f32: the manifest formula on low_res_masks with W',H' "
                 "from the spacing (logits; threshold > 0).",
    }
    if ranking is not None:  # the candidate the engine offers first, by evaluate.py's mirror of the ranking
        import evaluate as E
        case["ranked"] = E.ModelSeg(m, None, ranking).best(iou[0].numpy(), low[0].numpy())
    if c.get("zoom"):
        import evaluate as E
        seg = E.ModelSeg(m, c["zoom"])
        seg.set_image(sl if C > 1 else sl.reshape(H, W), c["spacing"], c["window"])
        clicks = [(u, v, bool(l)) for u, v, l in c["points"]]
        zm, _, zl = seg.candidates(clicks, c["box"], use_prev=False)
        b = c["box"]
        crop = E.crop_rect(min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3]), c["zoom"],
                           c["zoom"]["box_margin"], W, H)
        case["zoom"] = {"crop": list(crop), "masks": wr(d, "zoom_masks.f32", zm.astype(np.float32)),
                        "low_res": wr(d, "zoom_low_res.f32", zl)}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")
    return case


def main():
    torch.set_num_threads(2)
    m = L.from_checkpoint(sys.argv[1])
    man = prep.DEFAULT
    zoom = ranking = None
    if len(sys.argv) > 3:  # the exported manifest.json: its preprocessing (converted official checkpoints) and
        mf = json.load(open(sys.argv[3]))  # its auto_zoom policy (a zoom case is added)
        man = dict(prep.DEFAULT)
        man.update({k: v for k, v in mf.items() if k in prep.DEFAULT})
        zoom, ranking = mf.get("auto_zoom"), mf.get("ranking")
    for c in cases(zoom):
        cs = run_case(m, c, os.path.join(sys.argv[2], c["name"]), man, ranking)
        print(cs["name"], cs["resized"], np.round(np.fromfile(os.path.join(sys.argv[2], c["name"], "iou_predictions.f32"), "<f4"), 3))


if __name__ == "__main__":
    main()
