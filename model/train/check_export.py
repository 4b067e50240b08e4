"""Structural check of an exported model directory: onnx.checker, tensor names/shapes against manifest.json and
the checkpoint's config, sha256 of each file. Usage: check_export.py MODEL_DIR [--max-mb N (0 = no limit; default 40, the bundle budget)]"""
import json
import os
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from medsa import export  # noqa: E402


def dims(vi):
    return [d.dim_value if d.dim_value else (d.dim_param or "?") for d in vi.type.tensor_type.shape.dim]


def same(got, want):
    """Numeric dims must match; symbolic output dims (left by the tracer) are accepted."""
    return len(got) == len(want) and all(isinstance(g, str) or g == w for g, w in zip(got, want))


def main():
    d = sys.argv[1]
    max_mb = float(sys.argv[sys.argv.index("--max-mb") + 1]) if "--max-mb" in sys.argv else 40.0
    man = json.load(open(os.path.join(d, "manifest.json")))
    assert man["format"] == "medsa-manifest/1"
    S, L, M = man["input_size"], man["low_res_mask_size"], man["num_mask_outputs"]
    emb = man["embedding_shape"]
    total = 0
    for k, f in man["files"].items():
        p = os.path.join(d, f["path"])
        assert export.sha256(p) == f["sha256"], f"{p}: sha256 mismatch"
        total += os.path.getsize(p)
        m = onnx.load(p)
        onnx.checker.check_model(m)
        assert m.opset_import[0].version == export.OPSET, (p, m.opset_import)
        ins = [i.name for i in m.graph.input]
        outs = [o.name for o in m.graph.output]
        t = man["tensors"][k]
        assert ins == t["inputs"] and outs == t["outputs"], (p, ins, outs)
        shapes = {v.name: dims(v) for v in list(m.graph.input) + list(m.graph.output)}
        if k == "encoder":
            assert shapes["image"] == [1, 3, S, S] and same(shapes["image_embeddings"], emb), shapes
        elif k == "encoder3d":
            D = man["depth_chunk"]
            assert shapes["images"] == [D, 3, S, S] and same(shapes["image_embeddings"], [D] + emb[1:]), shapes
        else:
            assert shapes["image_embeddings"] == emb, shapes
            assert shapes["mask_input"] == [1, 1, L, L], shapes
            assert same(shapes["low_res_masks"], [1, M, L, L]) and same(shapes["iou_predictions"], [1, M]), shapes
            assert isinstance(shapes["point_coords"][1], str), "num_points must be dynamic"
    assert max_mb <= 0 or total <= max_mb * 1024 * 1024, f"bundle {total} bytes > {max_mb} MB"
    print(f"check_export: {d} ok ({total / 1e6:.1f} MB, files {list(man['files'])})")


if __name__ == "__main__":
    main()
