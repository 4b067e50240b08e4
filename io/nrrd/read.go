package nrrd

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/medsa/medsa/io/internal/ctxio"
	"github.com/medsa/medsa/io/internal/rawio"
	"github.com/medsa/medsa/io/volume"
)

// Read opens a NRRD image: an attached .nrrd, or a detached .nhdr with its data
// file(s). A leading vector/RGB axis becomes the channels (3 = RGB, 1 = grey;
// other counts show the first component); a 4th (list, time) axis opens its first
// volume; both say so in Volume.Notes.
func Read(path string) (*volume.Volume, error) { return ReadContext(context.Background(), path) }

// ReadContext is Read that stops reading voxels once ctx is done; the error
// then wraps ctx.Err().
func ReadContext(ctx context.Context, path string) (*volume.Volume, error) {
	img, err := readPath(ctx, path, false)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return img.vol, nil
}

// ReadBytes reads an attached NRRD held in memory (name is for messages);
// a detached header is refused, its data being elsewhere.
func ReadBytes(name string, data []byte) (*volume.Volume, error) {
	img, err := readFrom(context.Background(), name, "", bytes.NewReader(data), int64(len(data)), false)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return img.vol, nil
}

// image is what a read yields: the first volume, the header's key/value pairs,
// and, when all volumes were asked for, every volume's voxels.
type image struct {
	vol  *volume.Volume
	h    *header
	all  []float32 // every volume, channel 0 (only with all)
	nvol int
}

func readPath(ctx context.Context, path string, all bool) (*image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, errors.New("is a folder, not a NRRD file")
	}
	return readFrom(ctx, path, filepath.Dir(path), f, st.Size(), all)
}

// maxRatio bounds how far a compressed stream is trusted up front: beyond it the
// voxel array grows only as data actually arrives.
const maxRatio = 32

func readFrom(ctx context.Context, name, dir string, r io.Reader, size int64, all bool) (*image, error) {
	if size == 0 {
		return nil, errors.New("empty file")
	}
	br := bufio.NewReaderSize(r, 64<<10)
	h, err := parseHeader(br)
	if err != nil {
		return nil, err
	}
	g, err := h.geometry()
	if err != nil {
		return nil, err
	}
	if err := volume.CheckSize(g.size, g.channels); err != nil {
		return nil, err
	}
	perVol := int64(g.size[0]) * int64(g.size[1]) * int64(g.size[2]) * int64(g.channels)
	nvals := perVol // values to decode
	nvol := g.nvol
	// perVol and nvol are each below 2^31; their product (and x 8 bytes) fits an int64.
	if nvol > volume.MaxVoxels || perVol*nvol > 1<<59 {
		return nil, fmt.Errorf("%d volumes of %v: more values than a file can hold", nvol, g.size)
	}
	if all {
		// A label map's leading list axis holds layers (Slicer's overlapping segments).
		if g.channels > 1 && nvol > 1 {
			return nil, fmt.Errorf("%d components per voxel and %d volumes: a label map has one value per voxel", g.channels, nvol)
		}
		nvals *= nvol
		if nvals > volume.MaxVoxels {
			return nil, fmt.Errorf("%d volumes of %v exceed %d voxels", nvol, g.size, int64(volume.MaxVoxels))
		}
	}
	total := perVol * g.nvol // values the file holds
	if err := volume.CheckMemory(fmt.Sprintf("a %dx%dx%d image", g.size[0], g.size[1], g.size[2]), nvals*4); err != nil {
		return nil, err
	}
	src, err := h.source(name, dir, br, size, g.kind, total, nvals)
	if err != nil {
		return nil, err
	}
	defer src.close()
	var data []float32
	if h.encoding() == "ascii" {
		data, err = rawio.ReadText(ctxio.NewReader(ctx, src.r), nvals, g.kind, src.upfront)
	} else {
		data, err = rawio.ReadBinary(ctxio.NewReader(ctx, src.r), nvals, g.kind, g.big, src.upfront)
	}
	if err != nil {
		return nil, err
	}
	if nvals == total && src.strict {
		if err := rawio.ExpectEnd(src.r); err != nil {
			return nil, err
		}
	}
	img := &image{h: h, nvol: int(nvol)}
	vdata := data[:perVol]
	if all {
		img.all = data
		if c := g.channels; c > 1 {
			// layer-major, as a trailing volume axis would be
			img.all = make([]float32, len(data))
			nv := len(data) / c
			for v := 0; v < nv; v++ {
				for l := 0; l < c; l++ {
					img.all[l*nv+v] = data[v*c+l]
				}
			}
			img.nvol, g.channels = c, 1
			perVol = int64(nv)
		}
		vdata = img.all[:perVol:perVol]
	}
	v := &volume.Volume{Size: g.size, Affine: g.affine, Modality: "OT", DataType: g.kind.Name(),
		Name: baseName(name), Source: name}
	var note string
	if all {
		v.Data, v.Channels = vdata, 1
	} else {
		v.Data, v.Channels, note = rawio.Channels(vdata, g.channels, g.rgba)
	}
	if v.Channels == 3 && g.kind == rawio.Uint8 {
		v.DataType = "rgb24"
	}
	v.Notes = append(v.Notes, g.notes...)
	if note != "" {
		v.Notes = append(v.Notes, note)
	}
	if g.nvol > 1 && !all {
		v.Notes = append(v.Notes, fmt.Sprintf("%dD image: showing volume 1 of %d", g.dim, g.nvol))
	}
	v.Window = rawio.Window(v)
	if err := v.Validate(); err != nil {
		return nil, err
	}
	img.vol = v
	return img, nil
}

func baseName(p string) string {
	b := filepath.Base(p)
	l := strings.ToLower(b)
	for _, ext := range []string{".seg.nrrd", ".nrrd", ".nhdr"} {
		if strings.HasSuffix(l, ext) {
			return b[:len(b)-len(ext)]
		}
	}
	return b
}

// geom is what the header says about the grid.
type geom struct {
	dim      int
	size     [3]int
	channels int   // components per voxel in the file (the leading non-spatial axis)
	nvol     int64 // volumes along trailing axes
	rgba     bool
	kind     rawio.Kind
	big      bool
	affine   volume.Affine
	notes    []string
}

func (h *header) encoding() string {
	switch strings.ToLower(h.fields["encoding"]) {
	case "raw":
		return "raw"
	case "txt", "text", "ascii":
		return "ascii"
	case "hex":
		return "hex"
	case "gz", "gzip":
		return "gzip"
	case "bz2", "bzip2":
		return "bzip2"
	}
	return ""
}

func (h *header) geometry() (*geom, error) {
	g := &geom{}
	for _, f := range []string{"type", "dimension", "sizes", "encoding"} {
		if _, ok := h.fields[f]; !ok {
			return nil, fmt.Errorf("header has no %q field", f)
		}
	}
	t := strings.Join(strings.Fields(strings.ToLower(h.fields["type"])), " ")
	k, ok := typeNames[t]
	if !ok {
		if t == "block" {
			return nil, errors.New("type block (opaque records) is not an image")
		}
		return nil, fmt.Errorf("type %q is not a NRRD scalar type", h.fields["type"])
	}
	g.kind = k
	if h.encoding() == "" {
		return nil, fmt.Errorf("encoding %q is not supported (raw, gzip, bzip2, ascii, hex)", h.fields["encoding"])
	}
	switch e := strings.ToLower(h.fields["endian"]); e {
	case "big":
		g.big = true
	case "little", "":
	default:
		return nil, fmt.Errorf("endian %q is neither little nor big", h.fields["endian"])
	}
	dim, err := strconv.Atoi(strings.TrimSpace(h.fields["dimension"]))
	if err != nil || dim < 1 || dim > 16 {
		return nil, fmt.Errorf("dimension %q is not a number 1..16", h.fields["dimension"])
	}
	if dim < 2 || dim > 4 {
		return nil, fmt.Errorf("dimension %d: medsa opens 2D, 3D and 4D images", dim)
	}
	g.dim = dim
	sz, err := ints("sizes", h.fields["sizes"], dim)
	if err != nil {
		return nil, err
	}
	for i, s := range sz {
		if s <= 0 || s > volume.MaxVoxels {
			return nil, fmt.Errorf("sizes: axis %d has %d samples", i, s)
		}
	}
	kinds := make([]string, dim)
	if s, ok := h.fields["kinds"]; ok {
		f := strings.Fields(s)
		if len(f) != dim {
			return nil, fmt.Errorf("kinds: %d values, want %d", len(f), dim)
		}
		copy(kinds, f)
	}

	// Which axes are spatial: those with a space direction when the header has a
	// space, else those whose kind says so (all when there are no kinds).
	sp, hasSpace := space{flip: [3]float64{-1, -1, 1}, dim: 3, assumed: true}, false
	if name, ok := h.fields["space"]; ok {
		s, known := spaces[strings.ToLower(name)]
		if !known {
			return nil, fmt.Errorf("space %q is not a NRRD space", name)
		}
		sp, hasSpace = s, true
		if s.assumed {
			g.notes = append(g.notes, fmt.Sprintf("space %s: axes read as LPS (as ITK does)", name))
		}
	}
	if d, ok := h.fields["space dimension"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(d))
		if err != nil || n < 1 || n > 4 {
			return nil, fmt.Errorf("space dimension %q is not a number 1..4", d)
		}
		if hasSpace && n != sp.dim {
			return nil, fmt.Errorf("space dimension %d contradicts space %s (%d)", n, h.fields["space"], sp.dim)
		}
		if !hasSpace {
			sp.dim, hasSpace = n, true
			g.notes = append(g.notes, "no named space: axes read as LPS (as ITK does)")
		}
	}
	if sd, ok := h.fields["space directions"]; ok && !hasSpace {
		// no space field at all: the vectors' length says the space dimension
		if i, j := strings.IndexByte(sd, '('), strings.IndexByte(sd, ')'); i >= 0 && j > i {
			sp.dim, hasSpace = strings.Count(sd[i:j], ",")+1, true
			g.notes = append(g.notes, "no named space: axes read as LPS (as ITK does)")
		}
	}
	var dirs [][]float64
	if hasSpace {
		s, ok := h.fields["space directions"]
		if !ok {
			return nil, errors.New("a space but no space directions")
		}
		if dirs, err = vectors("space directions", s, sp.dim); err != nil {
			return nil, err
		}
		if len(dirs) != dim {
			return nil, fmt.Errorf("space directions: %d entries, want %d", len(dirs), dim)
		}
	}
	spatial := make([]bool, dim)
	for a := 0; a < dim; a++ {
		if hasSpace {
			spatial[a] = dirs[a] != nil
			continue
		}
		s, known := spatialKind(kinds[a])
		spatial[a] = s || !known
	}
	// Layout: [channels] spatial×2..3 [volumes...].
	a := 0
	g.channels = 1
	if !spatial[0] {
		g.channels = int(sz[0])
		g.rgba = strings.EqualFold(kinds[0], "RGBA-color")
		a = 1
	}
	var sax []int
	for ; a < dim && spatial[a] && len(sax) < 3; a++ {
		sax = append(sax, a)
	}
	if len(sax) < 2 {
		return nil, fmt.Errorf("%d spatial axes (kinds %v): medsa opens 2D and 3D images", len(sax), kinds)
	}
	g.nvol = 1
	for ; a < dim; a++ {
		if hasSpace && spatial[a] && sp.dim <= 3 {
			return nil, fmt.Errorf("axis %d is spatial but follows a non-spatial axis: unsupported layout", a)
		}
		// Bounded at each step: the product of several list axes must not wrap.
		if sz[a] > 0 && g.nvol > volume.MaxVoxels/sz[a] {
			return nil, fmt.Errorf("sizes %v: %d values along the non-spatial axes exceed %d", sz, g.nvol*sz[a], int64(volume.MaxVoxels))
		}
		g.nvol *= sz[a]
	}
	if g.nvol > 1 && dim == 4 && sp.dim == 4 {
		g.notes = append(g.notes, "space with time: the 4th axis is time")
	}
	for i, ax := range sax {
		g.size[i] = int(sz[ax])
	}
	if len(sax) == 2 {
		g.size[2] = 1
	}

	// The affine, in the file's space, then into RAS+.
	var cols [3][3]float64
	var org [3]float64
	if hasSpace {
		for i, ax := range sax {
			for r := 0; r < min(3, sp.dim); r++ {
				cols[i][r] = dirs[ax][r]
			}
		}
		if s, ok := h.fields["space origin"]; ok {
			o, err := vectors("space origin", s, sp.dim)
			if err != nil {
				return nil, err
			}
			if len(o) != 1 || o[0] == nil {
				return nil, errors.New("space origin: want one vector")
			}
			for r := 0; r < min(3, sp.dim); r++ {
				org[r] = o[0][r]
			}
		}
	} else {
		spc := make([]float64, dim)
		for i := range spc {
			spc[i] = math.NaN()
		}
		if s, ok := h.fields["spacings"]; ok {
			if spc, err = floats("spacings", s, dim); err != nil {
				return nil, err
			}
		}
		var mins []float64
		if s, ok := h.fields["axis mins"]; ok {
			if mins, err = floats("axis mins", s, dim); err != nil {
				return nil, err
			}
		}
		for i, ax := range sax {
			d := spc[ax]
			if math.IsNaN(d) || math.IsInf(d, 0) || d == 0 {
				d = 1
			}
			cols[i][i] = d
			if mins != nil && !math.IsNaN(mins[ax]) && !math.IsInf(mins[ax], 0) {
				org[i] = mins[ax]
			}
		}
		if _, ok := h.fields["spacings"]; !ok {
			g.notes = append(g.notes, "no space or spacings: 1 mm voxels")
		}
	}
	if len(sax) == 2 {
		// The slice normal, unit length, right-handed with the two in-plane axes.
		c := [3]float64{
			cols[0][1]*cols[1][2] - cols[0][2]*cols[1][1],
			cols[0][2]*cols[1][0] - cols[0][0]*cols[1][2],
			cols[0][0]*cols[1][1] - cols[0][1]*cols[1][0],
		}
		n := math.Sqrt(c[0]*c[0] + c[1]*c[1] + c[2]*c[2])
		if n == 0 || math.IsNaN(n) {
			return nil, errors.New("space directions: the two spatial axes are parallel or zero")
		}
		cols[2] = [3]float64{c[0] / n, c[1] / n, c[2] / n}
	}
	g.affine = volume.Identity()
	for r := 0; r < 3; r++ {
		for c := 0; c < 3; c++ {
			g.affine[r][c] = sp.flip[r] * cols[c][r]
		}
		g.affine[r][3] = sp.flip[r] * org[r]
	}
	if err := g.affine.Validate(); err != nil {
		return nil, fmt.Errorf("space directions: %w", err)
	}
	return g, nil
}

// source is the decoded data stream and how far to trust its size.
type source struct {
	r       io.Reader
	upfront int64 // values to allocate before data arrive
	strict  bool  // the stream must end where the data do (compressed)
	close   func()
}

// source opens the data: after the header (attached) or in the data file(s),
// applying line skip (before decompression) and byte skip (after), and checks the
// claim against the bytes on disk before anything large is allocated.
func (h *header) source(name, dir string, br *bufio.Reader, size int64, k rawio.Kind, total, need int64) (*source, error) {
	enc := h.encoding()
	lineSkip, byteSkip := int64(0), int64(0)
	if s, ok := h.fields["line skip"]; ok {
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("line skip %q is not a count", s)
		}
		lineSkip = v
	}
	if s, ok := h.fields["byte skip"]; ok {
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || v < -1 {
			return nil, fmt.Errorf("byte skip %q is not a count (or -1)", s)
		}
		if v == -1 && enc != "raw" {
			return nil, fmt.Errorf("byte skip -1 (data at the end of the file) needs raw encoding, not %s", enc)
		}
		byteSkip = v
	}
	files, err := h.dataFiles(dir)
	if err != nil {
		return nil, err
	}
	tsize := int64(k.Size())
	if len(files) == 0 {
		// attached: the data follow the header in this file
		if !h.attached {
			return nil, errors.New("header ends without a blank line and names no data file")
		}
		return openPiece(name, br, size-h.length, enc, lineSkip, byteSkip, total*tsize, need, k, func() {})
	}
	if dir == "" {
		return nil, fmt.Errorf("a detached header: the data are in %s", files[0])
	}
	if total <= 0 || total > math.MaxInt64/tsize || need*tsize <= 0 {
		return nil, fmt.Errorf("%d values of %d bytes: not a size a file can hold", total, tsize)
	}
	if total*tsize%int64(len(files)) != 0 {
		return nil, fmt.Errorf("%d data files do not split %d bytes evenly", len(files), total*tsize)
	}
	per := total * tsize / int64(len(files))
	if per <= 0 {
		return nil, fmt.Errorf("%d data files for %d bytes", len(files), total*tsize)
	}
	needFiles := len(files)
	if enc != "ascii" { // only the files holding the needed values are opened
		needFiles = int(min(int64(len(files)), (need*tsize+per-1)/per))
	}
	// Bound the allocation by what the needed files can hold.
	var upfront int64
	var onDisk int64
	for _, f := range files[:needFiles] {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("data file: %w", err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("data file %s is a folder", f)
		}
		onDisk += st.Size()
	}
	switch enc {
	case "raw":
		if onDisk < int64(needFiles)*per {
			return nil, fmt.Errorf("header claims %d bytes of %s but the data file(s) hold %d", int64(needFiles)*per, k.Name(), onDisk)
		}
		upfront = need
	case "hex", "ascii":
		upfront = min(need, onDisk/2+1)
	default:
		upfront = min(need, (maxRatio*onDisk+64<<20)/tsize)
	}
	p := &rawio.Pieces{N: needFiles, Per: per, Names: files}
	if enc == "ascii" {
		p.Per = -1 // text: each file to its end
	}
	p.Open = func(i int) (io.Reader, bool, func(), error) {
		f, err := os.Open(files[i])
		if err != nil {
			return nil, false, nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, false, nil, err
		}
		s, err := openPiece(files[i], bufio.NewReaderSize(f, 64<<10), st.Size(), enc, lineSkip, byteSkip, per/tsize, per/tsize, k, func() { f.Close() })
		if err != nil {
			f.Close()
			return nil, false, nil, fmt.Errorf("%s: %w", filepath.Base(files[i]), err)
		}
		return s.r, s.strict, s.close, nil
	}
	return &source{r: p, upfront: upfront, strict: false, close: p.Close}, nil
}

// openPiece decodes one data stream of size bytes on disk holding total bytes of
// samples (need of them wanted).
func openPiece(name string, br *bufio.Reader, size int64, enc string, lineSkip, byteSkip, totalBytes, need int64, k rawio.Kind, done func()) (*source, error) {
	tsize := int64(k.Size())
	if enc == "ascii" {
		tsize = 1
	}
	for i := int64(0); i < lineSkip; i++ {
		n, err := skipLine(br)
		size -= n
		if err != nil {
			return nil, fmt.Errorf("line skip %d: the data end after %d lines", lineSkip, i)
		}
	}
	s := &source{close: done}
	switch enc {
	case "raw":
		if byteSkip == -1 {
			byteSkip = size - totalBytes
			if byteSkip < 0 {
				return nil, fmt.Errorf("header claims %d bytes of %s but the file holds %d", totalBytes, k.Name(), size)
			}
		}
		if size-byteSkip < need*tsize {
			return nil, fmt.Errorf("header claims %d bytes of %s but the file holds %d after the header", need*tsize, k.Name(), max(0, size-byteSkip))
		}
		if _, err := io.CopyN(io.Discard, br, byteSkip); err != nil {
			return nil, fmt.Errorf("byte skip %d: %v", byteSkip, err)
		}
		s.r, s.upfront = br, need
		return s, nil
	case "ascii":
		// at least one character and a separator per value (the last may lack it)
		if need > size/2+1 {
			return nil, fmt.Errorf("header claims %d values but %d bytes of text can hold at most %d", need, size, size/2+1)
		}
		s.r, s.upfront = br, need
	case "hex":
		if need*tsize*2 > size {
			return nil, fmt.Errorf("header claims %d bytes of %s but %d hex digits hold %d", need*tsize, k.Name(), size, size/2)
		}
		s.r, s.upfront = &hexReader{r: br}, need
	case "gzip":
		zr, err := kgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(true)
		s.r, s.strict = zr, true
		s.close = func() { zr.Close(); done() }
		s.upfront = min(need, (maxRatio*size+64<<20)/tsize)
	case "bzip2":
		s.r, s.strict = bzip2.NewReader(br), true
		s.upfront = min(need, (maxRatio*size+64<<20)/tsize)
	}
	if byteSkip > 0 {
		if _, err := io.CopyN(io.Discard, s.r, byteSkip); err != nil {
			s.close()
			return nil, fmt.Errorf("byte skip %d: %v", byteSkip, err)
		}
	}
	return s, nil
}

func skipLine(br *bufio.Reader) (int64, error) {
	var n int64
	for {
		frag, err := br.ReadSlice('\n')
		n += int64(len(frag))
		if err == bufio.ErrBufferFull {
			continue
		}
		return n, err
	}
}

// hexReader decodes two hex digits per byte, skipping white space.
type hexReader struct {
	r   *bufio.Reader
	err error
}

func (h *hexReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		var b byte
		for d := 0; d < 2; {
			c, err := h.r.ReadByte()
			if err != nil {
				if n > 0 {
					return n, nil
				}
				return 0, err
			}
			var v byte
			switch {
			case c >= '0' && c <= '9':
				v = c - '0'
			case c >= 'a' && c <= 'f':
				v = c - 'a' + 10
			case c >= 'A' && c <= 'F':
				v = c - 'A' + 10
			case c == ' ' || c == '\n' || c == '\r' || c == '\t':
				continue
			default:
				return n, fmt.Errorf("hex data: %q is not a hex digit", c)
			}
			b = b<<4 | v
			d++
		}
		p[n] = b
		n++
	}
	return n, nil
}

// dataFiles resolves "data file": one name, "LIST [subdim]" (names on the
// following lines), or "format min max step [subdim]"; nil when attached.
func (h *header) dataFiles(dir string) ([]string, error) {
	s, ok := h.fields["data file"]
	if !ok {
		return nil, nil
	}
	f := strings.Fields(s)
	var names []string
	switch {
	case len(f) == 0:
		return nil, errors.New("data file: empty")
	case f[0] == "LIST":
		if len(f) > 2 {
			return nil, fmt.Errorf("data file: %q", s)
		}
		names = h.list
		if len(names) == 0 {
			return nil, errors.New("data file: LIST names no file")
		}
	case len(f) >= 4 && strings.Contains(f[0], "%"):
		var err error
		if names, err = rawio.PatternFields(f); err != nil {
			return nil, fmt.Errorf("data file: %w", err)
		}
	default:
		names = []string{s}
	}
	out := make([]string, len(names))
	for i, n := range names {
		if n == "" {
			return nil, fmt.Errorf("data file %d: empty name", i+1)
		}
		if !filepath.IsAbs(n) && dir != "" {
			n = filepath.Join(dir, n)
		}
		out[i] = n
	}
	return out, nil
}
