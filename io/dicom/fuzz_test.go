package dicom

import "testing"

// FuzzRead feeds arbitrary bytes to the reader: it must return a volume that
// validates or an error naming the input, never panic, and never hold more
// voxels than the bytes can justify.
func FuzzRead(f *testing.F) {
	f.Add([]byte("DICM"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadBytes("fuzz.dcm", data)
		if err != nil {
			if len(err.Error()) < len("fuzz.dcm") || err.Error()[:8] != "fuzz.dcm" {
				t.Fatalf("error does not name the input: %v", err)
			}
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("accepted an invalid volume: %v", err)
		}
		if int64(len(v.Data)) > int64(len(data))*1024*3+1024 {
			t.Fatalf("%d values from %d bytes", len(v.Data), len(data))
		}
	})
}
