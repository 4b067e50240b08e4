package load

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
)

const itkData = "insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/"

// TestNRRDAndMetaImage: NRRD (by its magic) and MetaImage (by its Key = Value
// header; the extension only a hint) are detected by content and open through
// Open; SaveVolume picks the format by extension and what it writes opens to the
// same voxels and grid as the NIfTI source.
func TestNRRDAndMetaImage(t *testing.T) {
	cases := []struct {
		file string
		want Format
	}{
		{itkData + "BrainProtonDensitySliceBorder20DirectionPlus30.nhdr", NRRD},
		{itkData + "BrainProtonDensitySliceBorder20DirectionPlus30.mhd", Meta},
		{itkData + "CorpusCallosumMeanShape.mha", Meta},
		{itkData + "BrainProtonDensity3Slices.mha", Meta}, // starts with NDims, no ObjectType
	}
	for _, c := range cases {
		p := data(t, c.file)
		if fm, err := Detect(p); err != nil || fm != c.want {
			t.Errorf("%s: %v %v, want %v", c.file, fm, err, c.want)
		}
		v, err := Open(p, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if err := v.Validate(); err != nil {
			t.Error(err)
		}
	}
	// a MetaImage with a misleading name is still found when it starts as MetaIO does
	b, _ := os.ReadFile(data(t, itkData+"CorpusCallosumMeanShape.mha"))
	p := filepath.Join(t.TempDir(), "image.dat")
	os.WriteFile(p, b, 0o644)
	if fm, _ := Detect(p); fm != Meta {
		t.Errorf("renamed .mha detected as %q", fm)
	}
	// plain text that merely has an '=' is not
	os.WriteFile(p, []byte("a = b\nc = d\n"), 0o644)
	if fm, err := Detect(p); err == nil {
		t.Errorf("text detected as %q", fm)
	}

	ref, err := nifti.Read(data(t, itkData+"KmeansTest_T1UCharRaw.nii.gz"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"t1.nrrd", "t1.mha", "t1.mhd", "t1.nii.gz"} {
		p := filepath.Join(dir, name)
		if err := SaveVolume(p, ref); err != nil {
			t.Fatal(err)
		}
		v, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if d := volume.SameGrid(ref.Size, ref.Affine, v.Size, v.Affine, 1e-9); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		for i := range ref.Data {
			if v.Data[i] != ref.Data[i] {
				t.Fatalf("%s: voxel %d = %v, want %v", name, i, v.Data[i], ref.Data[i])
			}
		}
	}
}
