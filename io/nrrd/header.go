// Package nrrd reads NRRD images (attached .nrrd and detached .nhdr + data
// files, as teem, ITK and 3D Slicer write them) into medsa's image model, and
// writes label maps as .nrrd and as Slicer segmentations (.seg.nrrd).
//
// World: NRRD's named spaces (LPS, RAS, LAS, scanner-xyz, ...) are converted to
// RAS+ once, here; space directions are kept exactly (oblique stays oblique).
// A file without a space is read as ITK reads it: its axes in LPS.
package nrrd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/medsa/medsa/io/internal/rawio"
)

// MaxHeader bounds the header text (a Slicer segmentation with hundreds of
// segments and tags is well under 1 MB).
const MaxHeader = 16 << 20

var errNotNRRD = errors.New("not a NRRD file (no NRRD000x magic)")

// header is a parsed NRRD header.
type header struct {
	version  int
	fields   map[string]string // normalised field name -> value
	keys     []string          // key/value pairs in file order
	kv       map[string]string
	list     []string // file names after "data file: LIST"
	length   int64    // bytes of header text, blank line included (attached data start here)
	attached bool     // the header ended with a blank line (data may follow)
}

// fieldAliases maps the spellings NRRD allows to one name.
var fieldAliases = map[string]string{
	"datafile": "data file", "lineskip": "line skip", "byteskip": "byte skip",
	"spacedimension": "space dimension", "spacedirections": "space directions",
	"spaceorigin": "space origin", "measurementframe": "measurement frame",
	"spaceunits": "space units", "axismins": "axis mins", "axismaxs": "axis maxs",
	"oldmin": "old min", "oldmax": "old max", "sampleunits": "sample units",
	"blocksize": "block size", "centers": "centerings",
}

func normField(f string) string {
	f = strings.ToLower(strings.TrimSpace(f))
	if a, ok := fieldAliases[strings.ReplaceAll(f, " ", "")]; ok {
		return a
	}
	return f
}

// parseHeader reads the header from br: the magic line, then fields until a blank
// line (attached data follow) or the end of the input (a detached header).
func parseHeader(br *bufio.Reader) (*header, error) {
	h := &header{fields: map[string]string{}, kv: map[string]string{}}
	line, err := readLine(br, h)
	if err != nil && line == "" {
		return nil, fmt.Errorf("%w: %v", errNotNRRD, err)
	}
	if len(line) != 8 || !strings.HasPrefix(line, "NRRD000") || line[7] < '1' || line[7] > '9' {
		return nil, errNotNRRD
	}
	h.version = int(line[7] - '0')
	inList := false
	for n := 2; ; n++ {
		line, err := readLine(br, h)
		if err != nil {
			if err == io.EOF && line == "" {
				return h, nil
			}
			if err != io.EOF {
				return nil, fmt.Errorf("header line %d: %w", n, err)
			}
		}
		if line == "" {
			if err == io.EOF {
				return h, nil
			}
			h.attached = true
			return h, nil
		}
		if inList {
			h.list = append(h.list, strings.TrimSpace(line))
			if len(h.list) > rawio.MaxFiles {
				return nil, fmt.Errorf("data file LIST names more than %d files", rawio.MaxFiles)
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.Index(line, ":="); i >= 0 && !strings.Contains(line[:i], ": ") {
			k := line[:i]
			if _, dup := h.kv[k]; !dup {
				h.keys = append(h.keys, k)
			}
			h.kv[k] = line[i+2:]
			continue
		}
		i := strings.Index(line, ": ")
		if i < 0 {
			if strings.HasSuffix(line, ":") { // "field:" with an empty value
				i = len(line) - 1
			} else {
				return nil, fmt.Errorf("header line %d: %q is neither a field (name: value) nor a key/value (key:=value)", n, trim(line))
			}
		}
		name, val := normField(line[:i]), strings.TrimSpace(line[min(len(line), i+2):])
		if _, dup := h.fields[name]; dup {
			return nil, fmt.Errorf("header line %d: field %q given twice", n, name)
		}
		h.fields[name] = val
		if name == "data file" && strings.HasPrefix(val, "LIST") {
			inList = true
		}
		if err == io.EOF {
			return h, nil
		}
	}
}

// readLine returns one header line without its line ending (\n or \r\n).
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
		if err != nil && err != io.EOF {
			return s, err
		}
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

// ints parses exactly n integers.
func ints(name, s string, n int) ([]int64, error) {
	f := strings.Fields(s)
	if len(f) != n {
		return nil, fmt.Errorf("%s: %d values, want %d", name, len(f), n)
	}
	out := make([]int64, n)
	for i, x := range f {
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an integer", name, x)
		}
		out[i] = v
	}
	return out, nil
}

// floats parses exactly n numbers ("nan" allowed).
func floats(name, s string, n int) ([]float64, error) {
	f := strings.Fields(s)
	if len(f) != n {
		return nil, fmt.Errorf("%s: %d values, want %d", name, len(f), n)
	}
	out := make([]float64, n)
	for i, x := range f {
		v, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", name, x)
		}
		out[i] = v
	}
	return out, nil
}

// vectors parses "(a,b,c) none (d,e,f)": nil entries for none.
func vectors(name, s string, dim int) ([][]float64, error) {
	var out [][]float64
	s = strings.TrimSpace(s)
	for s != "" {
		switch {
		case strings.HasPrefix(s, "none"):
			out = append(out, nil)
			s = strings.TrimSpace(s[4:])
		case strings.HasPrefix(s, "("):
			end := strings.IndexByte(s, ')')
			if end < 0 {
				return nil, fmt.Errorf("%s: unclosed (", name)
			}
			parts := strings.Split(s[1:end], ",")
			if len(parts) != dim {
				return nil, fmt.Errorf("%s: vector (%s) has %d components, the space %d", name, s[1:end], len(parts), dim)
			}
			v := make([]float64, dim)
			for i, p := range parts {
				x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
				if err != nil || math.IsInf(x, 0) {
					return nil, fmt.Errorf("%s: %q is not a number", name, strings.TrimSpace(p))
				}
				v[i] = x
			}
			out = append(out, v)
			s = strings.TrimSpace(s[end+1:])
		default:
			return nil, fmt.Errorf("%s: expected (x,y,z) or none at %q", name, trim(s))
		}
		if len(out) > 16 {
			return nil, fmt.Errorf("%s: too many vectors", name)
		}
	}
	return out, nil
}

// typeNames maps every NRRD spelling of a scalar type to its kind.
var typeNames = map[string]rawio.Kind{}

func init() {
	for k, names := range map[rawio.Kind][]string{
		rawio.Int8:    {"signed char", "int8", "int8_t"},
		rawio.Uint8:   {"uchar", "unsigned char", "uint8", "uint8_t"},
		rawio.Int16:   {"short", "short int", "signed short", "signed short int", "int16", "int16_t"},
		rawio.Uint16:  {"ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"},
		rawio.Int32:   {"int", "signed int", "int32", "int32_t"},
		rawio.Uint32:  {"uint", "unsigned int", "uint32", "uint32_t"},
		rawio.Int64:   {"longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t"},
		rawio.Uint64:  {"ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"},
		rawio.Float32: {"float"},
		rawio.Float64: {"double"},
	} {
		for _, n := range names {
			typeNames[n] = k
		}
	}
}

// typeName is how medsa writes a kind in a NRRD header.
func typeName(k rawio.Kind) string {
	switch k {
	case rawio.Int8:
		return "signed char"
	case rawio.Uint8:
		return "unsigned char"
	case rawio.Int16:
		return "short"
	case rawio.Uint16:
		return "unsigned short"
	case rawio.Int32:
		return "int"
	case rawio.Uint32:
		return "unsigned int"
	case rawio.Int64:
		return "long long"
	case rawio.Uint64:
		return "unsigned long long"
	case rawio.Float64:
		return "double"
	}
	return "float"
}

// space describes a named NRRD space: the sign that turns each axis into RAS+,
// its dimension, and whether it is only assumed to be LPS.
type space struct {
	flip    [3]float64
	dim     int
	assumed bool
}

var spaces = map[string]space{}

func init() {
	lps, ras, las := [3]float64{-1, -1, 1}, [3]float64{1, 1, 1}, [3]float64{-1, 1, 1}
	for names, s := range map[[2]string]space{
		{"right-anterior-superior", "ras"}:       {ras, 3, false},
		{"left-anterior-superior", "las"}:        {las, 3, false},
		{"left-posterior-superior", "lps"}:       {lps, 3, false},
		{"right-anterior-superior-time", "rast"}: {ras, 4, false},
		{"left-anterior-superior-time", "last"}:  {las, 4, false},
		{"left-posterior-superior-time", "lpst"}: {lps, 4, false},
		{"scanner-xyz", ""}:                      {lps, 3, false}, // DICOM's patient frame
		{"scanner-xyz-time", ""}:                 {lps, 4, false},
		{"3d-right-handed", ""}:                  {lps, 3, true},
		{"3d-left-handed", ""}:                   {lps, 3, true},
		{"3d-right-handed-time", ""}:             {lps, 4, true},
		{"3d-left-handed-time", ""}:              {lps, 4, true},
	} {
		for _, n := range names {
			if n != "" {
				spaces[n] = s
			}
		}
	}
}

// nonSpatialKinds are axis kinds that never carry space.
func spatialKind(k string) (spatial, known bool) {
	switch strings.ToLower(k) {
	case "domain", "space", "time":
		return true, true
	case "", "none", "???":
		return false, false
	}
	return false, true
}
