package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/medsa/medsa/model"
)

func init() { commands["serve-config"] = runServeConfig }

const usageServeConfig = `usage: medsa serve-config [--model DIR] [--wire fp16|fp32] [--instances N] [--max-batch N]
       [--queue-delay-us N] [--threads N] [--no-3d] [--no-batching] OUTDIR
  writes a Triton model repository for the bundled model's encoders into OUTDIR (config.pbtxt per encoder with
  GPU, CPU and Python-backend variants under configs/, dynamic batching, the ONNX files, README.md on starting
  it). medsa --server URL then encodes there; the model's identity (name, version, encoder sha256) is checked.`

func runServeConfig(args []string) error {
	fs := flag.NewFlagSet("serve-config", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	modelDir := fs.String("model", "", "model directory")
	var opt model.ServeConfigOptions
	fs.StringVar(&opt.Wire, "wire", "fp32", "embedding datatype on the wire (Python backend): fp32 (masks identical to local) or fp16 (half the bytes)")
	fs.IntVar(&opt.Instances, "instances", 1, "model instances per device")
	fs.IntVar(&opt.MaxBatch, "max-batch", 8, "dynamic batching: largest batch of the 2D encoder")
	fs.IntVar(&opt.QueueDelayUS, "queue-delay-us", 2000, "dynamic batching: max queue delay")
	fs.IntVar(&opt.Threads, "threads", 0, "ONNX Runtime intra-op threads per instance (0 = all cores)")
	fs.BoolVar(&opt.No3D, "no-3d", false, "leave out encoder3d")
	fs.BoolVar(&opt.NoBatching, "no-batching", false, "no dynamic batching (Python backend; for comparing)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%v\n%s", err, usageServeConfig)
	}
	if fs.NArg() != 1 {
		return errors.New(usageServeConfig)
	}
	dir, err := model.FindModelDir(*modelDir)
	if err != nil {
		return err
	}
	man, err := model.LoadManifest(dir)
	if err != nil {
		return err
	}
	files, err := model.WriteServeConfig(man, fs.Arg(0), opt)
	if err != nil {
		return err
	}
	fmt.Printf("serve-config: %s: %d files for %s (see %s/README.md)\n", fs.Arg(0), len(files), man.ID(), fs.Arg(0))
	return nil
}
