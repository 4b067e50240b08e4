// Package metaimage reads ITK MetaImage files (.mha with the data attached, or
// a .mhd header with its ElementDataFile: one file, LIST, or a numbered slice
// pattern) into medsa's image model, and writes label maps as .mha / .mhd.
//
// MetaImage's world is ITK's LPS: TransformMatrix holds the direction of each
// index axis in turn (NDims values per axis, as ITK's MetaImageIO reads and
// writes it), Offset the position of voxel 0; both are converted to RAS+ here.
// AnatomicalOrientation is a derived label and is not used.
package metaimage

import (
	"bufio"
	"bytes"
	"compress/zlib"
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

// MaxHeader bounds the header text.
const MaxHeader = 16 << 20

// maxRatio bounds how far a compressed stream is trusted up front.
const maxRatio = 32

// Read opens a MetaImage (.mha, or .mhd and its data). Three channels become
// RGB; 4 uchar channels RGB without alpha; other counts show the first
// component; a 4th dimension opens its first volume; Volume.Notes says so.
func Read(path string) (*volume.Volume, error) { return ReadContext(context.Background(), path) }

// ReadContext is Read that stops reading voxels once ctx is done; the error
// then wraps ctx.Err().
func ReadContext(ctx context.Context, path string) (*volume.Volume, error) {
	v, err := readPath(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

// ReadBytes reads a MetaImage held in memory whose data are LOCAL (name is for
// messages); headers that name data files are refused.
func ReadBytes(name string, data []byte) (*volume.Volume, error) {
	v, err := readFrom(context.Background(), name, "", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return v, nil
}

func readPath(ctx context.Context, path string) (*volume.Volume, error) {
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
		return nil, errors.New("is a folder, not a MetaImage file")
	}
	return readFrom(ctx, path, filepath.Dir(path), f, st.Size())
}

// header is a parsed MetaImage header: keys in lower case.
type header struct {
	f      map[string]string
	list   []string // file names after ElementDataFile = LIST
	length int64    // bytes of header text (LOCAL data start here)
}

var errNotMeta = errors.New("not a MetaImage header (no NDims)")

func parseHeader(br *bufio.Reader) (*header, error) {
	h := &header{f: map[string]string{}}
	inList := false
	for n := 1; ; n++ {
		line, err := readLine(br, h)
		if err != nil && (err != io.EOF || line == "") {
			if err == io.EOF {
				if inList || h.f["elementdatafile"] != "" {
					return h, nil
				}
				return nil, errors.New("header ends without ElementDataFile")
			}
			return nil, fmt.Errorf("header line %d: %w", n, err)
		}
		t := strings.TrimSpace(line)
		if inList {
			if t != "" {
				h.list = append(h.list, t)
				if len(h.list) > rawio.MaxFiles {
					return nil, fmt.Errorf("ElementDataFile LIST names more than %d files", rawio.MaxFiles)
				}
			}
			if err == io.EOF {
				return h, nil
			}
			continue
		}
		if t == "" {
			continue
		}
		i := strings.IndexByte(t, '=')
		if i < 0 {
			if n == 1 {
				return nil, errNotMeta
			}
			return nil, fmt.Errorf("header line %d: %q is not Key = Value", n, trim(t))
		}
		k, v := strings.ToLower(strings.TrimSpace(t[:i])), strings.TrimSpace(t[i+1:])
		if n == 1 && !knownKey[k] {
			return nil, errNotMeta
		}
		h.f[k] = v
		if k == "elementdatafile" {
			if strings.HasPrefix(strings.ToUpper(v), "LIST") {
				inList = true
				continue
			}
			return h, nil // the last field; LOCAL data follow
		}
		if err == io.EOF {
			return nil, errors.New("header ends without ElementDataFile")
		}
	}
}

// knownKey are keys a MetaImage header may start with.
var knownKey = map[string]bool{
	"objecttype": true, "ndims": true, "objectsubtype": true, "comment": true, "name": true,
	"dimsize": true, "elementtype": true, "binarydata": true, "headersize": true, "formtypename": true,
}

func readLine(br *bufio.Reader, h *header) (string, error) {
	var sb strings.Builder
	for {
		frag, err := br.ReadSlice('\n')
		h.length += int64(len(frag))
		if h.length > MaxHeader {
			return "", fmt.Errorf("header longer than %d bytes", MaxHeader)
		}
		sb.Write(frag)
		if err == bufio.ErrBufferFull {
			continue
		}
		s := strings.TrimSuffix(strings.TrimSuffix(sb.String(), "\n"), "\r")
		if err == io.EOF && sb.Len() == 0 {
			return "", io.EOF
		}
		return s, err
	}
}

func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// keyNames spell keys in messages as headers write them.
var keyNames = map[string]string{
	"dimsize": "DimSize", "elementspacing": "ElementSpacing", "elementsize": "ElementSize",
	"offset": "Offset", "position": "Position", "origin": "Origin",
	"transformmatrix": "TransformMatrix", "rotation": "Rotation", "orientation": "Orientation",
}

func (h *header) floats(key string, n int) ([]float64, bool, error) {
	s, ok := h.f[key]
	if !ok {
		return nil, false, nil
	}
	if k, ok := keyNames[key]; ok {
		key = k
	}
	f := strings.Fields(s)
	if len(f) < n {
		return nil, true, fmt.Errorf("%s: %d values, want %d", key, len(f), n)
	}
	out := make([]float64, n)
	for i := range out {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, true, fmt.Errorf("%s: %q is not a number", key, f[i])
		}
		out[i] = v
	}
	return out, true, nil
}

func (h *header) bool(key string) bool {
	switch strings.ToLower(h.f[key]) {
	case "true", "1", "yes":
		return true
	}
	return false
}

// elementTypes maps MET_* names (and their _ARRAY forms) to sample kinds;
// MetaIO's LONG is 4 bytes.
var elementTypes = map[string]rawio.Kind{
	"MET_CHAR": rawio.Int8, "MET_ASCII_CHAR": rawio.Int8, "MET_UCHAR": rawio.Uint8,
	"MET_SHORT": rawio.Int16, "MET_USHORT": rawio.Uint16,
	"MET_INT": rawio.Int32, "MET_UINT": rawio.Uint32, "MET_LONG": rawio.Int32, "MET_ULONG": rawio.Uint32,
	"MET_LONG_LONG": rawio.Int64, "MET_ULONG_LONG": rawio.Uint64,
	"MET_FLOAT": rawio.Float32, "MET_DOUBLE": rawio.Float64,
}

func metType(k rawio.Kind) string {
	for n, x := range elementTypes {
		if x == k && n != "MET_ASCII_CHAR" && n != "MET_LONG" && n != "MET_ULONG" {
			return n
		}
	}
	return "MET_FLOAT"
}

type geom struct {
	size     [3]int
	channels int
	nvol     int64
	kind     rawio.Kind
	big      bool
	affine   volume.Affine
	notes    []string
}

func (h *header) geometry() (*geom, error) {
	g := &geom{}
	if ot, ok := h.f["objecttype"]; ok && !strings.EqualFold(ot, "Image") {
		return nil, fmt.Errorf("ObjectType %s is not an image", ot)
	}
	nd, err := strconv.Atoi(h.f["ndims"])
	if err != nil {
		return nil, fmt.Errorf("NDims %q is not a number", h.f["ndims"])
	}
	if nd < 2 || nd > 4 {
		return nil, fmt.Errorf("NDims %d: medsa opens 2D, 3D and 4D images", nd)
	}
	ds, ok, err := h.floats("dimsize", nd)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("header has no DimSize")
	}
	for i, d := range ds {
		if d < 1 || d > volume.MaxVoxels || d != math.Trunc(d) {
			return nil, fmt.Errorf("DimSize: axis %d has %v samples", i, d)
		}
		if i < 3 {
			g.size[i] = int(d)
		}
	}
	if nd == 2 {
		g.size[2] = 1
	}
	g.nvol = 1
	if nd == 4 {
		g.nvol = int64(ds[3])
		if g.nvol > 1 {
			g.notes = append(g.notes, fmt.Sprintf("4D image: showing volume 1 of %d", g.nvol))
		}
	}
	et := strings.ToUpper(strings.TrimSuffix(strings.ToUpper(h.f["elementtype"]), "_ARRAY"))
	k, ok := elementTypes[et]
	if !ok {
		return nil, fmt.Errorf("ElementType %q is not supported", h.f["elementtype"])
	}
	g.kind = k
	g.channels = 1
	if s, ok := h.f["elementnumberofchannels"]; ok {
		c, err := strconv.Atoi(s)
		if err != nil || c < 1 || c > 64 {
			return nil, fmt.Errorf("ElementNumberOfChannels %q is not a count 1..64", s)
		}
		g.channels = c
	}
	g.big = h.bool("binarydatabyteordermsb") || h.bool("elementbyteordermsb")

	spacing := make([]float64, nd)
	for i := range spacing {
		spacing[i] = 1
	}
	for _, key := range []string{"elementspacing", "elementsize"} { // ElementSize stands in when there is no spacing
		sp, ok, err := h.floats(key, nd)
		if err != nil {
			return nil, err
		}
		if ok {
			spacing = sp
			break
		}
	}
	origin := make([]float64, nd)
	for _, key := range []string{"offset", "position", "origin"} {
		o, ok, err := h.floats(key, nd)
		if err != nil {
			return nil, err
		}
		if ok {
			origin = o
			break
		}
	}
	dir := make([]float64, nd*nd)
	for i := 0; i < nd; i++ {
		dir[i*nd+i] = 1
	}
	for _, key := range []string{"transformmatrix", "rotation", "orientation"} {
		m, ok, err := h.floats(key, nd*nd)
		if err != nil {
			return nil, err
		}
		if ok {
			dir = m
			break
		}
	}
	// Column c of the LPS affine: axis c's direction (values c*nd .. c*nd+nd-1) times its spacing.
	var lps [3][4]float64
	sd := min(nd, 3)
	for c := 0; c < sd; c++ {
		for r := 0; r < sd; r++ {
			lps[r][c] = dir[c*nd+r] * spacing[c]
		}
	}
	for r := 0; r < sd; r++ {
		lps[r][3] = origin[r]
	}
	if nd == 2 {
		lps[2][2] = 1
	}
	flip := [3]float64{-1, -1, 1}
	g.affine = volume.Identity()
	for r := 0; r < 3; r++ {
		for c := 0; c < 4; c++ {
			g.affine[r][c] = flip[r] * lps[r][c]
			if g.affine[r][c] == 0 {
				g.affine[r][c] = 0 // no negative zeros
			}
		}
	}
	if err := g.affine.Validate(); err != nil {
		return nil, fmt.Errorf("TransformMatrix/ElementSpacing: %w", err)
	}
	return g, nil
}

func readFrom(ctx context.Context, name, dir string, r io.Reader, size int64) (*volume.Volume, error) {
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
	need := int64(g.size[0]) * int64(g.size[1]) * int64(g.size[2]) * int64(g.channels)
	// need < 2^31 (CheckSize); bounding the volume count keeps total and its byte size in an int64.
	if g.nvol < 1 || g.nvol > volume.MaxVoxels || need*g.nvol > 1<<59 {
		return nil, fmt.Errorf("%d volumes of %v: more values than a file can hold", g.nvol, g.size)
	}
	total := need * g.nvol
	if err := volume.CheckMemory(fmt.Sprintf("a %dx%dx%d image", g.size[0], g.size[1], g.size[2]), need*4); err != nil {
		return nil, err
	}
	src, err := h.source(dir, br, size, g.kind, total, need)
	if err != nil {
		return nil, err
	}
	defer src.close()
	var data []float32
	if h.f["binarydata"] != "" && !h.bool("binarydata") {
		data, err = rawio.ReadText(ctxio.NewReader(ctx, src.r), need, g.kind, src.upfront)
	} else {
		data, err = rawio.ReadBinary(ctxio.NewReader(ctx, src.r), need, g.kind, g.big, src.upfront)
	}
	if err != nil {
		return nil, err
	}
	if need == total && src.strict {
		if err := rawio.ExpectEnd(src.r); err != nil {
			return nil, err
		}
	}
	v := &volume.Volume{Size: g.size, Affine: g.affine, Modality: "OT", DataType: g.kind.Name(),
		Name: baseName(name), Source: name, Notes: g.notes}
	var note string
	v.Data, v.Channels, note = rawio.Channels(data, g.channels, g.channels == 4 && g.kind == rawio.Uint8)
	if note != "" {
		v.Notes = append(v.Notes, note)
	}
	if v.Channels == 3 && g.kind == rawio.Uint8 {
		v.DataType = "rgb24"
	}
	if m := h.f["modality"]; m != "" {
		switch strings.ToUpper(m) {
		case "MET_MOD_CT":
			v.Modality = "CT"
		case "MET_MOD_MR":
			v.Modality = "MR"
		case "MET_MOD_US":
			v.Modality = "US"
		}
	}
	v.Window = rawio.Window(v)
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return v, nil
}

func baseName(p string) string {
	b := filepath.Base(p)
	if e := strings.ToLower(filepath.Ext(b)); e == ".mha" || e == ".mhd" {
		return b[:len(b)-len(e)]
	}
	return b
}

type source struct {
	r       io.Reader
	upfront int64
	strict  bool
	close   func()
}

// source opens the data (LOCAL after the header, or the data file(s)) and
// checks the claim against what is on disk before anything large is allocated.
func (h *header) source(dir string, br *bufio.Reader, size int64, k rawio.Kind, total, need int64) (*source, error) {
	ascii := h.f["binarydata"] != "" && !h.bool("binarydata")
	compressed := h.bool("compresseddata")
	if ascii && compressed {
		return nil, errors.New("CompressedData with ASCII data is not supported")
	}
	csize := int64(-1)
	if s, ok := h.f["compresseddatasize"]; ok && compressed {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("CompressedDataSize %q is not a count", s)
		}
		csize = v
	}
	hdrSkip := int64(0)
	if s, ok := h.f["headersize"]; ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < -1 {
			return nil, fmt.Errorf("HeaderSize %q is not a count (or -1)", s)
		}
		hdrSkip = v
	}
	tsize := int64(k.Size())
	edf := h.f["elementdatafile"]
	f := strings.Fields(edf)
	var files []string
	switch {
	case len(f) == 0:
		return nil, errors.New("ElementDataFile is empty")
	case strings.EqualFold(edf, "LOCAL"):
		return piece(br, size-h.length, compressed, ascii, csize, 0, tsize, need, func() {})
	case strings.EqualFold(f[0], "LIST"):
		files = h.list
		if len(files) == 0 {
			return nil, errors.New("ElementDataFile LIST names no file")
		}
	case len(f) >= 4 && strings.Contains(f[0], "%"):
		var err error
		if files, err = rawio.PatternFields(f); err != nil {
			return nil, fmt.Errorf("ElementDataFile: %w", err)
		}
	default:
		files = []string{edf}
	}
	if dir == "" {
		return nil, fmt.Errorf("the data are in %s, not in this file", files[0])
	}
	for i, n := range files {
		if !filepath.IsAbs(n) {
			files[i] = filepath.Join(dir, n)
		}
	}
	if len(files) > 1 && compressed {
		return nil, errors.New("CompressedData with several data files is not supported")
	}
	if total*tsize%int64(len(files)) != 0 {
		return nil, fmt.Errorf("%d data files do not split %d bytes evenly", len(files), total*tsize)
	}
	per := total * tsize / int64(len(files))
	if per <= 0 {
		return nil, fmt.Errorf("%d data files for %d bytes", len(files), total*tsize)
	}
	needFiles := len(files)
	if !ascii {
		needFiles = int(min(int64(len(files)), (need*tsize+per-1)/per))
	}
	var onDisk int64
	for _, p := range files[:needFiles] {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("ElementDataFile: %w", err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("ElementDataFile %s is a folder", p)
		}
		onDisk += st.Size()
	}
	upfront := need
	switch {
	case compressed:
		upfront = min(need, (maxRatio*onDisk+64<<20)/tsize)
	case ascii:
		upfront = min(need, onDisk/2+1)
	case onDisk < int64(needFiles)*per+max(hdrSkip, 0)*int64(needFiles):
		return nil, fmt.Errorf("header claims %d bytes of %s but the data file(s) hold %d", int64(needFiles)*per, k.Name(), onDisk)
	}
	p := &rawio.Pieces{N: needFiles, Per: per, Names: files}
	if ascii {
		p.Per = -1
	}
	p.Open = func(i int) (io.Reader, bool, func(), error) {
		fh, err := os.Open(files[i])
		if err != nil {
			return nil, false, nil, err
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return nil, false, nil, err
		}
		skip := hdrSkip
		if skip == -1 { // the data are the last bytes of the file
			skip = st.Size() - per
			if compressed && csize >= 0 {
				skip = st.Size() - csize
			}
			if skip < 0 {
				fh.Close()
				return nil, false, nil, fmt.Errorf("%s: HeaderSize -1 but the file holds only %d bytes", filepath.Base(files[i]), st.Size())
			}
		}
		s, err := piece(bufio.NewReaderSize(fh, 64<<10), st.Size(), compressed, ascii, csize, skip, tsize, per/tsize, func() { fh.Close() })
		if err != nil {
			fh.Close()
			return nil, false, nil, fmt.Errorf("%s: %w", filepath.Base(files[i]), err)
		}
		return s.r, s.strict, s.close, nil
	}
	return &source{r: p, upfront: upfront, close: p.Close}, nil
}

// piece decodes one data stream of size bytes on disk (skip of them a header)
// of which need samples of tsize bytes are wanted.
func piece(br *bufio.Reader, size int64, compressed, ascii bool, csize, skip, tsize, need int64, done func()) (*source, error) {
	needBytes := need * tsize
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, br, skip); err != nil {
			return nil, fmt.Errorf("HeaderSize %d: %v", skip, err)
		}
		size -= skip
	}
	s := &source{r: br, close: done, upfront: need}
	switch {
	case compressed:
		var r io.Reader = br
		if csize >= 0 {
			if csize > size {
				return nil, fmt.Errorf("CompressedDataSize %d but the file holds %d bytes of data", csize, size)
			}
			r = io.LimitReader(br, csize)
			size = csize
		}
		// MetaIO writes zlib; gzip is read too (zlib's inflate detects either).
		zbr := bufio.NewReader(r)
		magic, _ := zbr.Peek(2)
		if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := kgzip.NewReader(zbr)
			if err != nil {
				return nil, fmt.Errorf("gzip data: %w", err)
			}
			s.r, s.close = zr, func() { zr.Close(); done() }
		} else {
			zr, err := zlib.NewReader(zbr)
			if err != nil {
				return nil, fmt.Errorf("CompressedData: zlib: %w", err)
			}
			s.r, s.close = zr, func() { zr.Close(); done() }
		}
		s.strict = true
		s.upfront = min(needBytes, maxRatio*size+64<<20) / tsize
	case ascii:
		// at least one character and a separator per value (the last may lack it)
		if need > size/2+1 {
			return nil, fmt.Errorf("header claims %d values but %d bytes of text can hold at most %d", need, size, size/2+1)
		}
	default:
		if size < needBytes {
			return nil, fmt.Errorf("header claims %d bytes but the file holds %d", needBytes, max(size, 0))
		}
	}
	return s, nil
}
