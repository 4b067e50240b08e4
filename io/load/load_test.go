package load

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
)

func data(t testing.TB, rel string) string { return td.Path(t, rel) }

// renamed copies src to a temp file with a misleading name, so only content can tell.
func renamed(t *testing.T, src, name string) string {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t *testing.T, b []byte, name string) string {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	p := filepath.Join(t.TempDir(), name)
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

const (
	pyd  = "python3-pydicom/usr/lib/python3/dist-packages/pydicom/data/test_files/"
	nib  = "python3-nibabel/usr/lib/python3/dist-packages/nibabel/tests/data/"
	goni = "github.com/okieraised/gonii/test_data/"
)

func TestDetectAndOpenByContent(t *testing.T) {
	sample := filepath.Join(td.Root(t), "assets", "sample")
	cases := []struct {
		name   string
		path   func(t *testing.T) string
		want   Format
		size   [3]int // zero: not opened
		chans  int
		errHas string
	}{
		{"dicom file named .png", func(t *testing.T) string { return renamed(t, data(t, pyd+"MR_small.dcm"), "scan.png") }, DICOM, [3]int{64, 64, 1}, 1, ""},
		{"dicom folder", func(t *testing.T) string { return data(t, "derived/dicom/axial8") }, DICOM, [3]int{256, 256, 24}, 1, ""},
		{"dicom, no extension", func(t *testing.T) string { return renamed(t, data(t, pyd+"CT_small.dcm"), "IM0001") }, DICOM, [3]int{128, 128, 1}, 1, ""},
		{"dicom without preamble", func(t *testing.T) string { return data(t, pyd+"ExplVR_LitEndNoMeta.dcm") }, DICOM, [3]int{}, 0, ""},
		{"nifti-1 gz named .dat", func(t *testing.T) string { return renamed(t, filepath.Join(sample, "brain_t1.nii.gz"), "brain.dat") }, NIfTI, [3]int{128, 128, 62}, 1, ""},
		{"nifti-1 plain", func(t *testing.T) string { return data(t, nib+"anatomical.nii") }, NIfTI, [3]int{}, 1, ""},
		{"nifti-2 gz", func(t *testing.T) string { return data(t, goni+"nii2_LR.nii.gz") }, NIfTI, [3]int{}, 1, ""},
		{"nifti-2 header", func(t *testing.T) string { return data(t, nib+"nifti2.hdr") }, NIfTI, [3]int{}, 0, ""},
		{"analyze big-endian header", func(t *testing.T) string { return data(t, nib+"analyze.hdr") }, Analyze, [3]int{}, 0, ""},
		{"jpeg named .nii", func(t *testing.T) string { return renamed(t, filepath.Join(sample, "fundus.jpg"), "x.nii") }, Raster, [3]int{1411, 1411, 1}, 3, ""},
		{"png", func(t *testing.T) string {
			return data(t, "insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/BrainProtonDensitySlice.png")
		}, Raster, [3]int{}, 1, ""},
		{"text", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "notes.nii")
			os.WriteFile(p, []byte("just some text, not an image at all"), 0o644)
			return p
		}, Unknown, [3]int{}, 0, "not a DICOM"},
		{"gzip of text", func(t *testing.T) string { return gz(t, []byte(strings.Repeat("text ", 200)), "x.nii.gz") }, Unknown, [3]int{}, 0, "no NIfTI"},
		{"empty folder", func(t *testing.T) string { return t.TempDir() }, DICOM, [3]int{}, 0, "no files"},
		{"missing", func(t *testing.T) string { return "/nonexistent/medsa" }, Unknown, [3]int{}, 0, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path(t)
			fm, err := Detect(p)
			if fm != c.want {
				t.Fatalf("Detect = %q (%v), want %q", fm, err, c.want)
			}
			if c.errHas != "" {
				_, err := Open(p, Options{})
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("Open error %v, want %q", err, c.errHas)
				}
				return
			}
			if c.chans == 0 {
				return
			}
			v, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(); err != nil {
				t.Fatal(err)
			}
			if v.Channels != c.chans || (c.size != [3]int{} && v.Size != c.size) {
				t.Errorf("size %v x%d, want %v x%d", v.Size, v.Channels, c.size, c.chans)
			}
		})
	}
}

func TestSeveralSeries(t *testing.T) {
	dir := t.TempDir()
	for i, src := range []string{data(t, pyd+"MR_small.dcm"), data(t, pyd+"CT_small.dcm")} {
		b, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(dir, string(rune('a'+i))), b, 0o644)
	}
	_, err := Open(dir, Options{})
	list, ok := MultipleSeries(err)
	if !ok || len(list) != 2 {
		t.Fatalf("want a choice between 2 series, got %v", err)
	}
	v, series, err := OpenSeries(dir, Options{SeriesUID: list[1].UID})
	if err != nil || len(series) != 2 || v.Modality != list[1].Modality {
		t.Fatalf("OpenSeries: %v, %d series, modality %v want %s", err, len(series), v, list[1].Modality)
	}
	ls, err := ListSeries(dir)
	if err != nil || len(ls) != 2 {
		t.Fatalf("ListSeries: %v %v", ls, err)
	}
}
