package nifti

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/medsa/medsa/io/volume"
)

// zeroBomb is a valid int16 NIfTI-1 .nii.gz of nx x ny x nz voxels, all zero: a
// file of about 1/1000 of the volume's raw size (issue 14, 5b).
func zeroBomb(t testing.TB, nx, ny, nz int) []byte {
	t.Helper()
	hdr := withDims(small(t), nx, ny, nz)[:352]
	var out bytes.Buffer
	w, _ := kgzip.NewWriterLevel(&out, kgzip.BestSpeed)
	w.Write(hdr)
	zeros := make([]byte, 1<<20)
	for left := int64(nx) * int64(ny) * int64(nz) * 2; left > 0; left -= int64(len(zeros)) {
		w.Write(zeros[:min(left, int64(len(zeros)))])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// withDims sets dim[1..3] of a NIfTI-1 header (a copy).
func withDims(b []byte, nx, ny, nz int) []byte {
	b = append([]byte(nil), b...)
	for k, d := range []int{nx, ny, nz} {
		binary.LittleEndian.PutUint16(b[42+2*k:], uint16(d))
	}
	return b
}

// allocDuring returns the bytes allocated while f runs (an upper bound on its peak).
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A successful load of a highly compressed volume peaks at about the float32
// volume it returns (it used to grow the array by doubling: 1.55x allocated here,
// 2.4x peak RSS on 2000x2000x128), and one over the memory budget is refused,
// with the size it needs, before anything large is allocated.
func TestZeroBombMemory(t *testing.T) {
	if raceOn {
		t.Skip("256 MB volume: checked without -race")
	}
	const nx, ny, nz = 1024, 1024, 64 // 128 MB raw, 256 MB as float32, a 125 KB file
	data := zeroBomb(t, nx, ny, nz)
	volBytes := uint64(nx * ny * nz * 4)

	var v *volume.Volume
	var err error
	grew := allocDuring(func() { v, err = ReadBytes("zeros.nii.gz", data) })
	if err != nil {
		t.Fatal(err)
	}
	if v.NumVoxels() != nx*ny*nz {
		t.Fatalf("size %v", v.Size)
	}
	if ratio := float64(grew) / float64(volBytes); ratio > 1.3 {
		t.Errorf("a %d KB file: allocated %d MB for a %d MB volume (%.2fx, want <= 1.3x)", len(data)>>10, grew>>20, volBytes>>20, ratio)
	}
	v = nil

	defer volume.SetMemoryLimit(100e6, "test")()
	grew = allocDuring(func() { _, err = ReadBytes("zeros.nii.gz", data) })
	if err == nil || !strings.Contains(err.Error(), "zeros.nii.gz") || !strings.Contains(err.Error(), "needs 269 MB of memory; the limit is 100 MB") {
		t.Fatalf("over the budget: %v", err)
	}
	if grew > 8<<20 {
		t.Errorf("refused after allocating %d MB", grew>>20)
	}
}

// The 4 MB file claiming just under 2^31 int16 voxels (32767 x 32767 x 2,
// 8.6 GB as float32)
// is refused up front on a machine whose budget is smaller. Random padding stands
// in for the compressed zeros: it passes the deflate-ratio check the same way.
func TestHugeClaimOverBudget(t *testing.T) {
	hdr := withDims(small(t), 32767, 32767, 2)[:352]
	pad := make([]byte, 4200<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pad {
		pad[i] = byte(rng.Uint32())
	}
	var out bytes.Buffer
	w, _ := kgzip.NewWriterLevel(&out, kgzip.BestSpeed)
	w.Write(hdr)
	w.Write(pad)
	w.Close()
	defer volume.SetMemoryLimit(8<<30/2, "half of an 8 GiB laptop")()
	var err error
	grew := allocDuring(func() { _, err = ReadBytes("bomb.nii.gz", out.Bytes()) })
	if err == nil || !strings.Contains(err.Error(), "needs 8.6 GB of memory; the limit is 4.3 GB (half of an 8 GiB laptop)") {
		t.Fatalf("got %v", err)
	}
	if grew > 8<<20 {
		t.Errorf("refused after allocating %d MB", grew>>20)
	}
}

// storedGz gzips b without compression, so a flipped data bit still inflates and
// only the CRC-32 can tell.
func storedGz(b []byte) []byte {
	var out bytes.Buffer
	w, _ := kgzip.NewWriterLevel(&out, kgzip.NoCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestGzipChecksum(t *testing.T) {
	good := small(t)
	z := storedGz(good)
	tail := good[len(good)-8:] // the last voxels
	dataAt := bytes.Index(z, tail)
	if dataAt < 0 {
		t.Fatal("voxels not found in the stored gzip stream")
	}
	flip := func(off int, bit byte) []byte {
		b := append([]byte(nil), z...)
		b[off] ^= bit
		return b
	}
	cases := []struct {
		name string
		data []byte
		want string // "" = accepted
		note string
	}{
		{"intact", z, "", ""},
		{"data bit", flip(dataAt+3, 0x10), "checksum", ""},
		{"crc bit", flip(len(z)-6, 0x01), "checksum", ""},
		{"isize bit", flip(len(z)-3, 0x80), "checksum", ""},
		{"compressed data bit", func() []byte { b := gz(good); b[len(b)-12] ^= 0x04; return b }(), "damaged", ""},
		{"trailing garbage", append(append([]byte(nil), z...), "junk after the end"...), "", "ignored"},
		{"second member", append(append([]byte(nil), z...), gz([]byte("more"))...), "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ReadBytes(c.name+".nii.gz", c.data)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.name+".nii.gz") || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want the name and %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(v.Notes, "; "); c.note != "" && !strings.Contains(got, c.note) {
				t.Errorf("notes %q lack %q", got, c.note)
			}
		})
	}
}

// dim[4] claims are checked against the bytes present: a file holding one volume
// of a header declaring 32767 says so (it used to say "volume 1 of 32767").
func TestVolumeCountTruth(t *testing.T) {
	good := small(t) // 4x3x2 int16: 48 bytes a volume after a 352-byte header
	fourD := func(nvol int, held int) []byte {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint16(b[40:], 4)
		binary.LittleEndian.PutUint16(b[48:], uint16(nvol))
		for i := 1; i < held; i++ {
			b = append(b, good[352:]...)
		}
		return b
	}
	cases := []struct {
		name  string
		data  []byte
		drain int64
		note  string
	}{
		{"header lies", fourD(32767, 1), 0, "declares 32767 volumes (4D) but the file holds 1"},
		{"header lies gz", gz(fourD(32767, 1)), 0, "declares 32767 volumes (4D) but the file holds 1"},
		{"three of five", fourD(5, 3), 0, "declares 5 volumes (4D) but the file holds 3"},
		{"honest", fourD(3, 3), 0, "4D image: showing volume 1 of 3"},
		{"honest gz", gz(fourD(3, 3)), 0, "4D image: showing volume 1 of 3"},
		{"long gz not drained", gz(fourD(40, 40)), 100, "not decompressed, so the gzip checksum was not verified"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.drain > 0 {
				prev := maxDrain
				maxDrain = c.drain
				defer func() { maxDrain = prev }()
			}
			v, err := ReadBytes(c.name+".nii", c.data)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(v.Notes, "; "); !strings.Contains(got, c.note) {
				t.Errorf("notes %q lack %q", got, c.note)
			}
			if v.At(3, 2, 1, 0) != 18 {
				t.Errorf("voxel (3,2,1) = %v, want 18", v.At(3, 2, 1, 0))
			}
		})
	}
}
