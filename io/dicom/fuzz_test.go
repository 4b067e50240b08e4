package dicom

import (
	"os"
	"path/filepath"
	"testing"

	td "github.com/medsa/medsa/internal/testfiles"
)

// FuzzRead feeds arbitrary bytes to the reader: it must return a volume that
// validates or an error naming the input, never panic, and never hold more
// voxels than the bytes can justify.
func FuzzRead(f *testing.F) {
	f.Add([]byte("DICM"))
	// The lying headers of issue 14: frame counts below 1 and a million frames of 2 bytes.
	for _, n := range []string{"-1", "-2", "0", "1048576"} {
		f.Add(tinyDICOM(1, 1, n, 2))
	}
	f.Add(tinyDICOM(4, 4, "2", 64))
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

// firstFragment returns the first pixel fragment of an encapsulated test file (nil if absent).
func firstFragment(tb testing.TB, rel string) []byte {
	dir := filepath.Join(td.Root(tb), ".cache", "testdata", rel)
	es, err := os.ReadDir(dir)
	if err != nil || len(es) == 0 {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, es[0].Name()))
	if err != nil {
		return nil
	}
	h, err := parseHeader("seed", b, int64(len(b)), true)
	if err != nil || h.pixLen >= 0 {
		return nil
	}
	_, frags, err := fragments(b[h.pixOff:], binaryLE)
	if err != nil || len(frags) == 0 {
		return nil
	}
	return frags[0]
}

// FuzzJPEGLossless: the lossless JPEG decoder returns an image of the size its header
// states or an error, never a panic, for any bytes.
func FuzzJPEGLossless(f *testing.F) {
	for _, rel := range []string{derived + "axial_jpegll_sv1", derived + "axial_jpegll_p14"} {
		if fr := firstFragment(f, rel); fr != nil {
			f.Add(fr)
			f.Add(fr[:len(fr)/2]) // truncated
		}
	}
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xD9})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodeJPEGLossless(data, 1<<20)
		if err != nil {
			return
		}
		if len(img.pix) != img.w*img.h*img.comps {
			t.Fatalf("%d samples for %dx%dx%d", len(img.pix), img.w, img.h, img.comps)
		}
	})
}

// FuzzRLE: the RLE decoder returns exactly rows*cols*spp*bytes or an error.
func FuzzRLE(f *testing.F) {
	if fr := firstFragment(f, derived+"axial_rle"); fr != nil {
		f.Add(fr, uint8(16))
		f.Add(fr[:len(fr)/2], uint8(16))
	}
	f.Add(make([]byte, 64), uint8(8))
	f.Fuzz(func(t *testing.T, data []byte, side uint8) {
		n := int(side%64) + 1
		out, err := decodeRLE(data, n, n, 1, 2)
		if err != nil {
			return
		}
		if len(out) != n*n*2 {
			t.Fatalf("%d bytes for %dx%d", len(out), n, n)
		}
	})
}
