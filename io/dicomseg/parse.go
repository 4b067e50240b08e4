package dicomseg

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// A bounded DICOM parser for SEG objects: every length is checked against the
// bytes present before it is used, values stay slices of the input, and each
// element or item costs at least 8 input bytes, so what it allocates is
// proportional to the file. Explicit VR little and big endian, implicit VR
// little endian (with the dictionary below) and deflated explicit little endian.

const (
	implicitVRLittleEndian = "1.2.840.10008.1.2"
	explicitVRBigEndian    = "1.2.840.10008.1.2.2"
	deflatedLittleEndian   = "1.2.840.10008.1.2.1.99"
	undefinedLength        = 0xFFFFFFFF
	maxDepth               = 16
	// maxInflate bounds a deflated data set.
	maxInflate = 4 << 30
)

type pelem struct {
	vr    string
	val   []byte
	items []*pset
}

type pset struct {
	el map[uint32]*pelem
	bo binary.ByteOrder
}

// dictVR gives the VR of the elements we read, for implicit VR files.
var dictVR = map[uint32]string{
	tg(0x0002, 0x0010): "UI", tg(0x0008, 0x0016): "UI", tg(0x0008, 0x0018): "UI", tg(0x0008, 0x0060): "CS",
	tg(0x0008, 0x0100): "SH", tg(0x0008, 0x0102): "SH", tg(0x0008, 0x0104): "LO", tg(0x0008, 0x1150): "UI",
	tg(0x0008, 0x1155): "UI", tg(0x0008, 0x1160): "IS", tg(0x0020, 0x000D): "UI", tg(0x0020, 0x000E): "UI",
	tg(0x0020, 0x0032): "DS", tg(0x0020, 0x0037): "DS", tg(0x0020, 0x0052): "UI", tg(0x0020, 0x9157): "UL",
	tg(0x0028, 0x0002): "US", tg(0x0028, 0x0008): "IS", tg(0x0028, 0x0010): "US", tg(0x0028, 0x0011): "US",
	tg(0x0028, 0x0030): "DS", tg(0x0028, 0x0100): "US", tg(0x0028, 0x0101): "US", tg(0x0028, 0x0103): "US",
	tg(0x0018, 0x0050): "DS", tg(0x0018, 0x0088): "DS", tg(0x0062, 0x0001): "CS", tg(0x0062, 0x0004): "US",
	tg(0x0062, 0x0005): "LO", tg(0x0062, 0x0006): "ST", tg(0x0062, 0x0008): "CS", tg(0x0062, 0x0009): "LO",
	tg(0x0062, 0x000B): "US", tg(0x0062, 0x000D): "US", tg(0x0062, 0x000E): "US", tg(0x0008, 0x103E): "LO",
	tg(0x0070, 0x0080): "CS", tg(0x0008, 0x0005): "CS",
}

// dictSQ names the sequences we read (implicit VR files may give them a defined length).
var dictSQ = map[uint32]bool{
	tg(0x0008, 0x1115): true, tg(0x0008, 0x114A): true, tg(0x0008, 0x2112): true, tg(0x0008, 0x9124): true,
	tg(0x0008, 0x9215): true, tg(0x0020, 0x9111): true, tg(0x0020, 0x9113): true, tg(0x0020, 0x9116): true,
	tg(0x0020, 0x9221): true, tg(0x0020, 0x9222): true, tg(0x0028, 0x9110): true, tg(0x0040, 0xA170): true,
	tg(0x0062, 0x0002): true, tg(0x0062, 0x0003): true, tg(0x0062, 0x000A): true, tg(0x0062, 0x000F): true,
	tg(0x5200, 0x9229): true, tg(0x5200, 0x9230): true,
}

type pwalker struct {
	buf      []byte
	bo       binary.ByteOrder
	implicit bool
}

func (w *pwalker) need(pos, n int) error {
	if n < 0 || pos < 0 || pos+n > len(w.buf) || pos+n < pos {
		return fmt.Errorf("truncated at byte %d (needs %d bytes, %d left)", pos, n, max(0, len(w.buf)-pos))
	}
	return nil
}

func (w *pwalker) header(pos int, implicit bool) (t uint32, vr string, vl uint32, vpos int, err error) {
	if err = w.need(pos, 8); err != nil {
		return
	}
	t = uint32(w.bo.Uint16(w.buf[pos:]))<<16 | uint32(w.bo.Uint16(w.buf[pos+2:]))
	if t>>16 == 0xFFFE || implicit {
		return t, dictVR[t], w.bo.Uint32(w.buf[pos+4:]), pos + 8, nil
	}
	vr = string(w.buf[pos+4 : pos+6])
	if vr[0] < 'A' || vr[0] > 'Z' || vr[1] < 'A' || vr[1] > 'Z' {
		return t, vr, 0, 0, fmt.Errorf("element (%04X,%04X) at byte %d: invalid VR %q", t>>16, t&0xffff, pos, vr)
	}
	if longVR(vr) {
		if err = w.need(pos, 12); err != nil {
			return
		}
		return t, vr, w.bo.Uint32(w.buf[pos+8:]), pos + 12, nil
	}
	return t, vr, uint32(w.bo.Uint16(w.buf[pos+6:])), pos + 8, nil
}

// dataset parses elements from pos to end (end < 0: to an item delimiter, or
// the end of the buffer at depth 0). It returns the position after it.
func (w *pwalker) dataset(ds *pset, pos, end, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("sequences nested deeper than %d", maxDepth)
	}
	for {
		if end >= 0 && pos >= end {
			return pos, nil
		}
		if end < 0 && depth == 0 && pos+8 > len(w.buf) {
			// The end of the file; a few trailing bytes must be padding.
			if bytes.Count(w.buf[pos:], []byte{0}) != len(w.buf)-pos {
				return 0, fmt.Errorf("truncated at byte %d (an element header needs 8 bytes, %d left)", pos, len(w.buf)-pos)
			}
			return pos, nil
		}
		t, vr, vl, vpos, err := w.header(pos, w.implicit)
		if err != nil {
			return 0, err
		}
		if t == tg(0xFFFE, 0xE00D) {
			if depth == 0 {
				return 0, fmt.Errorf("item delimiter outside a sequence at byte %d", pos)
			}
			return vpos, nil
		}
		isSeq := vr == "SQ" || dictSQ[t] && (w.implicit || vr == "UN") || vl == undefinedLength && t != tg(0x7FE0, 0x0010)
		if isSeq {
			saved := w.implicit
			if vr == "UN" {
				w.implicit = true // UN sequences are implicit VR inside (PS3.5 6.2.2)
			}
			var items []*pset
			next, err := w.sequence(vpos, vl, depth, &items)
			w.implicit = saved
			if err != nil {
				return 0, fmt.Errorf("sequence (%04X,%04X): %w", t>>16, t&0xffff, err)
			}
			ds.el[t] = &pelem{vr: "SQ", items: items}
			pos = next
			continue
		}
		if vl == undefinedLength && depth == 0 {
			// Encapsulated PixelData: keep the rest of the file.
			ds.el[t] = &pelem{vr: "OB*", val: w.buf[vpos:]}
			return len(w.buf), nil
		}
		if vl == undefinedLength {
			// Encapsulated pixels of an icon inside an item: skip the fragments.
			next, err := w.skipFragments(vpos)
			if err != nil {
				return 0, fmt.Errorf("element (%04X,%04X): %w", t>>16, t&0xffff, err)
			}
			pos = next
			continue
		}
		if err := w.need(vpos, int(vl)); err != nil {
			if t == tg(0x7FE0, 0x0010) {
				return 0, fmt.Errorf("PixelData claims %d bytes, %d present (truncated file?)", vl, max(0, len(w.buf)-vpos))
			}
			return 0, fmt.Errorf("element (%04X,%04X) claims %d bytes: %w", t>>16, t&0xffff, vl, err)
		}
		ds.el[t] = &pelem{vr: vr, val: w.buf[vpos : vpos+int(vl)]}
		pos = vpos + int(vl)
	}
}

func (w *pwalker) sequence(pos int, vl uint32, depth int, items *[]*pset) (int, error) {
	end := -1
	if vl != undefinedLength {
		if err := w.need(pos, int(vl)); err != nil {
			return 0, err
		}
		end = pos + int(vl)
	}
	for n := 1; ; n++ {
		if end >= 0 && pos >= end {
			return pos, nil
		}
		t, _, ivl, ipos, err := w.header(pos, true)
		if err != nil {
			return 0, err
		}
		if t == tg(0xFFFE, 0xE0DD) {
			return ipos, nil
		}
		if t != tg(0xFFFE, 0xE000) {
			return 0, fmt.Errorf("expected an item, found (%04X,%04X) at byte %d", t>>16, t&0xffff, pos)
		}
		iend := -1
		if ivl != undefinedLength {
			if err := w.need(ipos, int(ivl)); err != nil {
				return 0, fmt.Errorf("item %d: %w", n, err)
			}
			iend = ipos + int(ivl)
		}
		it := &pset{el: map[uint32]*pelem{}, bo: w.bo}
		next, err := w.dataset(it, ipos, iend, depth+1)
		if err != nil {
			return 0, fmt.Errorf("item %d: %w", n, err)
		}
		*items = append(*items, it)
		pos = next
	}
}

func (w *pwalker) skipFragments(pos int) (int, error) {
	for {
		t, _, vl, vpos, err := w.header(pos, true)
		if err != nil {
			return 0, err
		}
		if t == tg(0xFFFE, 0xE0DD) {
			return vpos, nil
		}
		if t != tg(0xFFFE, 0xE000) || vl == undefinedLength {
			return 0, fmt.Errorf("bad fragment (%04X,%04X) at byte %d", t>>16, t&0xffff, pos)
		}
		if err := w.need(vpos, int(vl)); err != nil {
			return 0, err
		}
		pos = vpos + int(vl)
	}
}

// parseFile parses a whole DICOM file held in memory.
func parseFile(data []byte) (*pset, string, error) {
	pos := 0
	if len(data) < 132 || string(data[128:132]) != "DICM" {
		return nil, "", errors.New("not a DICOM file (no DICM marker at byte 128)")
	}
	pos = 132
	w := &pwalker{buf: data, bo: binary.LittleEndian}
	ts := ""
	for pos+8 <= len(data) && binary.LittleEndian.Uint16(data[pos:]) == 0x0002 {
		t, _, vl, vpos, err := w.header(pos, false)
		if err != nil {
			return nil, "", fmt.Errorf("file meta information: %w", err)
		}
		if vl == undefinedLength {
			return nil, "", fmt.Errorf("file meta element (%04X,%04X) has undefined length", t>>16, t&0xffff)
		}
		if err := w.need(vpos, int(vl)); err != nil {
			return nil, "", fmt.Errorf("file meta information: %w", err)
		}
		if t == tg(0x0002, 0x0010) {
			ts = strings.TrimRight(string(data[vpos:vpos+int(vl)]), " \x00")
		}
		pos = vpos + int(vl)
	}
	switch ts {
	case "", explicitVRLittleEndian:
		if ts == "" {
			ts = explicitVRLittleEndian
		}
	case implicitVRLittleEndian:
		w.implicit = true
	case explicitVRBigEndian:
		w.bo = binary.BigEndian
	case deflatedLittleEndian:
		lim := min(int64(maxInflate), int64(len(data))*1100+1<<16)
		var out bytes.Buffer
		n, err := io.Copy(&out, io.LimitReader(flate.NewReader(bytes.NewReader(data[pos:])), lim+1))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ts, fmt.Errorf("inflate the deflated data set: %w", err)
		}
		if n > lim {
			return nil, ts, fmt.Errorf("the deflated data set inflates past %d bytes", lim)
		}
		w.buf, pos = out.Bytes(), 0
	default:
		return nil, ts, fmt.Errorf("transfer syntax %s is not supported for segmentations (uncompressed explicit/implicit VR or deflated only; decompress it first, e.g. with dcmtk's dcmdrle or gdcmconv --raw)", ts)
	}
	ds := &pset{el: map[uint32]*pelem{}, bo: w.bo}
	if _, err := w.dataset(ds, pos, -1, 0); err != nil {
		return nil, ts, err
	}
	return ds, ts, nil
}

// ---- value access (nil-safe) ----

func (d *pset) get(t uint32) *pelem {
	if d == nil {
		return nil
	}
	return d.el[t]
}

func (d *pset) str(t uint32) string {
	e := d.get(t)
	if e == nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(string(e.val), " \x00"))
}

// floats parses a DS/IS (or FD/FL) multi-value; nil when absent or unparsable.
func (d *pset) floats(t uint32) []float64 {
	e := d.get(t)
	if e == nil {
		return nil
	}
	var out []float64
	switch e.vr {
	case "FD":
		for i := 0; i+8 <= len(e.val); i += 8 {
			out = append(out, math.Float64frombits(d.bo.Uint64(e.val[i:])))
		}
		return out
	case "FL":
		for i := 0; i+4 <= len(e.val); i += 4 {
			out = append(out, float64(math.Float32frombits(d.bo.Uint32(e.val[i:]))))
		}
		return out
	}
	for _, p := range strings.Split(d.str(t), `\`) {
		p = strings.TrimSpace(strings.Trim(p, "\x00"))
		if p == "" {
			continue
		}
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		out = append(out, f)
	}
	return out
}

// ints reads US/UL/SS/SL values, or an IS/DS.
func (d *pset) ints(t uint32) []int {
	e := d.get(t)
	if e == nil {
		return nil
	}
	var out []int
	switch e.vr {
	case "US", "OW", "":
		for i := 0; i+2 <= len(e.val); i += 2 {
			out = append(out, int(d.bo.Uint16(e.val[i:])))
		}
	case "SS":
		for i := 0; i+2 <= len(e.val); i += 2 {
			out = append(out, int(int16(d.bo.Uint16(e.val[i:]))))
		}
	case "UL":
		for i := 0; i+4 <= len(e.val); i += 4 {
			out = append(out, int(d.bo.Uint32(e.val[i:])))
		}
	case "SL":
		for i := 0; i+4 <= len(e.val); i += 4 {
			out = append(out, int(int32(d.bo.Uint32(e.val[i:]))))
		}
	case "IS", "DS":
		for _, f := range d.floats(t) {
			if f < math.MinInt32 || f > math.MaxInt32 {
				return nil
			}
			out = append(out, int(f))
		}
	}
	return out
}

func (d *pset) int(t uint32, def int) int {
	if v := d.ints(t); len(v) > 0 {
		return v[0]
	}
	return def
}

func (d *pset) seq(t uint32) []*pset {
	if e := d.get(t); e != nil {
		return e.items
	}
	return nil
}

func (d *pset) item(t uint32) *pset {
	if s := d.seq(t); len(s) > 0 {
		return s[0]
	}
	return nil
}
