"""Markdown tables for REPORT.md from eval.json, data/inventory.json and a checkpoint's parameter counts.
Usage: report_tables.py EVAL.json INVENTORY.json CKPT > tables.md"""
import json
import os
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import model as M  # noqa: E402


def quality(ev):
    rows = OrderedDict()
    for r in ev["table"]:
        rows.setdefault(r["set"], {})[r["method"]] = r
    out = ["| set | n | method | Dice 1 click | Dice 3 clicks | Dice box | NoC@85 (cap 10) | reached 85 % |",
           "|---|---|---|---|---|---|---|---|"]
    for s, d in rows.items():
        for mth in ("model", "classical"):
            if mth not in d:
                continue
            r = d[mth]
            out.append(f"| {s} | {r['n']} | {mth} | {r['click1']:.3f} | {r['click3']:.3f} | {r['box']:.3f} | "
                       f"{r['noc85']:.2f} | {100 * r['reached85']:.0f} |")
        if "model" in d and "classical" in d:
            a, b = d["model"], d["classical"]
            out.append(f"| | | **Δ model − classical** | **{a['click1'] - b['click1']:+.3f}** | "
                       f"{a['click3'] - b['click3']:+.3f} | **{a['box'] - b['box']:+.3f}** | "
                       f"{a['noc85'] - b['noc85']:+.2f} | |")
    return "\n".join(out)


def inventory(inv):
    out = ["| source | modality | plane | samples | targets |", "|---|---|---|---|---|"]
    for s in inv["sources"]:
        out.append(f"| {s['source']} | {s['modality']} | {s.get('plane', '')} | {s['samples']} | {s['targets']} |")
    return "\n".join(out)


def params(ck_path):
    ck = torch.load(ck_path, map_location="cpu")
    m = M.MedSA(M.Config.from_dict(ck["config"]))
    groups = OrderedDict([("encoder base (ViT + neck)", lambda n: n.startswith("image_encoder.")),
                          ("prompt encoder (incl. click/box map path)", lambda n: n.startswith("prompt_encoder.")),
                          ("mask decoder base", lambda n: n.startswith("mask_decoder."))])
    base = set(M.base_param_names(m))
    extra = ck.get("params", {}).get("extra", [])
    out = ["| part | parameters | trained in phase 2 |", "|---|---|---|"]
    for g, f in groups.items():
        n = sum(p.numel() for k, p in m.named_parameters() if f(k) and k in base)
        ex = sum(p.numel() for k, p in m.named_parameters() if f(k) and k in base and any(k.startswith(e) for e in extra))
        names = ", ".join(e.split(".")[-1] for e in extra if f(e + ".x"))
        out.append(f"| {g} | {n:,} | {ex:,} ({names}) |" if ex else f"| {g} | {n:,} | 0 (frozen) |")
    ad = OrderedDict()
    for k, p in m.named_parameters():
        if k in base:
            continue
        if "HyP_Adapter" in k:
            g = "decoder HyP-Adpt (3 hyper-MLPs per block)"
        elif k.startswith("mask_decoder"):
            g = "decoder MLP / cross adapters"
        elif "Depth_Adapter" in k or "depth_pos_embed" in k:
            g = "encoder Depth_Adapter + depth position embeddings (SD-Trans)"
        elif "Space_Adapter" in k:
            g = "encoder Space_Adapter"
        else:
            g = "encoder MLP_Adapter"
        ad[g] = ad.get(g, 0) + p.numel()
    for g, n in ad.items():
        out.append(f"| {g} | {n:,} | all |")
    tot = sum(p.numel() for p in m.parameters())
    tr = sum(ad.values()) + sum(p.numel() for k, p in m.named_parameters() if k in base and any(k.startswith(e) for e in extra))
    out.append(f"| **total** | **{tot:,}** | **{tr:,} ({100 * tr / tot:.1f} %)**; adapters alone "
               f"{sum(ad.values()):,} ({100 * sum(ad.values()) / tot:.1f} %) |")
    return "\n".join(out)


if __name__ == "__main__":
    ev = json.load(open(sys.argv[1]))
    inv = json.load(open(sys.argv[2]))
    print("### Quality\n\n" + quality(ev) + "\n\n### Data inventory\n\n" + inventory(inv) + "\n\n### Parameters\n\n"
          + params(sys.argv[3]))
