package nifti

import (
	"encoding/binary"
	"testing"
)

// FuzzRead feeds arbitrary bytes (plain or gzipped) to the reader: it must never
// panic, and whatever it accepts must be a valid volume. Seeds: small real headers
// and truncations in testdata/fuzz/FuzzRead, plus a synthetic file built here.
func FuzzRead(f *testing.F) {
	good := small(f)
	f.Add(good)
	f.Add(gz(good))
	f.Add(good[:348])
	// issue 14: a flipped bit under a stored gzip block and in its trailer, bytes
	// after the gzip data, dim[4] claiming 32767 volumes for one, and a header
	// claiming 32767 x 32767 x 2 voxels from a few bytes.
	z := storedGz(good)
	for _, off := range []int{len(z) - 20, len(z) - 6, len(z) - 2} {
		b := append([]byte(nil), z...)
		b[off] ^= 0x10
		f.Add(b)
	}
	f.Add(append(append([]byte(nil), z...), "junk"...))
	lie := append([]byte(nil), good...)
	binary.LittleEndian.PutUint16(lie[40:], 4)
	binary.LittleEndian.PutUint16(lie[48:], 32767)
	f.Add(lie)
	f.Add(gz(lie))
	f.Add(gz(withDims(good, 32767, 32767, 2)))
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
