"""Writes the auto-zoom parity cases (testdata/autozoom/cases.json): crop_rect, remap_low, keep_zoomed and
box_clip_rect of evaluate.py on fixed inputs. model/autozoom_test.go (TestAutoZoomParity) checks the Go engine gives the same; the model smoke
test checks this script still writes the committed file. Usage: zoom_cases.py OUT.json"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as E  # noqa: E402

Z = {"box_margin": 2.0, "min_side": 48, "click_below": 0.02, "click_margin": 2.5, "max_frac": 0.8,
     "click_min_points": 2, "click_agree": 0.5}


def main():
    crops = []
    for (u0, v0, u1, v1), margin, W, H in [((10, 10, 30, 25), 2.0, 256, 256), ((0, 0, 5, 5), 2.0, 512, 512),
                                            ((480, 300, 511, 340), 2.0, 512, 512), ((100, 20, 140, 90), 2.5, 256, 169),
                                            ((10, 10, 200, 200), 2.0, 256, 256), ((3.5, 7.25, 9.75, 12.5), 1.5, 64, 64),
                                            ((200, 100, 260, 120), 2.0, 1411, 300), ((50, 60, 52, 61), 2.0, 100, 400)]:
        crops.append({"bbox": [u0, v0, u1, v1], "margin": margin, "W": W, "H": H,
                      "crop": E.crop_rect(u0, v0, u1, v1, Z, margin, W, H)})
    rng = np.random.default_rng(0)
    L = 16
    src = rng.normal(0, 4, (L, L)).astype(np.float32)
    gs = {"W": 40, "H": 30, "W2": 64, "H2": 48, "S": 64, "L": L}
    gd = {"W": 200, "H": 120, "W2": 64, "H2": 38, "S": 64, "L": L}
    out = E.remap_low(src, gs, 70.0, 50.0, gd)
    agree = []  # mask pairs (rows of 0/1 digits) around the threshold: disjoint, equal, Dice exactly 0.5, empty, one empty, random
    a = np.zeros((8, 10), np.uint8); a[2:6, 2:6] = 1
    b = np.zeros_like(a); b[2:6, 4:8] = 1  # Dice 8 / 16 = 0.5 exactly
    pairs = [(a, np.roll(a, 5, 1)), (a, a), (a, b), (np.zeros_like(a), np.zeros_like(a)), (a, np.zeros_like(a))]
    pairs += [((rng.random((8, 10)) < p).astype(np.uint8), (rng.random((8, 10)) < q).astype(np.uint8))
              for p, q in [(0.5, 0.5), (0.2, 0.6), (0.7, 0.7), (0.1, 0.1)]]
    for x, y in pairs:
        for agree_min in (0.0, 0.5, 0.3):
            agree.append({"a": "".join(map(str, x.ravel())), "b": "".join(map(str, y.ravel())), "click_agree": agree_min,
                          "keep": bool(E.keep_zoomed(x, y, dict(Z, click_agree=agree_min)))})
    clips = []  # box (any corner order, fractional), clicks (u, v, positive), slice size -> the clip rectangle
    for box, clicks, W, H in [((10, 12, 30, 25), [], 64, 64), ((30.7, 25.2, 10.4, 12.9), [], 64, 64),
                              ((10, 12, 30, 25), [(40.5, 5.2, True)], 64, 64), ((10, 12, 30, 25), [(50, 50, False)], 64, 64),
                              ((0, 0, 63, 63), [], 64, 64), ((-3, -2, 70.5, 80), [(-1, 90, True)], 64, 64),
                              ((5, 5, 5, 5), [], 8, 8), ((100, 20, 140.99, 90), [(99.99, 95, True), (150, 10, True)], 256, 169)]:
        clips.append({"box": list(box), "clicks": [[u, v, pos] for u, v, pos in clicks], "W": W, "H": H,
                      "rect": list(E.box_clip_rect(box, clicks, W, H))})
    json.dump({"policy": Z, "crops": crops, "agree": agree, "box_clip": clips,
               "remap": {"src": src.ravel().tolist(), "gs": gs, "gd": gd, "offset": [70.0, 50.0],
                         "out": [round(float(x), 5) for x in out.ravel()]}}, open(sys.argv[1], "w"), indent=1)
    print("wrote", sys.argv[1])


if __name__ == "__main__":
    main()
