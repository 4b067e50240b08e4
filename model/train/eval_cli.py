"""The evaluation protocol through the product itself: `medsa segment` (ONNX Runtime, the engine's
preprocessing, default window and auto-zoom) with `--state` carrying the prompts and the previous logits from
one call to the next, as an outside harness drives it. Real MR: the ITK KmeansTest T1 as stored (128 x 128 x
62, LSA, coronal slices = array axis k), targets = components of its tissue label map (>= 60 px, 2 per label)
and the brain (skull-strip > 0), every 6th coronal slice. Prompts as evaluate.py: 1 click at the deepest
interior point, corrective clicks at the deepest point of the largest error region (3 clicks = 1 + 2), NoC@85
(cap 10), the tight box. Held out as well (medsa/atlas.py; `make -C model/train data-pypi`): the MNI152NLin2009cAsym
T1 with its skull as stored (193 x 229 x 193, RAS, axial slices = array axis k), targets = the largest component
of each FreeSurfer subcortical label (atlaspy's DKT) and the brain, every 3rd axial slice: the kind of structure
a clinician clicks on. Usage: eval_cli.py MODEL_DIR OUT.json [--max N] [--bin bin/medsa] [--no-zoom]"""
import json
import os
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as E  # noqa: E402
from medsa import atlas, sources  # noqa: E402


def items(max_items):
    t1 = os.path.join(sources.ITK, "KmeansTest_T1UCharRaw.nii.gz")
    lab = np.asanyarray(nib.load(os.path.join(sources.ITK, "KmeansTest_T1KmeansPrelimSegmentation.nii.gz")).dataobj)
    brain = np.asanyarray(nib.load(os.path.join(sources.ITK, "KmeansTest_T1RawSkullStrip.nii.gz")).dataobj) > 0
    out = []
    for k in range(10, lab.shape[2] - 10, 6):
        sl = lab[:, :, k].T  # rows = v = j, cols = u = i (the slice frame of medsa's coronal plane here)
        for c in np.unique(sl):
            if c == 0:
                continue
            for m in E.comps(sl == c, 60, 2):
                out.append(("MR ITK T1 tissue labels (CLI)", t1, k, m, "coronal"))
        for m in E.comps(brain[:, :, k].T, 200, 1):
            out.append(("MR ITK T1 whole brain (CLI)", t1, k, m, "coronal"))
    if os.path.exists(atlas.CHIMERA):
        dkt = np.rint(np.asanyarray(nib.load(os.path.join(atlas.ATLASPY, "dkt.nii.gz")).dataobj)).astype(int)
        bm = np.asanyarray(nib.load(os.path.join(atlas.ATLASPY, "tpl-MNI152NLin2009cAsym_res-01_desc-brain_T1w.nii.gz")).dataobj) > 0
        for k in range(20, dkt.shape[2] - 20, 3):
            sl = dkt[:, :, k].T
            for c in sorted(atlas.SUBCORTICAL):
                for m in E.comps(sl == c, 40, 1):
                    out.append(("MR MNI2009c subcortical, held out (CLI)", atlas.CHIMERA, k, m, "axial"))
            if k % 12 == 2:
                for m in E.comps(bm[:, :, k].T, 2000, 1):
                    out.append(("MR MNI2009c whole brain, held out (CLI)", atlas.CHIMERA, k, m, "axial"))
    by = {}
    for it in out:
        by.setdefault(it[0], []).append(it)
    return [x for k, v in by.items() for x in E._pick(v, max_items * (2 if "subcortical" in k else 1))]


class CLI:
    def __init__(self, binary, model, tmp, no_zoom):
        self.bin, self.model, self.tmp, self.no_zoom = binary, model, tmp, no_zoom
        self.calls = 0

    def run(self, img, k, points, box, state, plane="coronal"):
        out = os.path.join(self.tmp, "m.nii.gz")
        args = [self.bin, "segment", "--image", img, "--out", out, "--model", self.model, "--plane", plane,
                "--device", "cpu", "--state", state]
        if self.no_zoom:
            args.append("--no-zoom")
        for u, v, pos in points:
            args += ["--point", f"{int(round(u))},{int(round(v))},{k},{'+' if pos else '-'}"]
        if box is not None:
            b = [int(round(x)) for x in box]
            args += ["--box", f"{b[0]},{b[1]},{b[2]},{b[3]},{k}"]
        r = subprocess.run(args, capture_output=True, text=True)
        self.calls += 1
        if r.returncode != 0:
            raise RuntimeError(f"medsa segment failed: {r.stdout}\n{r.stderr}")
        return np.asanyarray(nib.load(out).dataobj)[:, :, k].T > 0


def run_item(cli, it):
    name, img, k, gt, plane = it
    st = os.path.join(cli.tmp, "state.json")
    if os.path.exists(st):
        os.remove(st)
    u, v = E.deepest(gt)
    p = cli.run(img, k, [(u, v, True)], None, st, plane)
    res = {"click1": E.dice(p, gt)}
    ious = [E.iou(p, gt)]
    for i in range(9):
        c = E.next_click(p, gt)
        if c is None:
            ious.append(1.0)
            break
        p = cli.run(img, k, [c], None, st, plane)  # the state holds the earlier prompts and logits
        if i == 1:
            res["click3"] = E.dice(p, gt)
        ious.append(E.iou(p, gt))
        if i >= 1 and ious[-1] >= 0.85:
            break
    res.setdefault("click3", E.dice(p, gt))
    noc = next((j + 1 for j, x in enumerate(ious) if x >= 0.85), None)
    res["noc85"] = float(noc) if noc is not None else 10.0
    os.remove(st)
    res["box"] = E.dice(cli.run(img, k, [], E.tight_box(gt), st, plane), gt)
    return res


def main():
    argv = sys.argv[1:]
    mx = int(argv[argv.index("--max") + 1]) if "--max" in argv else 12
    only = argv[argv.index("--only") + 1] if "--only" in argv else ""  # a substring of the set names
    binary = argv[argv.index("--bin") + 1] if "--bin" in argv else os.path.join(sources.repo_root(), "bin", "medsa")
    pos = [a for i, a in enumerate(argv) if not a.startswith("--") and not (i > 0 and argv[i - 1] in ("--max", "--bin", "--only"))]
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        cli = CLI(binary, pos[0], tmp, "--no-zoom" in argv)
        rows = {}
        for it in items(mx):
            if only and only not in it[0]:
                continue
            rows.setdefault(it[0], []).append(run_item(cli, it))
    out = {"model": pos[0], "zoom": "--no-zoom" not in argv, "calls": cli.calls, "seconds": round(time.time() - t0, 1),
           "table": [{"set": s, "n": len(r), **{k: float(np.mean([x[k] for x in r])) for k in
                                                ("click1", "click3", "box", "noc85")}} for s, r in rows.items()]}
    json.dump(out, open(pos[1], "w"), indent=1)
    for r in out["table"]:
        print(f"{r['set']:32s} {r['n']:3d} 1 click {r['click1']:.3f} 3 clicks {r['click3']:.3f} box {r['box']:.3f} "
              f"NoC85 {r['noc85']:.2f}")
    print(f"{cli.calls} medsa segment calls in {out['seconds']} s")


if __name__ == "__main__":
    main()
