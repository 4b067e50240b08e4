package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/volume"
)

func TestSlicePrompt(t *testing.T) {
	// A 20 x 10 x 6 volume stored axially: axial slices are k, coronal j, sagittal i.
	v := &volume.Volume{Size: [3]int{20, 10, 6}, Channels: 1, Data: make([]float32, 1200), Affine: volume.Identity()}
	cases := []struct {
		name    string
		plane   volume.Plane
		points  []string
		box     string
		idx     int
		wantErr string
	}{
		{"axial point", volume.Axial, []string{"3,4,5,+"}, "", 5, ""},
		{"coronal point", volume.Coronal, []string{"3,4,5,-"}, "", 4, ""},
		{"sagittal point", volume.Sagittal, []string{"3,4,5,+"}, "", 3, ""},
		{"box", volume.Axial, nil, "1,1,8,9,2", 2, ""},
		{"box + point", volume.Axial, []string{"3,4,2,+"}, "1,1,8,9,2", 2, ""},
		{"no prompt", volume.Axial, nil, "", 0, "no prompt"},
		{"outside", volume.Axial, []string{"20,4,5,+"}, "", 0, "outside the image"},
		{"two slices", volume.Axial, []string{"3,4,5,+", "3,4,4,+"}, "", 0, "one slice"},
		{"bad sign", volume.Axial, []string{"3,4,5,x"}, "", 0, "want i,j,k"},
		{"bad number", volume.Axial, []string{"3,a,5,+"}, "", 0, "--point"},
		{"box corner outside", volume.Axial, nil, "1,1,20,9,2", 0, "outside"},
		{"box slice outside", volume.Axial, nil, "1,1,8,9,6", 0, "outside"},
		{"box fields", volume.Axial, nil, "1,1,8,9", 0, "want i0,j0,i1,j1,k"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idx, p, err := slicePrompt(v, c.plane, c.points, c.box)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if idx != c.idx {
				t.Errorf("slice %d, want %d", idx, c.idx)
			}
			if len(p.Points) != len(c.points) || (c.box != "") != (p.Box != nil) {
				t.Errorf("prompt %+v", p)
			}
		})
	}
	// The coronal point (3,4,5) lies at u = i = 3, v = k = 5 of coronal slice j = 4.
	_, p, _ := slicePrompt(v, volume.Coronal, []string{"3,4,5,+"}, "")
	if p.Points[0].U != 3 || p.Points[0].V != 5 || !p.Points[0].Positive {
		t.Errorf("coronal point mapped to %+v", p.Points[0])
	}
}

// TestSegmentCommand runs `medsa segment` on the real ITK T1 with the tiny
// model and reads the label map back on the source grid.
func TestSegmentCommand(t *testing.T) {
	img := filepath.Join(".cache/testdata/insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz")
	td.Need(t, img, "ITK T1 example")
	out := filepath.Join(t.TempDir(), "seg.nii.gz")
	args := []string{"--image", img, "--out", out, "--model", "testdata/tinymodel", "--device", "cpu", "--threads", "1",
		"--plane", "coronal", "--box", "40,40,90,80,30", "--point", "64,60,30,+", "--propagate"}
	if err := runSegment(args); err != nil {
		t.Fatal(err)
	}
	v, err := load.Open(img, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lm, _, err := mask.Load(out, v)
	if err != nil {
		t.Fatal(err)
	}
	n := lm.Count(1)
	slices := map[int]bool{}
	for k := 0; k < lm.Size[2]; k++ {
		for j := 0; j < lm.Size[1]; j++ {
			for i := 0; i < lm.Size[0]; i++ {
				if lm.Data[lm.Index(i, j, k)] != 0 {
					slices[k] = true
				}
			}
		}
	}
	if n == 0 || len(slices) < 10 || !slices[30] {
		t.Errorf("%d voxels on %d coronal slices", n, len(slices))
	}
	for _, bad := range [][]string{
		{"--image", img, "--out", out, "--model", "testdata/tinymodel"},                                             // no prompt
		{"--image", img, "--out", out, "--model", "testdata/tinymodel", "--point", "200,1,1,+"},                     // outside
		{"--image", img, "--out", "x.png", "--model", "testdata/tinymodel", "--point", "2,1,1,+"},                   // PNG of 3D
		{"--image", img, "--model", "testdata/tinymodel", "--point", "2,1,1,+"},                                     // no --out
		{"--image", img, "--out", out, "--model", "testdata/tinymodel", "--point", "2,1,1,+", "--plane", "oblique"}, // plane
	} {
		if err := runSegment(bad); err == nil {
			t.Errorf("segment %v succeeded", bad)
		}
	}
}

func TestBenchCommand(t *testing.T) {
	stdout := os.Stdout
	r, w, _ := os.Pipe()
	os.Stdout = w
	err := runBench([]string{"--model", "testdata/tinymodel", "--device", "cpu", "--n", "3", "--json"})
	w.Close()
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"provider", "model", "encode_ms_p50", "encode_ms_p95", "decode_ms_p50", "decode_ms_p95",
		"click_to_mask_ms_p50", "click_to_mask_ms_p95", "first_mask_ms"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("bench --json lacks %q", k)
		}
	}
	if rep["provider"] != "CPU" || rep["model"] != "medsa-testtiny@0.0.1" {
		t.Errorf("report %v", rep)
	}
	if err := runBench([]string{"--model", "testdata/tinymodel", "--n", "0"}); err == nil {
		t.Error("--n 0 accepted")
	}
}
