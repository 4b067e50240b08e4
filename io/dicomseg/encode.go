package dicomseg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// A small explicit VR little endian encoder: a data set is a list of elements
// (sorted by tag when written); sequences get defined lengths, computed by
// encoding their items first. Only the top level streams (PixelData is large).

type el struct {
	tag   uint32
	vr    string
	val   []byte
	items [][]el // SQ
}

func tg(g, e uint16) uint32 { return uint32(g)<<16 | uint32(e) }

// longVR: explicit VRs with a 4-byte length.
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// str makes a string element; values are joined with '\' and padded to even
// length (UI with NUL, text with a space).
func str(t uint32, vr string, vals ...string) el {
	s := strings.Join(vals, `\`)
	if len(s)%2 == 1 {
		if vr == "UI" {
			s += "\x00"
		} else {
			s += " "
		}
	}
	return el{tag: t, vr: vr, val: []byte(s)}
}

func us(t uint32, vs ...int) el {
	b := make([]byte, 2*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return el{tag: t, vr: "US", val: b}
}

func ul(t uint32, vs ...int) el {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return el{tag: t, vr: "UL", val: b}
}

// at makes an attribute-tag element (group then element, each little endian).
func at(t uint32, tags ...uint32) el {
	b := make([]byte, 4*len(tags))
	for i, x := range tags {
		binary.LittleEndian.PutUint16(b[4*i:], uint16(x>>16))
		binary.LittleEndian.PutUint16(b[4*i+2:], uint16(x))
	}
	return el{tag: t, vr: "AT", val: b}
}

func ds(t uint32, vs ...float64) el {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmtDS(v)
	}
	return str(t, "DS", s...)
}

func is(t uint32, vs ...int) el {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return str(t, "IS", s...)
}

func sq(t uint32, items ...[]el) el { return el{tag: t, vr: "SQ", items: items} }

// fmtDS formats a decimal string in at most 16 characters (the DS limit),
// keeping every digit that fits: a value parsed from a DS prints back equal.
func fmtDS(x float64) string {
	if x == 0 {
		return "0"
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if len(s) <= 16 {
		return s
	}
	for p := 15; p > 0; p-- {
		if s = strconv.FormatFloat(x, 'g', p, 64); len(s) <= 16 {
			break
		}
	}
	return s
}

// encodeDataset writes the elements of ds, sorted by tag, to w.
func encodeDataset(w io.Writer, ds []el) error {
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].tag < ds[j].tag })
	var hdr [12]byte
	for i := range ds {
		e := &ds[i]
		if i > 0 && ds[i-1].tag == e.tag {
			return fmt.Errorf("element (%04X,%04X) twice", e.tag>>16, e.tag&0xffff)
		}
		val := e.val
		if e.vr == "SQ" {
			var b bytes.Buffer
			for _, it := range e.items {
				var ib bytes.Buffer
				if err := encodeDataset(&ib, it); err != nil {
					return err
				}
				binary.LittleEndian.PutUint32(hdr[0:], 0xE000FFFE)
				binary.LittleEndian.PutUint32(hdr[4:], uint32(ib.Len()))
				b.Write(hdr[:8])
				b.Write(ib.Bytes())
			}
			val = b.Bytes()
		}
		if len(val)%2 == 1 {
			val = append(val[:len(val):len(val)], 0)
		}
		binary.LittleEndian.PutUint16(hdr[0:], uint16(e.tag>>16))
		binary.LittleEndian.PutUint16(hdr[2:], uint16(e.tag))
		copy(hdr[4:6], e.vr)
		n := 8
		if longVR(e.vr) {
			hdr[6], hdr[7] = 0, 0
			binary.LittleEndian.PutUint32(hdr[8:], uint32(len(val)))
			n = 12
		} else {
			if len(val) > 0xFFFF {
				return fmt.Errorf("element (%04X,%04X) %s: %d bytes is too long", e.tag>>16, e.tag&0xffff, e.vr, len(val))
			}
			binary.LittleEndian.PutUint16(hdr[6:], uint16(len(val)))
		}
		if _, err := w.Write(hdr[:n]); err != nil {
			return err
		}
		if _, err := w.Write(val); err != nil {
			return err
		}
	}
	return nil
}

// encodeFile writes the preamble, the file meta group (with its group length)
// and ds in explicit VR little endian.
func encodeFile(w io.Writer, sopClass, sopInstance string, ds []el) error {
	meta := []el{
		{tag: tg(0x0002, 0x0001), vr: "OB", val: []byte{0, 1}},
		str(tg(0x0002, 0x0002), "UI", sopClass),
		str(tg(0x0002, 0x0003), "UI", sopInstance),
		str(tg(0x0002, 0x0010), "UI", explicitVRLittleEndian),
		str(tg(0x0002, 0x0012), "UI", ImplementationClassUID),
		str(tg(0x0002, 0x0013), "SH", ImplementationVersionName),
	}
	var mb bytes.Buffer
	if err := encodeDataset(&mb, meta); err != nil {
		return err
	}
	var head bytes.Buffer
	head.Write(make([]byte, 128))
	head.WriteString("DICM")
	if err := encodeDataset(&head, []el{ul(tg(0x0002, 0x0000), mb.Len())}); err != nil {
		return err
	}
	head.Write(mb.Bytes())
	if _, err := w.Write(head.Bytes()); err != nil {
		return err
	}
	return encodeDataset(w, ds)
}
