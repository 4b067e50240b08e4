package mask

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// TestSaveLoadNRRDAndMetaImage: a mask saved as .nrrd, .seg.nrrd, .mha and .mhd
// loads back for editing on the same image with the same labels; the .seg.nrrd
// carries the label names and colours as Slicer segments.
func TestSaveLoadNRRDAndMetaImage(t *testing.T) {
	v, _ := t1AndSeg(t)
	m := volume.NewLabelMap(v)
	for i, x := range v.Data {
		if x > 120 {
			m.Data[i] = 2
		} else if x > 60 {
			m.Data[i] = 1
		}
	}
	labels := []volume.Label{{Value: 1, Name: "grey", Color: [3]uint8{10, 20, 30}}, {Value: 2, Name: "white", Color: [3]uint8{200, 100, 0}}}
	dir := t.TempDir()
	for _, name := range []string{"m.nrrd", "m.seg.nrrd", "m.mha", "m.mhd"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := Save(p, m, labels, map[string]string{"tool": "test"}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(SidecarPath(p)); err != nil || SidecarPath(p) != filepath.Join(dir, "m.json") {
				t.Errorf("sidecar %s: %v", SidecarPath(p), err)
			}
			got, ls, err := Load(p, v)
			if err != nil {
				t.Fatal(err)
			}
			for i := range m.Data {
				if got.Data[i] != m.Data[i] {
					t.Fatalf("voxel %d: %d, saved %d", i, got.Data[i], m.Data[i])
				}
			}
			if len(ls) != 2 || ls[0] != labels[0] || ls[1] != labels[1] {
				t.Errorf("labels %+v", ls)
			}
		})
	}
	// Slicer renamed a segment: the .seg.nrrd header wins over the stale sidecar.
	p := filepath.Join(dir, "m.seg.nrrd")
	os.Remove(SidecarPath(p))
	_, ls, err := Load(p, v)
	if err != nil || len(ls) != 2 || ls[1].Name != "white" || ls[1].Color != [3]uint8{200, 100, 0} {
		t.Errorf("labels from the .seg.nrrd alone: %+v %v", ls, err)
	}
	if _, _, err := Load(filepath.Join(dir, "m.mha"), &volume.Volume{Size: [3]int{2, 2, 2}, Affine: volume.Identity()}); err == nil {
		t.Error("a mask on another grid was accepted")
	}
}

// TestLoadCroppedSegNRRD: Slicer can save a segmentation cropped to its
// segments' extent; it is placed back on the image's grid.
func TestLoadCroppedSegNRRD(t *testing.T) {
	v := &volume.Volume{Size: [3]int{4, 3, 2}, Channels: 1, Data: make([]float32, 24),
		Affine: volume.Affine{{-1, 0, 0, 10}, {0, -2, 0, 20}, {0, 0, 3, 30}, {0, 0, 0, 1}}}
	// a 2x1x1 box starting at voxel (1, 2, 1): world (9, 16, 33) RAS = (-9, -16, 33) LPS
	hdr := "NRRD0004\ntype: unsigned char\ndimension: 3\nspace: left-posterior-superior\nsizes: 2 1 1\n" +
		"space directions: (1,0,0) (0,2,0) (0,0,3)\nkinds: domain domain domain\nencoding: raw\nspace origin: (-9,-16,33)\n" +
		"Segment0_ID:=Segment_1\nSegment0_Name:=lesion\nSegment0_Color:=1 0.5 0\nSegment0_LabelValue:=5\nSegment0_Layer:=0\n" +
		"Segmentation_ReferenceImageExtentOffset:=1 2 1\n\n"
	p := filepath.Join(t.TempDir(), "crop.seg.nrrd")
	os.WriteFile(p, append([]byte(hdr), 5, 0), 0o644)
	m, ls, err := Load(p, v)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, l := range m.Data {
		if l != 0 {
			got = append(got, fmt.Sprintf("%d:%d", i, l))
		}
	}
	if want := fmt.Sprint(1 + 4*(2+3*1)); strings.Join(got, ",") != want+":5" {
		t.Errorf("labels at %v, want %s:5", got, want)
	}
	if len(ls) != 1 || ls[0] != (volume.Label{Value: 5, Name: "lesion", Color: [3]uint8{255, 128, 0}}) {
		t.Errorf("labels %+v", ls)
	}
}
