package mask

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// Issue 14, 7: a save whose sidecar cannot be written (its path is a folder)
// fails without replacing the mask, and leaves no temporary file.
func TestSaveBothOrNeither(t *testing.T) {
	v := &volume.Volume{Size: [3]int{6, 5, 1}, Channels: 1, Data: make([]float32, 30), Affine: volume.Identity()}
	for _, name := range []string{"seg.nii.gz", "seg.nii", "seg.png", "seg.nrrd", "seg.mha"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, name)
			old := volume.NewLabelMap(v)
			old.Data[3] = 1
			if err := Save(p, old, nil, nil); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(p)
			os.Remove(SidecarPath(p))
			os.Mkdir(SidecarPath(p), 0o755)
			next := volume.NewLabelMap(v)
			next.Data[7] = 2
			err := Save(p, next, nil, nil)
			if err == nil || !strings.Contains(err.Error(), SidecarPath(p)) {
				t.Fatalf("save with a folder as sidecar: %v", err)
			}
			if after, _ := os.ReadFile(p); !bytes.Equal(after, before) {
				t.Error("the mask was replaced though its sidecar could not be written")
			}
			es, _ := os.ReadDir(dir)
			for _, e := range es {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("left %s", e.Name())
				}
			}
		})
	}
}

// A PNG mask is checked against the memory budget before it is decoded.
func TestLoadPNGMaskBudget(t *testing.T) {
	v := &volume.Volume{Size: [3]int{1000, 1000, 1}, Channels: 1, Data: make([]float32, 1e6), Affine: volume.Identity()}
	p := filepath.Join(t.TempDir(), "big.png")
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 1000, 1000)))
	os.WriteFile(p, b.Bytes(), 0o644)
	defer volume.SetMemoryLimit(2e6, "test")()
	_, _, err := Load(p, v)
	if err == nil || !strings.Contains(err.Error(), "big.png") || !strings.Contains(err.Error(), "needs 3 MB of memory; the limit is 2 MB") {
		t.Fatalf("got %v", err)
	}
}
