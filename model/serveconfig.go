package model

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

//go:embed serve/model.py
var servePythonModel []byte

// ServeConfigOptions shape the Triton model repository WriteServeConfig writes.
type ServeConfigOptions struct {
	// Wire is the embedding's datatype on the wire for the Python-backend
	// configurations: "fp32" (default: bit-equal to the local encoder, masks
	// identical) or "fp16" (half the bytes; embeddings rounded to binary16,
	// measured mask Dice >= 0.9999 vs local on the goldens). The ONNX Runtime
	// backend configurations send what the ONNX file outputs (FP32).
	Wire string
	// Instances per device (instance_group count); 0 = 1.
	Instances int
	// MaxBatch is the dynamic batcher's largest batch for the 2D encoder
	// (Python-backend configurations); 0 = 8.
	MaxBatch int
	// QueueDelayUS is how long the dynamic batcher waits to fill a batch; 0 = 2000 µs.
	QueueDelayUS int
	// Threads is ONNX Runtime's intra-op threads per instance (Python backend); 0 = all cores.
	Threads int
	No3D    bool // leave out encoder3d
	// NoBatching serves the Python-backend 2D encoder without the dynamic
	// batcher (max_batch_size 0), for comparing.
	NoBatching bool
}

// Serve configurations written next to each model's config.pbtxt (Triton
// --model-config-name selects one; config.pbtxt is the "gpu" one).
var ServeConfigNames = []string{"gpu", "cpu", "python-cpu", "python-gpu"}

// WriteServeConfig writes a Triton model repository for the manifest's
// encoders into dir: <name>-encoder[3d]/{config.pbtxt, configs/*.pbtxt,
// 1/model.onnx, 1/model.py} and README.md. It returns the files written.
func WriteServeConfig(man *Manifest, dir string, opt ServeConfigOptions) ([]string, error) {
	switch opt.Wire {
	case "":
		opt.Wire = "fp32"
	case "fp16", "fp32":
	default:
		return nil, fmt.Errorf("serve-config: wire %q, want fp16 or fp32", opt.Wire)
	}
	opt.Instances = max(opt.Instances, 1)
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 8
	}
	if opt.QueueDelayUS <= 0 {
		opt.QueueDelayUS = 2000
	}
	var written []string
	write := func(path string, b []byte) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("serve-config: %w", err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("serve-config: %w", err)
		}
		written = append(written, path)
		return nil
	}
	kinds := []string{"encoder"}
	if man.Has3D() && !opt.No3D {
		kinds = append(kinds, "encoder3d")
	}
	for _, kind := range kinds {
		name := ServedModelName(man, kind)
		md := filepath.Join(dir, name)
		for _, c := range ServeConfigNames {
			b := []byte(tritonConfig(man, kind, c, opt))
			if err := write(filepath.Join(md, "configs", c+".pbtxt"), b); err != nil {
				return nil, err
			}
			if c == "gpu" {
				if err := write(filepath.Join(md, "config.pbtxt"), b); err != nil {
					return nil, err
				}
			}
		}
		dst := filepath.Join(md, "1", "model.onnx")
		if err := copyFile(man.FilePath(kind), dst); err != nil {
			return nil, fmt.Errorf("serve-config: copy %s: %w", kind, err)
		}
		written = append(written, dst)
		if err := write(filepath.Join(md, "1", "model.py"), servePythonModel); err != nil {
			return nil, err
		}
	}
	if err := write(filepath.Join(dir, "README.md"), []byte(serveReadme(man, kinds, opt))); err != nil {
		return nil, err
	}
	return written, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func dimsString(d []int64) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return "[ " + strings.Join(s, ", ") + " ]"
}

// tritonConfig is one config.pbtxt. The bundled encoders have a fixed batch
// axis (1 for the 2D encoder, the depth chunk for encoder3d), so the ONNX
// Runtime backend serves them with max_batch_size 0 (concurrency from
// instances); the Python backend's 2D encoder takes batches from the dynamic
// batcher and runs them item by item.
func tritonConfig(man *Manifest, kind, variant string, opt ServeConfigOptions) string {
	S := int64(man.InputSize)
	es := man.EmbeddingShape
	n := int64(1)
	if kind == "encoder3d" {
		n = int64(man.DepthChunk)
	}
	tn := man.Tensors[kind]
	python := strings.HasPrefix(variant, "python")
	gpu := strings.HasSuffix(variant, "gpu")
	var b strings.Builder
	fmt.Fprintf(&b, "# %s %s for Triton (%s), written by `medsa serve-config`; the identity parameters must match\n", man.ID(), kind, variant)
	fmt.Fprintf(&b, "# the client's manifest.json, or medsa refuses the server.\n")
	fmt.Fprintf(&b, "name: %q\n", ServedModelName(man, kind))
	outType := "TYPE_FP32"
	batch := 0
	inDims := []int64{n, 3, S, S}
	outDims := []int64{n, es[1], es[2], es[3]}
	if python {
		b.WriteString("backend: \"python\"\n")
		if opt.Wire == "fp16" {
			outType = "TYPE_FP16"
		}
		if kind == "encoder" && !opt.NoBatching {
			batch = opt.MaxBatch
			inDims, outDims = inDims[1:], outDims[1:]
		}
	} else {
		b.WriteString("platform: \"onnxruntime_onnx\"\ndefault_model_filename: \"model.onnx\"\n")
	}
	fmt.Fprintf(&b, "max_batch_size: %d\n", batch)
	fmt.Fprintf(&b, "input [ { name: %q data_type: TYPE_FP32 dims: %s } ]\n", tn.Inputs[0], dimsString(inDims))
	fmt.Fprintf(&b, "output [ { name: %q data_type: %s dims: %s } ]\n", tn.Outputs[0], outType, dimsString(outDims))
	if batch > 0 {
		fmt.Fprintf(&b, "dynamic_batching { max_queue_delay_microseconds: %d }\n", opt.QueueDelayUS)
	}
	k := "KIND_CPU"
	if gpu {
		k = "KIND_GPU"
	}
	fmt.Fprintf(&b, "instance_group [ { count: %d kind: %s } ]\n", opt.Instances, k)
	param := func(key, val string) {
		fmt.Fprintf(&b, "parameters { key: %q value: { string_value: %q } }\n", key, val)
	}
	param(ParamModel, man.Name)
	param(ParamVersion, man.Version)
	param(ParamSHA256, man.Files[kind].SHA256)
	param(ParamKind, kind)
	if python {
		param("onnx_input", tn.Inputs[0])
		param("onnx_output", tn.Outputs[0])
		param("intra_op_threads", fmt.Sprint(opt.Threads))
		prov := "CPUExecutionProvider"
		if gpu {
			prov = "CUDAExecutionProvider,CPUExecutionProvider"
		}
		param("providers", prov)
	}
	return b.String()
}

func serveReadme(man *Manifest, kinds []string, opt ServeConfigOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Triton model repository for %s\n\n", man.ID())
	b.WriteString("Written by `medsa serve-config`. medsa encodes on this server (Open Inference Protocol / KServe v2,\n")
	b.WriteString("HTTP/REST with binary tensors) and decodes every click locally, so a click never waits on the network.\n\n")
	b.WriteString("| model | file | sha256 |\n|---|---|---|\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "| `%s` | `%s/1/model.onnx` | `%s` |\n", ServedModelName(man, k), ServedModelName(man, k), man.Files[k].SHA256)
	}
	fmt.Fprintf(&b, `
Each model's configuration states the model's name (%s), version (%s) and the encoder's sha256 as
parameters medsa_model, medsa_version, medsa_sha256; medsa reads them from GET /v2/models/NAME/config and
refuses a server whose values differ from its own manifest.json, showing both (a wrong encoder would give
wrong masks silently). Regenerate this directory whenever the bundled model changes.

## Configurations (Triton --model-config-name)
- config.pbtxt = configs/gpu.pbtxt: ONNX Runtime backend, instance_group KIND_GPU.
- configs/cpu.pbtxt: ONNX Runtime backend, KIND_CPU.
- configs/python-cpu.pbtxt, configs/python-gpu.pbtxt: Triton's Python backend running 1/model.py, which runs
  the same ONNX file with onnxruntime (CPU, or onnxruntime-gpu's CUDA provider); for Triton builds without the
  ONNX Runtime backend, such as the tritonserver binary in PyPI's nvidia-pytriton wheel. The 2D encoder takes
  batches of up to %d from the dynamic batcher (max_queue_delay %d µs); embeddings go out as %s.
The bundled ONNX files fix their batch axis (1 slice; one depth chunk of %d for encoder3d), so the ONNX
Runtime configurations use max_batch_size 0 and scale with instance_group count instead.

## Start it
With NVIDIA's container (GPU):

    docker run --gpus all --rm -p 8000:8000 -p 8001:8001 -v $PWD:/models \
      nvcr.io/nvidia/tritonserver:24.09-py3 tritonserver --model-repository=/models [--model-config-name=cpu]

With PyPI only (what `+"`make serve`"+` and the tests do; CPU, no container):

    python3 -m venv venv && venv/bin/pip install nvidia-pytriton==0.7.0 onnxruntime==1.30.0
    scripts/serve.sh --repo THIS_DIR --port 8000     # tritonserver --model-config-name=python-cpu, loopback only

Then: `+"`medsa --server http://HOST:8000`"+`, `+"`medsa segment --server URL ...`"+`, or MEDSA_SERVER=URL.

## Security
- Only preprocessed pixel tensors (3 x %d x %d floats per slice) leave the workstation: no DICOM header, patient
  name, ID, file name or study identifier is sent, and requests carry no request id.
- Token: medsa sends `+"`Authorization: Bearer $MEDSA_SERVER_TOKEN`"+` (never logged). Triton enforces it with
  `+"`--http-restricted-api=health,metadata,model-config,inference:Authorization=Bearer <token>`"+`
  (scripts/serve.sh --token-file F does this).
- TLS: medsa speaks https:// with the system roots plus MEDSA_SERVER_CA (a PEM file). Triton's HTTP endpoint
  has no TLS of its own: put it behind a TLS-terminating reverse proxy, and keep Triton on loopback.
`, man.Name, man.Version, opt.MaxBatch, opt.QueueDelayUS, strings.ToUpper(opt.Wire), man.DepthChunk, man.InputSize, man.InputSize)
	return b.String()
}
