package dicom

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medsa/medsa/io/volume"
)

// JPEG 2000 (OpenJPEG) and JPEG-LS (CharLS): every sample file decodes to the voxels
// of the same file decompressed by an outside tool (GDCM's gdcmconv --raw, dcmtk's
// dcmdjpls), and files we compress ourselves decode to their uncompressed source.

// tool finds an outside referee; missing it skips the test (fails under
// MEDSA_REQUIRE_TESTDATA, as in `make test`: scripts/setup.sh installs them).
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("MEDSA_REQUIRE_TESTDATA") != "" {
			t.Fatalf("%s not installed (Debian %s; scripts/setup.sh installs it)", name, pkg)
		}
		t.Skipf("%s not installed (Debian %s; scripts/setup.sh installs it)", name, pkg)
	}
	return p
}

// convert runs `name args... SRC DST` on src (a file, or every file of a folder)
// into a new temporary folder and returns the converted path.
func convert(t testing.TB, name, src string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	var files []string
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		es, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if !e.IsDir() {
				files = append(files, e.Name())
			}
		}
	}
	run1 := func(from, to string) {
		cmd := exec.Command(name, append(append([]string(nil), args...), from, to)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), from, err, b)
		}
	}
	if files == nil {
		out += ".dcm"
		run1(src, out)
		return out
	}
	for _, f := range files {
		run1(filepath.Join(src, f), filepath.Join(out, f))
	}
	return out
}

// sameVolume requires identical size, grid and (within tol) values.
func sameVolume(t *testing.T, name string, got, want *volume.Volume, tol float32) {
	t.Helper()
	equalData(t, name, got, want, tol)
	if d := volume.SameGrid(got.Size, got.Affine, want.Size, want.Affine, 1e-6); d != "" {
		t.Errorf("%s: grid differs: %s", name, d)
	}
}

const gdcmPkg, dcmtkPkg = "libgdcm-tools", "dcmtk"

// Every JPEG 2000 sample (pydicom, ami.js, grailbio) decodes as gdcmconv --raw does.
func TestJ2KMatchesGDCM(t *testing.T) {
	gdcm := tool(t, "gdcmconv", gdcmPkg)
	cases := []string{
		pyd + "JPEG2000.dcm",              // lossy, signed 16-bit
		pyd + "MR_small_jp2klossless.dcm", // lossless, signed 16-bit
		pyd + "693_J2KI.dcm",              // BitsStored 14, codestream 16 bits
		pyd + "J2K_pixelrep_mismatch.dcm", // unsigned codestream, PixelRepresentation 1, 13 bits
		pyd + "GDCMJ2K_TextGBR.dcm",       // JP2-wrapped, YBR_RCT colour
		pyd + "SC_rgb_gdcm_KY.dcm",        // lossy RGB
		"ami.js/package/data/dicom/j2k.dcm",
		"ami.js/package/data/dicom/MELANIX.dcm",
		"grailbio-ct", // the 3-slice cardiac CT series
	}
	for _, rel := range cases {
		src := grailCT(t, rel)
		got := mustRead(t, src)
		want := mustRead(t, convert(t, gdcm, src, "--raw"))
		if !hasNote(got, "JPEG 2000") {
			t.Errorf("%s: not read as JPEG 2000: %v", rel, got.Notes)
		}
		sameVolume(t, rel, got, want, 0)
	}
}

// grailCT returns the grailbio JPEG 2000 CT series as a folder of its own (the
// examples folder mixes series); other paths are returned as data paths.
func grailCT(t *testing.T, rel string) string {
	t.Helper()
	if rel != "grailbio-ct" {
		return data(t, rel)
	}
	dir := t.TempDir()
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("IM-0001-%04d.dcm", i)
		b, err := os.ReadFile(data(t, "github.com/grailbio/go-dicom/examples/"+n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Our own J2K copies (made by gdcmconv) of native files decode back to the source:
// exactly when lossless, close when lossy. Signed CT, RGB, a 24-frame enhanced CT.
func TestJ2KRoundTrip(t *testing.T) {
	gdcm := tool(t, "gdcmconv", gdcmPkg)
	rgb := convert(t, tool(t, "dcmdrle", dcmtkPkg), data(t, pyd+"SC_rgb_rle.dcm"))
	cases := []struct {
		name, src string
		args      []string
		tol       float32 // 0: identical; < 0: mean |difference| bound (lossy)
	}{
		{"CT signed 16-bit lossless", data(t, pyd+"CT_small.dcm"), []string{"--j2k"}, 0},
		{"CT lossy", data(t, pyd+"CT_small.dcm"), []string{"--j2k", "--lossy", "-q", "80"}, -20},
		{"8-bit series lossless", data(t, derived+"axial8"), []string{"--j2k"}, 0},
		{"RGB lossless", rgb, []string{"--j2k"}, 0},
		{"RGB lossy", rgb, []string{"--j2k", "--lossy", "-q", "40"}, -3},
		{"multi-frame lossless", data(t, derived+"multi"), []string{"--j2k"}, 0},
	}
	for _, c := range cases {
		j := convert(t, gdcm, c.src, c.args...)
		got := mustRead(t, j)
		sameVolume(t, c.name, got, mustRead(t, c.src), c.tol)
		if c.tol < 0 { // lossy: still exactly what GDCM decodes
			sameVolume(t, c.name+" vs gdcmconv --raw", got, mustRead(t, convert(t, gdcm, j, "--raw")), 0)
		}
	}
}

// JPEG-LS: pydicom's sample against dcmdjpls and its uncompressed twin; our own copies
// (dcmcjpls) of signed, 8-bit, RGB in every interleave mode, near-lossless and
// multi-frame files in small fragments, with and without an offset table.
func TestJPEGLSMatchesDcmtk(t *testing.T) {
	djpls := tool(t, "dcmdjpls", dcmtkPkg)
	cjpls := tool(t, "dcmcjpls", dcmtkPkg)
	rgb := convert(t, tool(t, "dcmdrle", dcmtkPkg), data(t, pyd+"SC_rgb_rle.dcm"))
	sample := data(t, pyd+"MR_small_jpeg_ls_lossless.dcm")
	sameVolume(t, "MR_small_jpeg_ls_lossless vs MR_small", mustRead(t, sample), mustRead(t, data(t, pyd+"MR_small.dcm")), 0)
	cases := []struct {
		name, src string
		args      []string
		tol       float32
	}{
		{"pydicom MR (already JPEG-LS)", sample, nil, 0},
		{"CT signed 16-bit", data(t, pyd+"CT_small.dcm"), []string{"+el"}, 0},
		{"8-bit series", data(t, derived+"axial8"), []string{"+el"}, 0},
		{"RGB line-interleaved", rgb, []string{"+il"}, 0},
		{"RGB sample-interleaved", rgb, []string{"+is"}, 0},
		{"RGB not interleaved", rgb, []string{"+in"}, 0},
		{"near-lossless 12-bit", data(t, derived+"axial/"+firstFile(t, derived+"axial")), []string{"+en", "+md", "3"}, 3},
		{"multi-frame, 8 KB fragments, offset table", data(t, derived+"multi"), []string{"+fs", "8", "+ot"}, 0},
		{"multi-frame, 8 KB fragments, no offset table", data(t, derived+"multi"), []string{"+fs", "8", "-ot"}, 0},
	}
	for _, c := range cases {
		j := c.src
		if c.args != nil {
			j = convert(t, cjpls, c.src, c.args...)
		}
		got := mustRead(t, j)
		if !hasNote(got, "JPEG-LS") {
			t.Errorf("%s: not read as JPEG-LS: %v", c.name, got.Notes)
		}
		sameVolume(t, c.name+" vs dcmdjpls", got, mustRead(t, convert(t, djpls, j)), 0)
		sameVolume(t, c.name+" vs source", got, mustRead(t, c.src), c.tol)
	}
}

func firstFile(t *testing.T, rel string) string {
	t.Helper()
	es, err := os.ReadDir(data(t, rel))
	if err != nil || len(es) == 0 {
		t.Fatalf("%s: %v", rel, err)
	}
	return es[0].Name()
}

// refragment rewrites an encapsulated file with each frame split into fragments of at
// most size bytes, with or without a basic offset table.
func refragment(t testing.TB, b []byte, size int, withBOT bool) []byte {
	t.Helper()
	h, err := parseHeader("x", b, int64(len(b)), true)
	if err != nil || h.pixLen >= 0 {
		t.Fatalf("not an encapsulated file: %v", err)
	}
	bot, frags, err := fragments(b[h.pixOff:], binaryLE)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := frameData(bot, frags, h.nframes, binaryLE, frameStart(h.ts))
	if err != nil {
		t.Fatal(err)
	}
	item := func(out, v []byte) []byte {
		out = append(out, 0xFE, 0xFF, 0x00, 0xE0)
		return append(binary.LittleEndian.AppendUint32(out, uint32(len(v))), v...)
	}
	var body, table []byte
	for _, f := range frames {
		table = binary.LittleEndian.AppendUint32(table, uint32(len(body)))
		for len(f) > 0 {
			n := min(size, len(f))
			if n%2 == 1 && n < len(f) {
				n++
			}
			frag := f[:n]
			if len(frag)%2 == 1 {
				frag = append(append([]byte(nil), frag...), 0)
			}
			body = item(body, frag)
			f = f[n:]
		}
	}
	if !withBOT {
		table = nil
	}
	out := append([]byte(nil), b[:h.pixOff]...)
	out = item(out, table)
	out = append(out, body...)
	return append(out, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
}

// Frames split over many fragments decode as the single-fragment original, found by the
// offset table or by the markers that open each frame.
func TestMultiFragmentFrames(t *testing.T) {
	gdcm := tool(t, "gdcmconv", gdcmPkg)
	cjpls := tool(t, "dcmcjpls", dcmtkPkg)
	multi := data(t, derived+"multi")
	for _, src := range []string{convert(t, gdcm, multi, "--j2k"), convert(t, cjpls, multi), data(t, pyd+"JPEG2000.dcm")} {
		if st, _ := os.Stat(src); st.IsDir() {
			src = filepath.Join(src, firstFileAbs(t, src))
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ReadBytes("whole.dcm", b)
		if err != nil {
			t.Fatal(err)
		}
		for _, bot := range []bool{true, false} {
			name := fmt.Sprintf("%s, offset table %v", filepath.Base(src), bot)
			got, err := ReadBytes(name, refragment(t, b, 501, bot))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			sameVolume(t, name, got, want, 0)
		}
	}
}

func firstFileAbs(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil || len(es) == 0 {
		t.Fatalf("%s: %v", dir, err)
	}
	return es[0].Name()
}

// encapDICOM builds an explicit-LE file of one encapsulated frame.
func encapDICOM(ts string, rows, cols, spp, stored, rep int, photo string, frame []byte) []byte {
	u16 := func(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }
	meta := elemLE(0x0002, 0x0010, "UI", []byte(ts))
	b := make([]byte, 128)
	b = append(b, "DICM"...)
	b = append(b, elemLE(0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta))))...)
	b = append(b, meta...)
	b = append(b, elemLE(0x0008, 0x0060, "CS", []byte("OT"))...)
	b = append(b, elemLE(0x0020, 0x000E, "UI", []byte("1.2.3.4.5"))...)
	b = append(b, elemLE(0x0028, 0x0002, "US", u16(spp))...)
	b = append(b, elemLE(0x0028, 0x0004, "CS", []byte(photo))...)
	b = append(b, elemLE(0x0028, 0x0010, "US", u16(rows))...)
	b = append(b, elemLE(0x0028, 0x0011, "US", u16(cols))...)
	alloc := 8
	if stored > 8 {
		alloc = 16
	}
	b = append(b, elemLE(0x0028, 0x0100, "US", u16(alloc))...)
	b = append(b, elemLE(0x0028, 0x0101, "US", u16(stored))...)
	b = append(b, elemLE(0x0028, 0x0102, "US", u16(stored-1))...)
	b = append(b, elemLE(0x0028, 0x0103, "US", u16(rep))...)
	b = append(b, 0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF)
	b = append(b, 0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0)
	if len(frame)%2 == 1 {
		frame = append(append([]byte(nil), frame...), 0)
	}
	b = append(b, 0xFE, 0xFF, 0x00, 0xE0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
	b = append(b, frame...)
	return append(b, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
}

// High-Throughput JPEG 2000 (Part 15): a real 12-bit CT slice compressed by OpenJPH's
// ojph_compress decodes to the same values through OpenJPEG.
func TestHTJ2K(t *testing.T) {
	ojph := tool(t, "ojph_compress", "openjph-tools")
	src := data(t, derived+"axial/"+firstFile(t, derived+"axial"))
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(src, b, int64(len(b)), true)
	if err != nil {
		t.Fatal(err)
	}
	pf := formatOf(h.ds)
	if pf.alloc != 16 || pf.spp != 1 || pf.rep != 0 {
		t.Fatalf("%s: want unsigned 16-bit grey, have %+v", src, pf)
	}
	// A 16-bit PGM (big endian samples) of the stored values.
	pgm := []byte(fmt.Sprintf("P5\n%d %d\n%d\n", pf.cols, pf.rows, 1<<pf.stored-1))
	for i := 0; i < pf.rows*pf.cols; i++ {
		v := binary.LittleEndian.Uint16(b[h.pixOff+int64(2*i):])
		pgm = binary.BigEndian.AppendUint16(pgm, v)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pgm"), filepath.Join(dir, "out.j2c")
	if err := os.WriteFile(in, pgm, 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command(ojph, "-i", in, "-o", out, "-reversible", "true").CombinedOutput(); err != nil {
		t.Fatalf("ojph_compress: %v\n%s", err, o)
	}
	cs, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	info, err := parseSIZ(cs)
	if err != nil || !info.ht {
		t.Fatalf("ojph_compress wrote no HTJ2K codestream: %+v %v", info, err)
	}
	for _, ts := range []string{tsHTJ2KLossless, tsHTJ2K} {
		got, err := ReadBytes("ht.dcm", encapDICOM(ts, pf.rows, pf.cols, 1, pf.stored, 0, "MONOCHROME2", cs))
		if err != nil {
			t.Fatalf("%s: %v", ts, err)
		}
		n := 0
		for i, v := range got.Data {
			if want := float32(binary.LittleEndian.Uint16(b[h.pixOff+int64(2*i):])); v != want {
				n++
			}
		}
		if n > 0 {
			t.Errorf("%s: %d of %d voxels differ from the source", tsName(ts), n, len(got.Data))
		}
	}
}

// Broken streams are refused with the file and the problem named, before any decode
// that the header cannot justify: truncated codestreams, sizes that disagree with the
// DICOM header, garbage.
func TestCodecBadStreams(t *testing.T) {
	j2k, err := os.ReadFile(data(t, pyd+"MR_small_jp2klossless.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	jls, err := os.ReadFile(data(t, pyd+"MR_small_jpeg_ls_lossless.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	frame := func(b []byte) []byte {
		h, err := parseHeader("x", b, int64(len(b)), true)
		if err != nil {
			t.Fatal(err)
		}
		_, fr, err := fragments(b[h.pixOff:], binaryLE)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Join(fr, nil)
	}
	j2kFrame, jlsFrame := frame(j2k), frame(jls)
	rows64 := []byte{0x28, 0x00, 0x10, 0x00, 'U', 'S', 2, 0, 64, 0}
	rows32 := []byte{0x28, 0x00, 0x10, 0x00, 'U', 'S', 2, 0, 32, 0}
	mk := func(ts string, fr []byte, rows int) []byte {
		return encapDICOM(ts, rows, 64, 1, 16, 1, "MONOCHROME2", fr)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"j2k truncated.dcm", mk(tsJ2KLossless, j2kFrame[:len(j2kFrame)/2], 64), "truncated"},
		{"j2k no EOC.dcm", mk(tsJ2KLossless, j2kFrame[:len(j2kFrame)-2], 64), "end-of-codestream"},
		{"j2k rows lie.dcm", patch(t, j2k, rows64, rows32), "codestream is 64x64x1, header says 64x32x1"},
		{"j2k garbage.dcm", mk(tsJ2KLossless, bytes.Repeat([]byte{0xFF, 0x4F, 0xFF, 0x51}, 40), 64), "SIZ"},
		{"j2k not j2k.dcm", mk(tsJ2K, jlsFrame, 64), "not a JPEG 2000 codestream"},
		{"j2k corrupt body.dcm", mk(tsJ2KLossless, corruptMiddle(j2kFrame), 64), ""}, // may decode to noise: no panic is the test
		{"jls truncated.dcm", mk(tsJPEGLS, jlsFrame[:len(jlsFrame)/2], 64), "no end-of-image marker"},
		{"jls truncated eoi.dcm", mk(tsJPEGLS, append(append([]byte(nil), jlsFrame[:len(jlsFrame)/2]...), 0xFF, 0xD9), 64), "JPEG-LS"},
		{"jls corrupt.dcm", mk(tsJPEGLS, corruptMiddle(jlsFrame), 64), "JPEG-LS"},
		{"jls rows lie.dcm", patch(t, jls, rows64, rows32), "frame is 64x64x1, header says 64x32x1"},
		{"jls not jls.dcm", mk(tsJPEGLS, j2kFrame, 64), "JPEG-LS"},
		{"jls 8-bit alloc.dcm", encapDICOM(tsJPEGLS, 64, 64, 1, 8, 0, "MONOCHROME2", jlsFrame), "bits per sample"},
		// pydicom's copy of JPEG2000.dcm with a sequence delimiter written into the codestream.
		{"seqdelim.dcm", mustReadFile(t, data(t, pyd+"JPEG2000-embedded-sequence-delimiter.dcm")), "JPEG 2000"},
	}
	for _, c := range cases {
		t0 := time.Now()
		_, err := ReadBytes(c.name, c.data)
		if d := time.Since(t0); d > time.Second {
			t.Errorf("%s: took %v", c.name, d) // a decoder spinning on bad input
		}
		switch {
		case c.want == "":
			if err != nil && !strings.HasPrefix(err.Error(), c.name) {
				t.Errorf("%s: error does not name the file: %v", c.name, err)
			}
		case err == nil:
			t.Errorf("%s: accepted, want an error containing %q", c.name, c.want)
		case !strings.HasPrefix(err.Error(), c.name) || !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: error %q, want %q naming the file", c.name, err, c.want)
		}
	}
}

// corruptMiddle flips the bytes of the middle third (markers and all).
func corruptMiddle(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i := len(out) / 3; i < 2*len(out)/3; i++ {
		out[i] ^= 0xA5
	}
	return out
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// benchFrame returns one frame's bytes and format from a file made by tool.
func benchFrame(b *testing.B, name, pkg, rel string, args ...string) ([]byte, pixelFormat, *header) {
	p := convert(b, tool(b, name, pkg), data(b, rel), args...)
	raw, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	h, err := parseHeader(p, raw, int64(len(raw)), true)
	if err != nil {
		b.Fatal(err)
	}
	_, fr, err := fragments(raw[h.pixOff:], binaryLE)
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Join(fr, nil), formatOf(h.ds), h
}

// One 512x512 16-bit CT frame (the octave-dicom CT, compressed by each tool).
const benchCT = "octave-dicom/usr/share/octave/packages/dicom-0.5.1/imdata/CT-MONO2-16-ankle.dcm"

func BenchmarkDecodeJ2K(b *testing.B) {
	fr, pf, _ := benchFrame(b, "gdcmconv", gdcmPkg, benchCT, "--j2k")
	b.SetBytes(int64(pf.rows * pf.cols * pf.alloc / 8))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeJ2K(fr, pf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJPEGLS(b *testing.B) {
	fr, pf, _ := benchFrame(b, "dcmcjpls", dcmtkPkg, benchCT)
	b.SetBytes(int64(pf.rows * pf.cols * pf.alloc / 8))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJPEGLS(fr, pf); err != nil {
			b.Fatal(err)
		}
	}
}
