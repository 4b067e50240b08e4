package dicomseg

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadSEG feeds arbitrary bytes to the reader and places what parses on two
// synthetic sources: errors are fine, panics and unbounded allocation are not.
// It calls parse, not Parse, so that a panic is not turned into an error.
func FuzzReadSEG(f *testing.F) {
	for _, g := range []geom{axialGeom, oddGeom, obliqueGeom} {
		var b bytes.Buffer
		if err := Encode(&b, labelsOf(g, 1, 2), g.refs(), Options{Model: "m@1"}); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
		f.Add(b.Bytes()[:b.Len()/2])
	}
	for _, n := range []string{"small_explicit_le.dcm", "small_implicit_le.dcm", "small_explicit_be.dcm", "small_deflated.dcm"} {
		if b, err := os.ReadFile(filepath.Join("testdata", n)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add(append(make([]byte, 128), "DICM"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parse("fuzz", data)
		if err != nil {
			return
		}
		// Every frame is backed by input bytes (bounded allocation).
		if len(s.Frames) > len(data) || len(s.Segments) > len(data) {
			t.Fatalf("%d frames, %d segments from %d bytes", len(s.Frames), len(s.Segments), len(data))
		}
		for _, g := range []geom{axialGeom, oddGeom} {
			if res, err := s.Place(g.refs()); err == nil && len(res.LabelMap.Data) != g.nx*g.ny*g.nz {
				t.Fatalf("label map of %d voxels", len(res.LabelMap.Data))
			}
		}
	})
}
