package model

import (
	"context"
	"path/filepath"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
)

// TestWindowRobustness: the bundled model's mask must not hinge on the window.
// The same prompts on a real MR slice under the default window and under
// windows the app produces (width x0.7 and x1.3, centre moved by 15 % of the
// width) give masks that agree with the default one (Dice >= 0.8).
func TestWindowRobustness(t *testing.T) {
	dir := bundledDir(t)
	img := filepath.Join(td.Root(t), ".cache/testdata/insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz")
	td.Need(t, img, "ITK T1 example")
	v, err := nifti.Read(img)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(dir, Options{Device: "cpu", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	w0 := e.Manifest().DefaultWindow(v)
	prompts := map[string]Prompt{
		"click": {Points: []Point{{U: 60, V: 45, Positive: true}}},
		"box":   {Box: &Box{U0: 29, V0: 25, U1: 93, V1: 60}},
	}
	for name, p := range prompts {
		ref := SliceRef{Vol: v, VolumeID: "t1", Plane: volume.Coronal, Index: 30, Window: w0}
		base, err := e.Segment(context.Background(), ref, p)
		if err != nil {
			t.Fatal(err)
		}
		if base.Areas[base.Best] == 0 {
			t.Fatalf("%s: empty mask under the default window", name)
		}
		for _, wv := range []struct {
			name          string
			dc, widthMult float64
		}{{"width x0.7", 0, 0.7}, {"width x1.3", 0, 1.3}, {"centre -15%", -0.15, 1}, {"centre +15%", 0.15, 1}} {
			r := ref
			r.Window = [2]float64{w0[0] + wv.dc*w0[1], w0[1] * wv.widthMult}
			res, err := e.Segment(context.Background(), r, p)
			if err != nil {
				t.Fatal(err)
			}
			d := dice(res.Masks[res.Best], base.Masks[base.Best])
			t.Logf("%s, %s: Dice %.3f against the default window (%d vs %d px)", name, wv.name, d, res.Areas[res.Best], base.Areas[base.Best])
			if d < 0.8 {
				t.Errorf("%s, %s: mask changed with the window, Dice %.3f < 0.8", name, wv.name, d)
			}
		}
	}
}
