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

// TestSegmentState refines a mask over three `medsa segment --state` calls
// and checks what the state keeps and what it refuses.
func TestSegmentState(t *testing.T) {
	img := filepath.Join(".cache/testdata/insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz")
	td.Need(t, img, "ITK T1 example")
	dir := t.TempDir()
	out := filepath.Join(dir, "seg.nii.gz")
	state := filepath.Join(dir, "state.json")
	base := []string{"--image", img, "--out", out, "--model", "testdata/tinymodel", "--device", "cpu", "--threads", "1",
		"--plane", "coronal", "--state", state}
	read := func() *segmentState {
		t.Helper()
		s, err := loadState(state)
		if err != nil || s == nil {
			t.Fatalf("state: %v %v", s, err)
		}
		return s
	}
	if err := runSegment(append(base, "--point", "64,60,30,+")); err != nil {
		t.Fatal(err)
	}
	s1 := read()
	if len(s1.Points) != 1 || s1.Slice != 30 || s1.Plane != "coronal" || s1.LowResSize == 0 {
		t.Fatalf("first state: %v on %s %d, L %d", s1.Points, s1.Plane, s1.Slice, s1.LowResSize)
	}
	l1, err := s1.logits(state, s1.LowResSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := runSegment(append(base, "--point", "50,62,30,-", "--box", "40,20,90,50,30")); err != nil {
		t.Fatal(err)
	}
	s2 := read()
	if len(s2.Points) != 2 || s2.Points[0] != "64,60,30,+" || s2.Box != "40,20,90,50,30" {
		t.Fatalf("second state: %v, box %q", s2.Points, s2.Box)
	}
	l2, _ := s2.logits(state, s2.LowResSize)
	same := true
	for i := range l1 {
		if l1[i] != l2[i] {
			same = false
			break
		}
	}
	if same {
		t.Error("a corrective click left the logits unchanged")
	}
	// Another slice, another image, another model, a broken file: refused, the file kept.
	for name, args := range map[string][]string{
		"other slice": append(base, "--point", "64,60,31,+"),
		"other plane": append(append([]string{}, base...), "--plane", "axial", "--point", "64,60,30,+"),
	} {
		if err := runSegment(args); err == nil || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	bad := *s2
	bad.Model = "someone-else@9"
	if err := saveState(state, &bad); err != nil {
		t.Fatal(err)
	}
	if err := runSegment(append(base, "--point", "64,61,30,+")); err == nil || !strings.Contains(err.Error(), "someone-else@9") {
		t.Errorf("model mismatch: err = %v", err)
	}
	if err := os.WriteFile(state, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runSegment(append(base, "--point", "64,61,30,+")); err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("corrupt state: err = %v", err)
	}
}
