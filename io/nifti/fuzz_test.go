package nifti

import "testing"

// FuzzRead feeds arbitrary bytes (plain or gzipped) to the reader: it must never
// panic, and whatever it accepts must be a valid volume. Seeds: small real headers
// and truncations in testdata/fuzz/FuzzRead, plus a synthetic file built here.
func FuzzRead(f *testing.F) {
	good := small(f)
	f.Add(good)
	f.Add(gz(good))
	f.Add(good[:348])
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadBytes("fuzz.nii", data)
		if err != nil {
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("accepted an invalid volume: %v", err)
		}
	})
}
