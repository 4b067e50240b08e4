package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medsa/medsa/internal/orthanc"
	td "github.com/medsa/medsa/internal/testfiles"
	"github.com/medsa/medsa/io/dicomweb"
	"github.com/medsa/medsa/io/nifti"
)

// The CLI against a real Orthanc: search, open a series by URL, push an object.
func TestPACSCommands(t *testing.T) {
	src := td.Path(t, "derived/dicom/axial")
	s := orthanc.Start(t)
	if _, err := s.UploadDir(src); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MEDSA_CACHE_DIR", t.TempDir())
	t.Setenv("MEDSA_DICOMWEB_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	t.Setenv("MEDSA_DICOMWEB_TOKEN", "")
	t.Setenv("MEDSA_DICOMWEB_USER", orthanc.User)
	t.Setenv("MEDSA_DICOMWEB_PASSWORD", s.Password)

	var out bytes.Buffer
	if err := pacsSearch([]string{"--server", s.DICOMweb, "--modality", "CT", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var studies []dicomweb.Study
	if err := json.Unmarshal(out.Bytes(), &studies); err != nil || len(studies) != 1 {
		t.Fatalf("search: %v %s", err, out.String())
	}
	out.Reset()
	if err := pacsSearch([]string{"--server", s.DICOMweb, "--study", studies[0].UID}, &out); err != nil {
		t.Fatal(err)
	}
	// The table's URL column is a series URL that every image command takes.
	var url string
	for _, f := range strings.Fields(out.String()) {
		if strings.Contains(f, "/series/") {
			url = f
		}
	}
	if !dicomweb.IsSeriesURL(url) {
		t.Fatalf("no series URL in\n%s", out.String())
	}
	dir := t.TempDir()
	if err := runConvert([]string{url, filepath.Join(dir, "remote.nii.gz")}); err != nil {
		t.Fatal(err)
	}
	if err := runConvert([]string{src, filepath.Join(dir, "local.nii.gz")}); err != nil {
		t.Fatal(err)
	}
	a, err := nifti.Read(filepath.Join(dir, "remote.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := nifti.Read(filepath.Join(dir, "local.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != b.Size || a.Affine != b.Affine {
		t.Fatalf("remote %v %v, local %v %v", a.Size, a.Affine, b.Size, b.Affine)
	}
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			t.Fatalf("voxel %d: %v vs %v", i, a.Data[i], b.Data[i])
		}
	}
	// A wrong password is refused with a clear message that does not show it.
	t.Setenv("MEDSA_DICOMWEB_PASSWORD", "wrong-pw-123")
	err = runConvert([]string{url, filepath.Join(dir, "x.nii.gz")})
	if err == nil || !strings.Contains(err.Error(), "authentication failed") || strings.Contains(err.Error(), "wrong-pw-123") {
		t.Errorf("wrong password: %v", err)
	}
	t.Setenv("MEDSA_DICOMWEB_PASSWORD", s.Password)
	// push
	out.Reset()
	mr := td.Path(t, "python3-pydicom/usr/lib/python3/dist-packages/pydicom/data/test_files/MR_small.dcm")
	if err := pacsPush([]string{mr, "--server", s.DICOMweb}, &out); err != nil || !strings.Contains(out.String(), "stored 1 object") {
		t.Fatalf("push: %v %s", err, out.String())
	}
	if err := pacsPush([]string{filepath.Join(dir, "local.nii.gz"), "--server", s.DICOMweb}, &out); err == nil || !strings.Contains(err.Error(), "not a DICOM") {
		t.Errorf("pushing a NIfTI: %v", err)
	}
}
