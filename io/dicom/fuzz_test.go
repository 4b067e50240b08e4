package dicom

import (
	"bytes"
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

// fragmentOf returns the pixel fragments of one encapsulated test file, joined (nil if absent).
func fragmentOf(tb testing.TB, rel string) []byte {
	b, err := os.ReadFile(filepath.Join(td.Root(tb), ".cache", "testdata", rel))
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
	return bytes.Join(frags, nil)
}

// fuzzFormat is the pixel format a fuzz input is decoded as: what its own header says
// where that is small (so the codec gets past its checks), else a 64x64 grey frame.
func fuzzFormat(w, h, comps int, alloc uint8) pixelFormat {
	pf := pixelFormat{rows: 64, cols: 64, spp: 1, alloc: 16, stored: 16, high: 15, photo: "MONOCHROME2"}
	if w > 0 && h > 0 && w <= 1<<18 && h <= 1<<18 && w*h <= 1<<18 && (comps == 1 || comps == 3) { // w*h must not overflow
		pf.rows, pf.cols, pf.spp = h, w, comps
	}
	if alloc%2 == 0 {
		pf.alloc, pf.stored, pf.high = 8, 8, 7
	}
	if alloc%3 == 0 {
		pf.rep = 1
	}
	return pf
}

// FuzzJ2K: the JPEG 2000 path returns exactly rows*cols*spp samples or an error, for any
// bytes; never a crash inside OpenJPEG (the Go checks run first).
func FuzzJ2K(f *testing.F) {
	for _, rel := range []string{pyd + "MR_small_jp2klossless.dcm", pyd + "GDCMJ2K_TextGBR.dcm", pyd + "SC_rgb_gdcm_KY.dcm", pyd + "JPEG2000.dcm"} {
		if fr := fragmentOf(f, rel); fr != nil {
			f.Add(fr, uint8(1))
			f.Add(fr[:len(fr)/2], uint8(1)) // truncated
			f.Add(fr[:len(fr)-2], uint8(1)) // no EOC
		}
	}
	f.Add([]byte{0xFF, 0x4F, 0xFF, 0x51, 0, 41}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, alloc uint8) {
		var pf pixelFormat
		if cs, err := j2kCodestream(data); err == nil {
			in, _ := parseSIZ(cs)
			pf = fuzzFormat(in.w, in.h, in.comps, alloc)
		} else {
			pf = fuzzFormat(0, 0, 0, alloc)
		}
		pix, _, err := decodeJ2K(data, pf)
		if err != nil {
			return
		}
		if len(pix) != pf.rows*pf.cols*pf.spp {
			t.Fatalf("%d samples for %dx%dx%d", len(pix), pf.cols, pf.rows, pf.spp)
		}
	})
}

// jlsSize reads the frame size of a JPEG-LS stream's SOF55 marker (0 when not found).
func jlsSize(b []byte) (w, h, comps int) {
	for i := 2; i+10 <= len(b); i++ {
		if b[i] == 0xFF && b[i+1] == 0xF7 {
			return int(b[i+7])<<8 | int(b[i+8]), int(b[i+5])<<8 | int(b[i+6]), int(b[i+9])
		}
	}
	return 0, 0, 0
}

// FuzzJPEGLS: the JPEG-LS path returns exactly rows*cols*spp samples or an error, for
// any bytes; never a crash inside CharLS.
func FuzzJPEGLS(f *testing.F) {
	if fr := fragmentOf(f, pyd+"MR_small_jpeg_ls_lossless.dcm"); fr != nil {
		f.Add(fr, uint8(1))
		f.Add(fr[:len(fr)/2], uint8(1))
		f.Add(append(append([]byte(nil), fr[:len(fr)/2]...), 0xFF, 0xD9), uint8(1)) // cut, then an EOI
	}
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xF7, 0, 11, 8, 0, 4, 0, 4, 1, 1, 0x11, 0, 0xFF, 0xD9}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, alloc uint8) {
		w, h, c := jlsSize(data)
		pf := fuzzFormat(w, h, c, alloc)
		s, err := decodeJPEGLS(data, pf)
		if err != nil {
			return
		}
		if len(s) != pf.rows*pf.cols*pf.spp {
			t.Fatalf("%d samples for %dx%dx%d", len(s), pf.cols, pf.rows, pf.spp)
		}
	})
}
