// Package rawio decodes and encodes the plain sample arrays that NRRD and
// MetaImage carry (binary in either byte order, or ASCII text) into medsa's
// float32 voxels, with allocation bounded by what the input actually holds.
package rawio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/medsa/medsa/io/internal/ctxio"
	"github.com/medsa/medsa/io/volume"
)

// Kind is a scalar sample type.
type Kind int

// The supported sample types.
const (
	Invalid Kind = iota
	Int8
	Uint8
	Int16
	Uint16
	Int32
	Uint32
	Int64
	Uint64
	Float32
	Float64
)

var kindInfo = [...]struct {
	size    int
	name    string
	integer bool
	lo, hi  float64
}{
	Invalid: {0, "invalid", false, 0, 0},
	Int8:    {1, "int8", true, -128, 127},
	Uint8:   {1, "uint8", true, 0, 255},
	Int16:   {2, "int16", true, -32768, 32767},
	Uint16:  {2, "uint16", true, 0, 65535},
	Int32:   {4, "int32", true, -2147483648, 2147483647},
	Uint32:  {4, "uint32", true, 0, 4294967295},
	Int64:   {8, "int64", true, -9.2e18, 9.2e18},
	Uint64:  {8, "uint64", true, 0, 1.8e19},
	Float32: {4, "float32", false, -math.MaxFloat32, math.MaxFloat32},
	Float64: {8, "float64", false, -math.MaxFloat64, math.MaxFloat64},
}

func (k Kind) valid() bool { return k > Invalid && int(k) < len(kindInfo) }

// Size is the number of bytes of one sample.
func (k Kind) Size() int {
	if !k.valid() {
		return 0
	}
	return kindInfo[k].size
}

// Name is medsa's datatype name ("int16", "float32", ...), as io/nifti uses.
func (k Kind) Name() string {
	if !k.valid() {
		return "invalid"
	}
	return kindInfo[k].name
}

// Integer reports an integer type.
func (k Kind) Integer() bool { return k.valid() && kindInfo[k].integer }

// KindByName is the inverse of Name (Invalid when unknown).
func KindByName(name string) Kind {
	for k := Int8; k <= Float64; k++ {
		if kindInfo[k].name == name {
			return k
		}
	}
	return Invalid
}

// Decode converts len(dst) samples of kind k from src (at least len(dst)*k.Size() bytes).
func Decode(dst []float32, src []byte, k Kind, big bool) {
	var bo binary.ByteOrder = binary.LittleEndian
	if big {
		bo = binary.BigEndian
	}
	switch k {
	case Uint8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case Int8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case Int16:
		for i := range dst {
			dst[i] = float32(int16(bo.Uint16(src[2*i:])))
		}
	case Uint16:
		for i := range dst {
			dst[i] = float32(bo.Uint16(src[2*i:]))
		}
	case Int32:
		for i := range dst {
			dst[i] = float32(int32(bo.Uint32(src[4*i:])))
		}
	case Uint32:
		for i := range dst {
			dst[i] = float32(bo.Uint32(src[4*i:]))
		}
	case Int64:
		for i := range dst {
			dst[i] = float32(int64(bo.Uint64(src[8*i:])))
		}
	case Uint64:
		for i := range dst {
			dst[i] = float32(bo.Uint64(src[8*i:]))
		}
	case Float32:
		for i := range dst {
			dst[i] = math.Float32frombits(bo.Uint32(src[4*i:]))
		}
	case Float64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(bo.Uint64(src[8*i:])))
		}
	}
}

// Encode stores src as kind k (rounded and clamped for integer kinds) into dst
// (len(src)*k.Size() bytes).
func Encode(dst []byte, src []float32, k Kind, big bool) {
	var bo binary.ByteOrder = binary.LittleEndian
	if big {
		bo = binary.BigEndian
	}
	clamp := func(x float32) float64 {
		f := math.Round(float64(x))
		if math.IsNaN(f) {
			return 0
		}
		return math.Max(kindInfo[k].lo, math.Min(kindInfo[k].hi, f))
	}
	switch k {
	case Uint8:
		for i, x := range src {
			dst[i] = uint8(clamp(x))
		}
	case Int8:
		for i, x := range src {
			dst[i] = uint8(int8(clamp(x)))
		}
	case Int16:
		for i, x := range src {
			bo.PutUint16(dst[2*i:], uint16(int16(clamp(x))))
		}
	case Uint16:
		for i, x := range src {
			bo.PutUint16(dst[2*i:], uint16(clamp(x)))
		}
	case Int32:
		for i, x := range src {
			bo.PutUint32(dst[4*i:], uint32(int32(clamp(x))))
		}
	case Uint32:
		for i, x := range src {
			bo.PutUint32(dst[4*i:], uint32(clamp(x)))
		}
	case Int64:
		for i, x := range src {
			bo.PutUint64(dst[8*i:], uint64(int64(clamp(x))))
		}
	case Uint64:
		for i, x := range src {
			bo.PutUint64(dst[8*i:], uint64(clamp(x)))
		}
	case Float32:
		for i, x := range src {
			bo.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	case Float64:
		for i, x := range src {
			bo.PutUint64(dst[8*i:], math.Float64bits(float64(x)))
		}
	}
}

// EncodeLabels stores labels as Uint8 or Uint16 (little endian unless big).
func EncodeLabels(dst []byte, src []uint16, k Kind, big bool) {
	if k == Uint8 {
		for i, l := range src {
			dst[i] = uint8(l)
		}
		return
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if big {
		bo = binary.BigEndian
	}
	for i, l := range src {
		bo.PutUint16(dst[2*i:], l)
	}
}

// LabelKind is uint8 when every label fits, else uint16.
func LabelKind(m *volume.LabelMap) Kind {
	if m.MaxLabel() > 255 {
		return Uint16
	}
	return Uint8
}

// VolumeKind picks the stored type for v: an integer source keeps its type when
// every value is integral and fits (else int16/int32 when they fit), colour
// stays uint8 when it fits, and anything else is float32.
func VolumeKind(v *volume.Volume) Kind {
	src := KindByName(v.DataType)
	if v.Channels == 3 && (src == Invalid || v.DataType == "rgb24" || v.DataType == "rgba32") {
		src = Uint8
	}
	if !src.Integer() {
		return Float32
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range v.Data {
		f := float64(x)
		if f != math.Trunc(f) { // also catches NaN and Inf
			return Float32
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	if src == Int64 || src == Uint64 {
		src = Int32 // float32 data fits int32 or not at all, and 64-bit types upset many tools
	}
	for _, k := range []Kind{src, Int16, Int32} {
		if lo >= kindInfo[k].lo && hi <= kindInfo[k].hi {
			return k
		}
	}
	return Float32
}

// ErrShort and ErrLong describe a data stream that does not hold exactly what the header claims.
var (
	ErrShort = errors.New("image data shorter than the header declares")
	ErrLong  = errors.New("image data longer than the header declares")
)

// ReadBinary streams n samples of kind k from r into a new slice. It allocates at
// most upfront values at first and grows only as data actually arrives (never
// past n), so a header that lies about a compressed stream costs at most about
// twice what the stream really holds.
func ReadBinary(r io.Reader, n int64, k Kind, big bool, upfront int64) ([]float32, error) {
	size := int64(k.Size())
	if size == 0 {
		return nil, errors.New("invalid sample type")
	}
	const chunk = 1 << 20
	buf := make([]byte, min(int64(chunk/size*size), n*size))
	dst := make([]float32, 0, max(0, min(n, upfront)))
	var done int64
	for done < n {
		want := min(int64(len(buf))/size, n-done)
		got, err := io.ReadFull(r, buf[:want*size])
		if ctxio.Stopped(err) {
			return nil, fmt.Errorf("reading stopped: %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %d of %d bytes (%v)", ErrShort, done*size+int64(got), n*size, err)
		}
		dst = grow(dst, int(want), n)
		Decode(dst[done:done+want], buf[:got], k, big)
		done += want
	}
	return dst, nil
}

// grow extends dst by add values, reallocating (at most doubling) within limit.
func grow(dst []float32, add int, limit int64) []float32 {
	need := len(dst) + add
	if need > cap(dst) {
		c := int(min(limit, int64(max(need, 2*cap(dst)))))
		g := make([]float32, len(dst), c)
		copy(g, dst)
		dst = g
	}
	return dst[:need]
}

// ReadText parses n whitespace- (or comma-) separated numbers from r. Integer
// kinds must hold integers; values are stored as float32.
func ReadText(r io.Reader, n int64, k Kind, upfront int64) ([]float32, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	dst := make([]float32, 0, max(0, min(n, upfront)))
	tok := make([]byte, 0, 64)
	for int64(len(dst)) < n {
		tok = tok[:0]
		for {
			c, err := br.ReadByte()
			if ctxio.Stopped(err) {
				return nil, fmt.Errorf("reading stopped: %w", err)
			}
			if err != nil {
				if len(tok) > 0 {
					break
				}
				return nil, fmt.Errorf("%w: %d of %d values", ErrShort, len(dst), n)
			}
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '\f' || c == '\v' {
				if len(tok) > 0 {
					break
				}
				continue
			}
			if len(tok) >= 64 {
				return nil, fmt.Errorf("value %d: a number longer than 64 characters", len(dst)+1)
			}
			tok = append(tok, c)
		}
		f, err := strconv.ParseFloat(string(tok), 64)
		if err != nil {
			return nil, fmt.Errorf("value %d: %q is not a number", len(dst)+1, tok)
		}
		if k.Integer() && f != math.Trunc(f) {
			return nil, fmt.Errorf("value %d: %q is not an integer (type %s)", len(dst)+1, tok, k.Name())
		}
		dst = grow(dst, 1, n)
		dst[len(dst)-1] = float32(f)
	}
	return dst, nil
}

// ExpectEnd returns ErrLong when r still holds data.
func ExpectEnd(r io.Reader) error {
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n > 0 {
			return ErrLong
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Channels reduces interleaved data of c components per voxel to the channel
// count medsa keeps: 3 stay RGB; 4 become RGB without alpha when rgba; anything
// else keeps component 0. It works in place and returns the kept channels and a
// note for the user ("" when nothing was dropped).
func Channels(data []float32, c int, rgba bool) ([]float32, int, string) {
	switch {
	case c == 1 || c == 3:
		return data, c, ""
	case c == 4 && rgba:
		n := len(data) / 4
		for v := 0; v < n; v++ {
			data[3*v], data[3*v+1], data[3*v+2] = data[4*v], data[4*v+1], data[4*v+2]
		}
		return data[:3*n], 3, "RGBA image: alpha dropped"
	}
	n := len(data) / c
	for v := 0; v < n; v++ {
		data[v] = data[c*v]
	}
	return data[:n], 1, fmt.Sprintf("%d components per voxel: showing component 1 of %d", c, c)
}

// Window is the default display window every medsa reader gives: the 0.5..99.5
// percentiles of a grey image, the full 8-bit range of a colour one.
func Window(v *volume.Volume) [2]float64 {
	if v.Channels == 3 {
		return [2]float64{127.5, 255}
	}
	return volume.PercentileWindow(v.Data, 1, 0.5, 99.5)
}

// Piece opens the i-th data file of a multi-file image: r yields its decoded
// bytes (after any skip), strict says the stream must end exactly at its share
// (compressed data), and done releases it.
type Piece func(i int) (r io.Reader, strict bool, done func(), err error)

// Pieces reads n data files in order, each holding exactly per decoded bytes,
// as one stream; a file that is short (or, when strict, long) is an error
// naming it. A negative per reads each file to its end (text data), with a
// line break between files so numbers never run together.
type Pieces struct {
	N     int
	Per   int64
	Open  Piece
	Names []string // for messages; may be nil

	i    int
	left int64
	cur  io.Reader
	st   bool
	done func()
}

func (p *Pieces) name(i int) string {
	if i < len(p.Names) {
		return p.Names[i]
	}
	return fmt.Sprintf("data file %d", i+1)
}

func (p *Pieces) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if p.i >= p.N {
				return 0, io.EOF
			}
			r, strict, done, err := p.Open(p.i)
			if err != nil {
				return 0, err
			}
			p.cur, p.st, p.done, p.left = r, strict, done, p.Per
		}
		if p.Per < 0 {
			if len(b) == 0 {
				return 0, nil
			}
			n, err := p.cur.Read(b)
			if err == io.EOF {
				p.Close()
				p.i++
				if n == 0 {
					b[0] = '\n'
					return 1, nil
				}
				return n, nil
			}
			if err != nil {
				return n, fmt.Errorf("%s: %w", p.name(p.i), err)
			}
			return n, nil
		}
		if p.left == 0 {
			var err error
			if p.st {
				if err = ExpectEnd(p.cur); err != nil {
					err = fmt.Errorf("%s: %w", p.name(p.i), err)
				}
			}
			p.Close()
			p.i++
			if err != nil {
				return 0, err
			}
			continue
		}
		if len(b) == 0 {
			return 0, nil
		}
		n, err := p.cur.Read(b[:min(int64(len(b)), p.left)])
		p.left -= int64(n)
		if err == io.EOF && p.left > 0 {
			if n > 0 {
				return n, nil
			}
			return 0, fmt.Errorf("%s: %w: %d of %d bytes", p.name(p.i), ErrShort, p.Per-p.left, p.Per)
		}
		if err != nil && err != io.EOF {
			return n, fmt.Errorf("%s: %w", p.name(p.i), err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Close releases the file being read.
func (p *Pieces) Close() {
	if p.done != nil {
		p.done()
	}
	p.cur, p.done = nil, nil
}

// MaxFiles bounds how many data files a header may name.
const MaxFiles = 1 << 16

// PatternFields expands a header's "FORMAT MIN MAX STEP" data-file field (split on
// white space; fields past the fourth are ignored) with Pattern.
func PatternFields(f []string) ([]string, error) {
	if len(f) < 4 {
		return nil, fmt.Errorf("%q: want FORMAT MIN MAX STEP", f)
	}
	var n [3]int
	for i := range n {
		v, err := strconv.Atoi(f[i+1])
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", f[i+1])
		}
		n[i] = v
	}
	return Pattern(f[0], n[0], n[1], n[2])
}

// Pattern expands a numbered file-name format ("slice%03d.raw") over min..max
// (inclusive) by step, as NRRD and MetaImage headers write it. The format must
// hold exactly one integer verb (%d or %i, with flags and width).
func Pattern(format string, lo, hi, step int) ([]string, error) {
	verbs := 0
	goFmt := make([]byte, 0, len(format))
	for i := 0; i < len(format); i++ {
		c := format[i]
		goFmt = append(goFmt, c)
		if c != '%' {
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			goFmt = append(goFmt, '%')
			i++
			continue
		}
		j := i + 1
		for j < len(format) && (format[j] == '0' || format[j] == '-' || format[j] == '+' || format[j] == ' ' || (format[j] >= '1' && format[j] <= '9')) {
			j++
		}
		if j >= len(format) || (format[j] != 'd' && format[j] != 'i' && format[j] != 'u') || j-i > 4 {
			return nil, fmt.Errorf("file name format %q: only an integer conversion like %%03d is supported", format)
		}
		goFmt = append(goFmt, format[i+1:j]...)
		goFmt = append(goFmt, 'd')
		i = j
		verbs++
	}
	if verbs != 1 {
		return nil, fmt.Errorf("file name format %q needs exactly one integer conversion like %%03d", format)
	}
	if step == 0 || (hi-lo)/step < 0 {
		return nil, fmt.Errorf("file numbers %d to %d in steps of %d name no file", lo, hi, step)
	}
	if (hi-lo)/step >= MaxFiles {
		return nil, fmt.Errorf("file numbers %d to %d in steps of %d name more than %d files", lo, hi, step, MaxFiles)
	}
	var out []string
	for i := lo; (step > 0 && i <= hi) || (step < 0 && i >= hi); i += step {
		out = append(out, fmt.Sprintf(string(goFmt), i))
	}
	return out, nil
}
