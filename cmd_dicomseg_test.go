package main

import (
	"path/filepath"
	"strings"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/dicomseg"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
)

// `segment --out X.dcm` writes a DICOM-SEG that reads back onto the source,
// with the model recorded; a non-DICOM source is refused before any work.
func TestSegmentDICOMSEGOutput(t *testing.T) {
	src := td.Path(t, "derived/dicom/coronal")
	v, err := load.Open(src, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lm := volume.NewLabelMap(v)
	for i := 0; i < len(lm.Data); i += 5 {
		lm.Data[i] = 1
	}
	out := filepath.Join(t.TempDir(), "seg.dcm")
	meta := map[string]any{"tool": "medsa segment", "model": "medsa-tiny@2.0.0"}
	if err := saveDICOMSEG(out, src, "", v, lm, []volume.Label{{Value: 1, Name: "segment", Color: [3]uint8{255, 0, 0}}}, meta); err != nil {
		t.Fatal(err)
	}
	refs, err := dicomseg.SourceFor(src, "", v)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dicomseg.Read(out, refs)
	if err != nil {
		t.Fatal(err)
	}
	if res.LabelMap.Count(1) != lm.Count(1) || res.Segments[0].Algorithm != dicomseg.Semiautomatic || res.Segments[0].AlgorithmName != "medsa-tiny@2.0.0" {
		t.Fatalf("read back %d voxels (wrote %d), segment %+v", res.LabelMap.Count(1), lm.Count(1), res.Segments[0])
	}
	png := td.Path(t, "python3-skimage/usr/lib/python3/dist-packages/skimage/data/microaneurysms.png")
	if err := checkDICOMSEGSource("x.dcm", png); err == nil || !strings.Contains(err.Error(), "needs a DICOM source") {
		t.Fatalf("got %v", err)
	}
	if !isDICOMSEG("A.DCM") || isDICOMSEG("a.nii.gz") {
		t.Fatal("isDICOMSEG")
	}
}
