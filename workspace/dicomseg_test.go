package workspace

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsa/medsa/interaction"
	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/dicomseg"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
)

// Save as DICOM-SEG and Open mask on a .dcm, without a window: a label from
// the model is SEMIAUTOMATIC with its name, a brushed one MANUAL; the mask and
// the names come back on the open image.
func TestSaveAndOpenDICOMSEG(t *testing.T) {
	src := td.Path(t, "derived/dicom/oblique")
	vol, err := load.Open(src, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lm := volume.NewLabelMap(vol)
	for i := range lm.Data {
		switch {
		case i%7 == 0:
			lm.Data[i] = 1
		case i%11 == 0:
			lm.Data[i] = 2
		}
	}
	table := []volume.Label{{Value: 1, Name: "tumour", Color: [3]uint8{255, 0, 0}}, {Value: 2, Name: "brushed", Color: [3]uint8{0, 255, 0}}}
	meta := &Meta{Tool: "medsa", Source: src, Model: "medsa-tiny@2.0.0", Masks: []interaction.MaskRecord{{Label: 1, Model: "medsa-tiny@2.0.0"}}}
	out := filepath.Join(t.TempDir(), "seg.dcm")
	if err := SaveSEG(out, src, vol, lm, table, meta); err != nil {
		t.Fatal(err)
	}
	got, labels, recs, err := LoadMask(out, vol)
	if err != nil {
		t.Fatal(err)
	}
	for i := range lm.Data {
		if got.Data[i] != lm.Data[i] {
			t.Fatalf("voxel %d: %d, want %d", i, got.Data[i], lm.Data[i])
		}
	}
	if len(labels) != 2 || labels[0].Name != "tumour" || labels[1].Name != "brushed" || recs != nil {
		t.Fatalf("labels %+v", labels)
	}
	s, err := dicomseg.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if s.Segments[0].Algorithm != dicomseg.Semiautomatic || s.Segments[0].AlgorithmName != "medsa-tiny@2.0.0" || s.Segments[1].Algorithm != dicomseg.Manual {
		t.Fatalf("segments %+v", s.Segments)
	}
	// Over another image it is refused.
	other, err := load.Open(td.Path(t, "derived/dicom/axial"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := LoadMask(out, other); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("got %v", err)
	}
}
