package main

import (
	"path/filepath"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/workspace"
)

// TestSegmentSidecarReopensInGUI: a mask made by `medsa segment --propagate`
// carries the GUI's sidecar records (how each mask was made) and reopens with them.
func TestSegmentSidecarReopensInGUI(t *testing.T) {
	img := filepath.Join(".cache/testdata/insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz")
	td.Need(t, img, "ITK T1 example")
	out := filepath.Join(t.TempDir(), "seg.nii.gz")
	args := []string{"--image", img, "--out", out, "--model", "testdata/tinymodel", "--device", "cpu", "--threads", "1",
		"--plane", "coronal", "--point", "64,60,30,+", "--propagate"}
	if err := runSegment(args); err != nil {
		t.Fatal(err)
	}
	v, err := load.Open(img, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// As the GUI's Open mask reads it.
	lm, _, recs, err := workspace.LoadMask(out, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Plane != "coronal" || recs[0].Slice != 30 || len(recs[0].Points) != 1 ||
		recs[1].ToSlice == nil || recs[0].Model == "" || recs[0].Voxels+recs[1].Voxels != lm.Count(1) {
		t.Errorf("records of the CLI's mask (%d voxels): %+v", lm.Count(1), recs)
	}
	m, err := workspace.ReadMeta(out)
	if err != nil || m.Tool != "medsa segment" || m.Segment == nil || !m.Segment.Propagate || len(m.Segment.Scores) == 0 {
		t.Errorf("meta %+v, %v", m, err)
	}
}
