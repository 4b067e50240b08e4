package nifti

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/medsa/medsa/io/internal/ctxio"
	"github.com/medsa/medsa/io/volume"
)

// maxDeflateRatio bounds how much a deflate stream can expand (about 1032:1), so a
// header's size claim can be checked against a compressed file's size.
const maxDeflateRatio = 1032

// decodeChunk is the raw bytes decodeData holds at a time (the rest of a load is
// the float32 volume itself).
const decodeChunk = 1 << 20

// maxDrain bounds how much of a gzip stream is decompressed after the volume that
// is shown, to reach the trailer (CRC-32 and length) and count the volumes
// present: a long 4D series is not decompressed in full to show its first volume.
var maxDrain int64 = 512 << 20 // a variable so tests can lower it

// Read opens a NIfTI-1/NIfTI-2 file (.nii, .nii.gz), or an Analyze 7.5 / NIfTI
// pair (.hdr/.img, either may be gzipped), in either byte order. 4D+ images open
// their first volume and say so in Volume.Notes.
func Read(path string) (*volume.Volume, error) { return ReadContext(context.Background(), path) }

// ReadContext is Read that stops reading voxels once ctx is done (within about
// a megabyte of data); the error then wraps ctx.Err().
func ReadContext(ctx context.Context, path string) (*volume.Volume, error) {
	v, err := read(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

// ReadBytes reads a single-file NIfTI image (plain or gzipped) held in memory;
// name is used for messages and Volume.Name. Header-only files (pairs) are refused.
func ReadBytes(name string, data []byte) (*volume.Volume, error) {
	v, err := readStream(context.Background(), name, bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return v, nil
}

// IsGzip reports whether b starts with the gzip magic.
func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

func read(ctx context.Context, path string) (*volume.Volume, error) {
	hdrPath := path
	lower := strings.ToLower(path)
	if strings.HasSuffix(lower, ".img") || strings.HasSuffix(lower, ".img.gz") {
		p, err := pairPath(path, []string{".hdr", ".hdr.gz"})
		if err != nil {
			return nil, err
		}
		hdrPath = p
	}
	if err := checkRegular(hdrPath); err != nil {
		return nil, err
	}
	f, err := os.Open(hdrPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	imgOpen := func() (io.ReadCloser, int64, string, error) {
		p, err := pairPath(hdrPath, []string{".img", ".img.gz"})
		if err != nil {
			return nil, 0, "", err
		}
		if err := checkRegular(p); err != nil {
			return nil, 0, "", err
		}
		g, err := os.Open(p)
		if err != nil {
			return nil, 0, "", err
		}
		gs, err := g.Stat()
		if err != nil {
			g.Close()
			return nil, 0, "", err
		}
		return g, gs.Size(), p, nil
	}
	v, err := readStream(ctx, hdrPath, f, st.Size(), imgOpen)
	if err != nil {
		return nil, err
	}
	v.Source = path
	return v, nil
}

// checkRegular refuses folders, named pipes and devices before they are opened
// (opening a named pipe blocks until something writes to it).
func checkRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a folder, not a NIfTI file")
	}
	if !st.Mode().IsRegular() {
		what := "not a regular file"
		if st.Mode()&os.ModeNamedPipe != 0 {
			what = "a named pipe (FIFO), not a regular file"
		}
		return fmt.Errorf("%s is %s", filepath.Base(path), what)
	}
	return nil
}

// pairPath finds the partner of a .hdr/.img file among the given extensions.
func pairPath(path string, exts []string) (string, error) {
	base := path
	lower := strings.ToLower(base)
	if strings.HasSuffix(lower, ".gz") {
		base, lower = base[:len(base)-3], lower[:len(lower)-3]
	}
	ext := filepath.Ext(lower)
	base = base[:len(base)-len(ext)]
	var tried []string
	for _, e := range exts {
		for _, cand := range []string{base + e, base + strings.ToUpper(e)} {
			if st, err := os.Stat(cand); err == nil && !st.IsDir() {
				return cand, nil
			}
			tried = append(tried, filepath.Base(cand))
		}
	}
	return "", fmt.Errorf("the other half of the Analyze/NIfTI pair is missing (looked for %s)", strings.Join(tried, ", "))
}

type opener func() (rc io.ReadCloser, size int64, name string, err error)

// decompress wraps r in a gzip reader when it starts with the gzip magic and
// returns the largest number of bytes the stream can honestly yield.
func decompress(r io.Reader, size int64) (io.Reader, func(), int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	if !isGzip(magic) {
		return br, func() {}, size, nil
	}
	// the limit also tells callers the stream is compressed: it exceeds size
	zr, err := kgzip.NewReader(br)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("gzip: %w", err)
	}
	limit := size*maxDeflateRatio + 1<<16
	return zr, func() { zr.Close() }, limit, nil
}

// gzipISize returns the ISIZE field of a gzip file's trailer (its uncompressed
// length mod 2^32), or -1 when r cannot be read at an offset or is not gzip.
func gzipISize(r io.Reader, size int64) int64 {
	ra, ok := r.(io.ReaderAt)
	if !ok || size < 18 {
		return -1
	}
	var b [4]byte
	if _, err := ra.ReadAt(b[:2], 0); err != nil || !isGzip(b[:2]) {
		return -1
	}
	if _, err := ra.ReadAt(b[:], size-4); err != nil {
		return -1
	}
	return int64(binary.LittleEndian.Uint32(b[:]))
}

// trailerConfirms reports whether a gzip trailer's ISIZE agrees with a stream of
// one of the given lengths: then a header's claim is worth allocating up front.
// (A forged trailer costs address space only: pages are touched as data arrives,
// and the checksum fails at the end.)
func trailerConfirms(isize int64, lengths ...int64) bool {
	if isize < 0 {
		return false
	}
	for _, n := range lengths {
		if n >= 0 && (n%(1<<32) == isize || (n < 1<<32 && isize >= n)) {
			return true
		}
	}
	return false
}

// drain reads r to its end (at most max bytes) so that a gzip reader reaches
// each member's trailer and checks its CRC-32 and length; it returns the bytes
// read and whether the end was reached. Trailing bytes that are not another gzip
// member are reported by trailing (gzip(1) ignores them with a warning).
func drain(r io.Reader, max int64) (n int64, complete, trailing bool, err error) {
	// A plain loop, not io.Copy: klauspost's gzip WriteTo checks the CRC of only
	// what it wrote itself, so after earlier Reads it reports a false mismatch.
	buf := make([]byte, 32<<10)
	for n <= max {
		k, rerr := r.Read(buf[:min(int64(len(buf)), max+1-n)])
		n += int64(k)
		switch {
		case rerr == io.EOF:
			return n, true, false, nil
		case errors.Is(rerr, kgzip.ErrHeader):
			return n, true, true, nil
		case errors.Is(rerr, kgzip.ErrChecksum):
			return n, false, false, errors.New("gzip checksum mismatch: the file is damaged (a CRC-32 or length in the gzip trailer does not match the data)")
		case ctxio.Stopped(rerr):
			return n, false, false, fmt.Errorf("reading stopped: %w", rerr)
		case rerr != nil:
			return n, false, false, fmt.Errorf("the gzip data is damaged: %w", rerr)
		}
	}
	return n, false, false, nil
}

func readStream(ctx context.Context, name string, r io.Reader, size int64, imgOpen opener) (*volume.Volume, error) {
	if size == 0 {
		return nil, errors.New("empty file")
	}
	isize := gzipISize(r, size)
	zr, done, limit, err := decompress(r, size)
	if err != nil {
		return nil, err
	}
	defer done()
	buf := make([]byte, 540)
	n, err := io.ReadFull(zr, buf[:348])
	if err != nil {
		if n < 4 {
			return nil, fmt.Errorf("%w (file holds only %d bytes)", errNotNifti, n)
		}
		if _, perr := parseHeader(buf[:n]); perr != nil && errors.Is(perr, errNotNifti) {
			return nil, perr
		}
		return nil, fmt.Errorf("truncated header (%d bytes): %v", n, err)
	}
	hlen := 348
	if h := binary.LittleEndian.Uint32(buf); h == 540 || binary.BigEndian.Uint32(buf) == 540 {
		if _, err := io.ReadFull(zr, buf[348:540]); err != nil {
			return nil, fmt.Errorf("truncated NIfTI-2 header: %v", err)
		}
		hlen = 540
	}
	h, err := parseHeader(buf[:hlen])
	if err != nil {
		return nil, err
	}
	sz, nvol, err := h.shape()
	if err != nil {
		return nil, err
	}
	ti, ok := types[h.datatype]
	if !ok {
		if s, known := unsupported[h.datatype]; known {
			return nil, fmt.Errorf("datatype %s (code %d) is not supported", s, h.datatype)
		}
		return nil, fmt.Errorf("unknown datatype code %d", h.datatype)
	}
	if err := volume.CheckSize(sz, ti.channels); err != nil {
		return nil, err
	}
	aff, affSrc, err := h.bestAffine(sz)
	if err != nil {
		return nil, err
	}
	if err := aff.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", affSrc, err)
	}
	volBytes := int64(sz[0]) * int64(sz[1]) * int64(sz[2]) * int64(ti.size)

	// Position the data stream at vox_offset.
	data := zr
	dlimit := limit
	dsize, dgz := size, limit > size // bytes on disk behind the data stream; gzipped?
	var off int64                    // where the voxels start in the data stream
	if h.single {
		minOff := int64(h.size + 4)
		off = int64(h.voxOffset)
		if math.IsNaN(h.voxOffset) || h.voxOffset < 0 || h.voxOffset > float64(math.MaxInt64/2) {
			return nil, fmt.Errorf("vox_offset %g is invalid", h.voxOffset)
		}
		if off < minOff { // nibabel's fix: too low for a single file
			off = minOff
		}
		if off > limit {
			return nil, fmt.Errorf("vox_offset %d lies beyond the end of the file (%d bytes)", off, size)
		}
		if k, err := io.CopyN(io.Discard, zr, off-int64(hlen)); err != nil {
			return nil, fmt.Errorf("vox_offset %d lies beyond the end of the data (%d bytes): %v", off, int64(hlen)+k, err)
		}
		dlimit = limit - off
	} else {
		if imgOpen == nil {
			return nil, errors.New("header of a .hdr/.img pair: the image data is in the .img file")
		}
		if limit > size { // a gzipped .hdr: reach its trailer so its checksum is checked
			if _, _, _, err := drain(zr, 1<<20); err != nil {
				return nil, err
			}
		}
		rc, isz, iname, err := imgOpen()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		if isz == 0 {
			return nil, fmt.Errorf("%s: empty image file", filepath.Base(iname))
		}
		isize = gzipISize(rc, isz)
		izr, idone, ilimit, err := decompress(rc, isz)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(iname), err)
		}
		defer idone()
		if !math.IsNaN(h.voxOffset) && h.voxOffset > 0 {
			off = int64(h.voxOffset)
		}
		if off > ilimit {
			return nil, fmt.Errorf("%s: vox_offset %d lies beyond the end of the file", filepath.Base(iname), off)
		}
		if _, err := io.CopyN(io.Discard, izr, off); err != nil {
			return nil, fmt.Errorf("%s: vox_offset %d lies beyond the end of the data: %v", filepath.Base(iname), off, err)
		}
		data, dlimit, dsize, dgz = izr, ilimit-off, isz, ilimit > isz
	}
	if volBytes > dlimit {
		return nil, fmt.Errorf("header claims %v voxels of %s (%d bytes) but the file can hold at most %d bytes", sz, ti.name, volBytes, max(dlimit, 0))
	}

	v := &volume.Volume{Size: sz, Channels: ti.channels, Affine: aff, DataType: ti.name,
		Name: baseName(name), Source: name}
	nvals := v.NumVoxels() * ti.channels
	// Everything this load holds at its peak: the float32 volume and one chunk of
	// raw bytes (decodeData converts as it decompresses). Checked before allocating.
	what := fmt.Sprintf("this image (%dx%dx%d %s", sz[0], sz[1], sz[2], ti.name)
	if ti.channels > 1 {
		what += fmt.Sprintf(", %d channels", ti.channels)
	}
	if err := volume.CheckMemory(what+", read as float32)", int64(nvals)*4+min(decodeChunk, volBytes)); err != nil {
		return nil, err
	}
	v.Notes = append(v.Notes, h.notes...)
	if affSrc == "pixdim" {
		v.Notes = append(v.Notes, "no sform or qform: affine from pixdim, centred on the volume (as nibabel)")
	}
	slope, inter, scaled, err := h.slopeInter()
	if err != nil {
		return nil, err
	}
	if ti.channels == 3 || (slope == 1 && inter == 0) {
		scaled = false
	}
	// A compressed file's claim is only bounded by the deflate ratio. When the gzip
	// trailer agrees with the header, allocate the volume once (peak = the volume);
	// otherwise, beyond a generous ratio, grow the array as data actually arrives,
	// so a lying header costs at most about twice what the file really holds.
	upfront := nvals
	all := int64(-1) // the whole stream dim[4..7] claim, when it fits an int64
	if volBytes <= (math.MaxInt64-off)/nvol {
		all = off + volBytes*nvol
	}
	if dgz && !trailerConfirms(isize, off+volBytes, all) {
		if trusted := (32*dsize + 64<<20) / int64(ti.size) * int64(ti.channels); int64(nvals) > trusted {
			upfront = int(trusted)
		}
	}
	v.Data = make([]float32, 0, upfront)
	data = ctxio.NewReader(ctx, data) // the voxels and the drain after them are where the time goes
	if v.Data, err = decodeData(data, v.Data, nvals, h, ti, volBytes, slope, inter, scaled); err != nil {
		return nil, err
	}
	// What follows the first volume: the other volumes of a 4D image, and for gzip
	// the trailer, whose CRC-32 is the only check that the voxels are the ones written.
	rest, counted := dsize-off-volBytes, true
	if dgz {
		n, complete, trailing, err := drain(data, maxDrain)
		if err != nil {
			return nil, err
		}
		rest, counted = n, complete
		switch {
		case trailing:
			v.Notes = append(v.Notes, "bytes after the end of the gzip data were ignored")
		case !complete && nvol > 1:
			v.Notes = append(v.Notes, fmt.Sprintf("%dD image: showing volume 1 of %d (the others were not decompressed, so the gzip checksum was not verified)", h.dim[0], nvol))
		case !complete:
			v.Notes = append(v.Notes, fmt.Sprintf("more than %s of data follow the image and were not read, so the gzip checksum was not verified", volume.FormatBytes(maxDrain)))
		}
	}
	if nvol > 1 && counted {
		// Say what the file holds, not what dim[4..7] claim.
		if held := 1 + rest/volBytes; held >= nvol {
			v.Notes = append(v.Notes, fmt.Sprintf("%dD image: showing volume 1 of %d", h.dim[0], nvol))
		} else {
			v.Notes = append(v.Notes, fmt.Sprintf("the header declares %d volumes (%dD) but the file holds %d: showing volume 1", nvol, h.dim[0], held))
		}
	}
	if scaled {
		v.DataType = "float32" // physical values after scl_slope/scl_inter
		if isIntegral(v.Data) {
			v.DataType = ti.name
		}
	}
	v.Modality = guessModality(h, v)
	if v.Channels == 3 {
		v.Window = [2]float64{127.5, 255}
	} else {
		v.Window = volume.PercentileWindow(v.Data, 1, 0.5, 99.5)
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return v, nil
}

func baseName(p string) string {
	b := filepath.Base(p)
	for _, ext := range []string{".gz", ".nii", ".hdr", ".img"} {
		if strings.HasSuffix(strings.ToLower(b), ext) {
			b = b[:len(b)-len(ext)]
		}
	}
	return b
}

// decodeData streams volBytes bytes from r into dst, converting as it goes so the
// raw bytes are never held in full.
func decodeData(r io.Reader, dst []float32, nvals int, h *header, ti typeInfo, volBytes int64, slope, inter float64, scaled bool) ([]float32, error) {
	step := decodeChunk / ti.size * ti.size
	buf := make([]byte, min(int64(step), volBytes))
	big := h.order == binary.BigEndian
	outPer := ti.channels // float32 values produced per voxel
	var done int64
	pos := 0
	for done < volBytes {
		n := int(min(int64(len(buf)), volBytes-done))
		got, err := io.ReadFull(r, buf[:n])
		if ctxio.Stopped(err) {
			return nil, fmt.Errorf("reading stopped: %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("image data shorter than the header declares: %d of %d bytes (%v)", done+int64(got), volBytes, err)
		}
		nv := n / ti.size
		if need := pos + nv*outPer; need > cap(dst) {
			grown := make([]float32, pos, min(nvals, max(need, 2*cap(dst))))
			copy(grown, dst)
			dst = grown
		}
		dst = dst[:pos+nv*outPer]
		convert(dst[pos:pos+nv*outPer], buf[:n], h.datatype, big)
		if scaled {
			s := dst[pos : pos+nv*outPer]
			for i, x := range s {
				s[i] = float32(float64(x)*slope + inter)
			}
		}
		pos += nv * outPer
		done += int64(n)
	}
	return dst, nil
}

// convert decodes raw voxels of datatype dt into float32 (RGBA drops alpha).
func convert(dst []float32, src []byte, dt int, big bool) {
	var bo binary.ByteOrder = binary.LittleEndian
	if big {
		bo = binary.BigEndian
	}
	switch dt {
	case dtUint8:
		for i, b := range src {
			dst[i] = float32(b)
		}
	case dtInt8:
		for i, b := range src {
			dst[i] = float32(int8(b))
		}
	case dtRGB24:
		for i, b := range src {
			dst[i] = float32(b)
		}
	case dtRGBA32:
		for i := 0; i < len(src)/4; i++ {
			dst[3*i] = float32(src[4*i])
			dst[3*i+1] = float32(src[4*i+1])
			dst[3*i+2] = float32(src[4*i+2])
		}
	case dtInt16:
		if big {
			for i := range dst {
				dst[i] = float32(int16(binary.BigEndian.Uint16(src[2*i:])))
			}
		} else {
			for i := range dst {
				dst[i] = float32(int16(binary.LittleEndian.Uint16(src[2*i:])))
			}
		}
	case dtUint16:
		if big {
			for i := range dst {
				dst[i] = float32(binary.BigEndian.Uint16(src[2*i:]))
			}
		} else {
			for i := range dst {
				dst[i] = float32(binary.LittleEndian.Uint16(src[2*i:]))
			}
		}
	case dtInt32:
		for i := range dst {
			dst[i] = float32(int32(bo.Uint32(src[4*i:])))
		}
	case dtUint32:
		for i := range dst {
			dst[i] = float32(bo.Uint32(src[4*i:]))
		}
	case dtInt64:
		for i := range dst {
			dst[i] = float32(int64(bo.Uint64(src[8*i:])))
		}
	case dtUint64:
		for i := range dst {
			dst[i] = float32(bo.Uint64(src[8*i:]))
		}
	case dtFloat32:
		if big {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.BigEndian.Uint32(src[4*i:]))
			}
		} else {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
			}
		}
	case dtFloat64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(bo.Uint64(src[8*i:])))
		}
	}
}

func isIntegral(d []float32) bool {
	for _, x := range d {
		if x != float32(math.Trunc(float64(x))) {
			return false
		}
	}
	return true
}

// guessModality: a NIfTI header does not say; guess from the description, the
// intent and the intensities (CT has air near -1000 HU).
func guessModality(h *header, v *volume.Volume) string {
	if v.Channels == 3 {
		return "OT"
	}
	d := " " + strings.ToUpper(h.descrip) + " "
	for _, m := range []string{"CT", "PET", "PT", "MR", "MRI", "US"} {
		if strings.Contains(d, " "+m+" ") || strings.Contains(d, " "+m+"_") || strings.Contains(d, "_"+m+" ") {
			switch m {
			case "PET":
				return "PT"
			case "MRI":
				return "MR"
			}
			return m
		}
	}
	if h.intentCode != 0 {
		return "OT"
	}
	w := volume.PercentileWindow(v.Data, 1, 1, 99)
	if lo, hi := w[0]-w[1]/2, w[0]+w[1]/2; lo <= -900 && lo >= -1100 && hi >= 100 {
		return "CT"
	}
	return "MR"
}
