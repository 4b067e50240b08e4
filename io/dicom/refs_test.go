package dicom

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ReadRefs gives, per slice of the volume ReadFiles returns, the instance (and
// frame) it came from, with positions that the volume's affine reproduces.
func TestReadRefs(t *testing.T) {
	cases := []struct {
		rel   string
		multi bool
	}{
		{derived + "axial", false},
		{derived + "coronal", false},
		{derived + "oblique", false},
		{derived + "multi/enhanced_ct.dcm", true},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.rel), func(t *testing.T) {
			p := data(t, c.rel)
			v := mustRead(t, p)
			r, err := ReadRefs([]string{p}, "")
			if err != nil {
				t.Fatal(err)
			}
			if r.Size != v.Size || r.Affine != v.Affine || r.Columns != v.Size[0] || r.Rows != v.Size[1] || len(r.Slices) != v.Size[2] {
				t.Fatalf("refs %v %v, volume %v %v", r.Size, r.Affine, v.Size, v.Affine)
			}
			seen := map[[2]any]bool{}
			for k, s := range r.Slices {
				// RAS of voxel (0, 0, k) is the slice's LPS position with x and y negated.
				want := [3]float64{-s.Position[0], -s.Position[1], s.Position[2]}
				for c := 0; c < 3; c++ {
					if got := v.Affine[c][2]*float64(k) + v.Affine[c][3]; math.Abs(got-want[c]) > 1e-3 {
						t.Fatalf("slice %d: affine gives %v, position %v", k, got, want)
					}
				}
				key := [2]any{s.SOPInstanceUID, s.Frame}
				if s.SOPInstanceUID == "" || seen[key] || !s.HasOrientation || !s.HasPosition || s.PixelSpacing[0] <= 0 {
					t.Fatalf("slice %d: %+v", k, s)
				}
				seen[key] = true
				if (s.Frame > 0) != c.multi {
					t.Fatalf("slice %d: frame %d", k, s.Frame)
				}
			}
			st := r.Study
			if st.PatientName != "Cranium^Test" || st.PatientID != "INV0051" || st.StudyDate != "20120914" || st.StudyInstanceUID == "" ||
				r.FrameOfReferenceUID == "" || r.SeriesInstanceUID == "" || st.SpecificCharacterSet != "ISO_IR 100" {
				t.Fatalf("study %+v, series %s, frame of reference %q", st, r.SeriesInstanceUID, r.FrameOfReferenceUID)
			}
		})
	}
}

func TestReadRefsErrors(t *testing.T) {
	if _, err := ReadRefs([]string{filepath.Join(t.TempDir(), "none")}, ""); err == nil {
		t.Fatal("no error for a missing path")
	}
	src := data(t, derived+"axial8")
	dir := copyFiles(t, src, []string{"IM0001.dcm", "IM0002.dcm"})
	b, _ := os.ReadFile(data(t, pyd+"MR_small.dcm"))
	os.WriteFile(filepath.Join(dir, "mr.dcm"), b, 0o644)
	var m *MultipleSeriesError
	if _, err := ReadRefs([]string{dir}, ""); !errors.As(err, &m) {
		t.Fatalf("want a MultipleSeriesError, got %v", err)
	}
	if _, err := ReadRefs([]string{dir}, "1.2.3.4"); err == nil || !strings.Contains(err.Error(), "no series 1.2.3.4") {
		t.Fatalf("got %v", err)
	}
}
