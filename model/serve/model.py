"""medsa encoder for Triton's Python backend (written by `medsa serve-config`).

Runs the bundled encoder ONNX with ONNX Runtime inside Triton, for Triton builds without the ONNX Runtime
backend (e.g. the tritonserver binary in PyPI's nvidia-pytriton wheel). The model configuration's parameters
name the ONNX tensors, the file's sha256 (checked at load: another file is refused), the ONNX Runtime threads
and providers. Requests that Triton's dynamic batcher hands over together are run as one batch when the ONNX
batch axis is dynamic, item by item when the export fixes it (the bundled one: batch 1).
"""
import hashlib
import json
import os
import sys

# Triton's embedded Python ignores PYTHONPATH: scripts/serve.sh names the venv here.
for _p in reversed([x for x in os.environ.get("MEDSA_TRITON_PYTHONPATH", "").split(os.pathsep) if x]):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        p = {k: v.get("string_value", "") for k, v in cfg.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        if sha != p["medsa_sha256"]:
            raise pb_utils.TritonModelException(
                f"{path}: sha256 {sha}, config says {p['medsa_sha256']}: rerun medsa serve-config")
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(p.get("intra_op_threads") or 0)
        so.inter_op_num_threads = 1
        providers = [x for x in (p.get("providers") or "CPUExecutionProvider").split(",") if x]
        self.sess = ort.InferenceSession(path, so, providers=providers)
        self.inp, self.out = p["onnx_input"], p["onnx_output"]
        dt = pb_utils.get_output_config_by_name(cfg, self.out)["data_type"]
        self.out_dtype = pb_utils.triton_string_to_numpy(dt)
        self.batched = cfg.get("max_batch_size", 0) > 0
        b = self.sess.get_inputs()[0].shape[0]
        self.fixed = b if isinstance(b, int) else 0

    def _run(self, x):
        if not self.batched or not self.fixed or x.shape[0] == self.fixed:
            return self.sess.run([self.out], {self.inp: x})[0]
        f = self.fixed
        return np.concatenate([self.sess.run([self.out], {self.inp: x[i:i + f]})[0] for i in range(0, x.shape[0], f)])

    def execute(self, requests):
        xs = [pb_utils.get_input_tensor_by_name(r, self.inp).as_numpy() for r in requests]
        if self.batched and len(xs) > 1:
            y = self._run(np.ascontiguousarray(np.concatenate(xs)))
            ys, o = [], 0
            for x in xs:
                ys.append(y[o:o + x.shape[0]])
                o += x.shape[0]
        else:
            ys = [self._run(x) for x in xs]
        return [pb_utils.InferenceResponse([pb_utils.Tensor(self.out, np.ascontiguousarray(y.astype(self.out_dtype)))])
                for y in ys]
