package dicom

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

// The header walker. suyashkumar/dicom's parser allocates every value from the
// length the file claims (a 4 GiB OB in a 1 KiB file is a 4 GiB make) and does not
// expose where PixelData starts; this walker bounds every length by the bytes
// present, stops at the top-level PixelData, and records its offset so the pixels of
// the chosen series alone are read later. Values stay slices of the read buffer.

// Transfer syntax UIDs.
const (
	tsImplicitLE        = "1.2.840.10008.1.2"
	tsExplicitLE        = "1.2.840.10008.1.2.1"
	tsDeflatedLE        = "1.2.840.10008.1.2.1.99"
	tsExplicitBE        = "1.2.840.10008.1.2.2"
	tsJPEGBaseline      = "1.2.840.10008.1.2.4.50"
	tsJPEGExtended      = "1.2.840.10008.1.2.4.51"
	tsJPEGLossless      = "1.2.840.10008.1.2.4.57"
	tsJPEGLossSV1       = "1.2.840.10008.1.2.4.70"
	tsRLE               = "1.2.840.10008.1.2.5"
	tsJPEGLS            = "1.2.840.10008.1.2.4.80"
	tsJPEGLSNear        = "1.2.840.10008.1.2.4.81"
	tsJ2KLossless       = "1.2.840.10008.1.2.4.90"
	tsJ2K               = "1.2.840.10008.1.2.4.91"
	tsHTJ2KLossless     = "1.2.840.10008.1.2.4.201"
	tsHTJ2KLosslessRPCL = "1.2.840.10008.1.2.4.202"
	tsHTJ2K             = "1.2.840.10008.1.2.4.203"
)

// isJ2K reports the JPEG 2000 syntaxes OpenJPEG decodes (Part 1 and Part 15).
func isJ2K(ts string) bool {
	switch ts {
	case tsJ2KLossless, tsJ2K, tsHTJ2KLossless, tsHTJ2KLosslessRPCL, tsHTJ2K:
		return true
	}
	return false
}

func isJPEGLS(ts string) bool { return ts == tsJPEGLS || ts == tsJPEGLSNear }

var tsNames = map[string]string{
	tsImplicitLE:                "Implicit VR Little Endian",
	tsExplicitLE:                "Explicit VR Little Endian",
	tsDeflatedLE:                "Deflated Explicit VR Little Endian",
	tsExplicitBE:                "Explicit VR Big Endian",
	tsJPEGBaseline:              "JPEG Baseline (Process 1)",
	tsJPEGExtended:              "JPEG Extended (Process 2 & 4)",
	tsJPEGLossless:              "JPEG Lossless, Non-Hierarchical (Process 14)",
	tsJPEGLossSV1:               "JPEG Lossless, First-Order Prediction (Process 14, SV1)",
	tsRLE:                       "RLE Lossless",
	"1.2.840.10008.1.2.4.80":    "JPEG-LS Lossless",
	"1.2.840.10008.1.2.4.81":    "JPEG-LS Near-Lossless",
	"1.2.840.10008.1.2.4.90":    "JPEG 2000 Lossless",
	"1.2.840.10008.1.2.4.91":    "JPEG 2000",
	"1.2.840.10008.1.2.4.92":    "JPEG 2000 Part 2 Multi-component Lossless",
	"1.2.840.10008.1.2.4.93":    "JPEG 2000 Part 2 Multi-component",
	"1.2.840.10008.1.2.4.100":   "MPEG2 Main Profile",
	"1.2.840.10008.1.2.4.102":   "MPEG-4 AVC/H.264",
	"1.2.840.10008.1.2.4.201":   "High-Throughput JPEG 2000 Lossless",
	"1.2.840.10008.1.2.4.202":   "High-Throughput JPEG 2000 (RPCL) Lossless",
	"1.2.840.10008.1.2.4.203":   "High-Throughput JPEG 2000",
	"1.2.840.10008.1.2.1.98":    "Encapsulated Uncompressed Explicit VR Little Endian",
	"1.2.840.10008.1.2.4.100.1": "MPEG2 Main Profile (fragmentable)",
}

func tsName(uid string) string {
	if n, ok := tsNames[uid]; ok {
		return fmt.Sprintf("%s (%s)", n, uid)
	}
	return uid
}

// tag packs (group, element).
type tag uint32

func mk(g, e uint16) tag { return tag(uint32(g)<<16 | uint32(e)) }

func (t tag) String() string { return fmt.Sprintf("(%04X,%04X)", uint16(t>>16), uint16(t)) }

var (
	tTransferSyntax    = mk(0x0002, 0x0010)
	tImageType         = mk(0x0008, 0x0008)
	tSOPClass          = mk(0x0008, 0x0016)
	tModality          = mk(0x0008, 0x0060)
	tSeriesDescription = mk(0x0008, 0x103E)
	tSliceThickness    = mk(0x0018, 0x0050)
	tSpacingBetween    = mk(0x0018, 0x0088)
	tEchoNumbers       = mk(0x0018, 0x0086)
	tStudyUID          = mk(0x0020, 0x000D)
	tSeriesUID         = mk(0x0020, 0x000E)
	tSeriesNumber      = mk(0x0020, 0x0011)
	tAcquisitionNumber = mk(0x0020, 0x0012)
	tInstanceNumber    = mk(0x0020, 0x0013)
	tIPP               = mk(0x0020, 0x0032)
	tIOP               = mk(0x0020, 0x0037)
	tTemporalPosition  = mk(0x0020, 0x0100)
	tSamplesPerPixel   = mk(0x0028, 0x0002)
	tPhotometric       = mk(0x0028, 0x0004)
	tPlanarConfig      = mk(0x0028, 0x0006)
	tNumberOfFrames    = mk(0x0028, 0x0008)
	tRows              = mk(0x0028, 0x0010)
	tColumns           = mk(0x0028, 0x0011)
	tPixelSpacing      = mk(0x0028, 0x0030)
	tBitsAllocated     = mk(0x0028, 0x0100)
	tBitsStored        = mk(0x0028, 0x0101)
	tHighBit           = mk(0x0028, 0x0102)
	tPixelRep          = mk(0x0028, 0x0103)
	tWindowCenter      = mk(0x0028, 0x1050)
	tWindowWidth       = mk(0x0028, 0x1051)
	tRescaleIntercept  = mk(0x0028, 0x1052)
	tRescaleSlope      = mk(0x0028, 0x1053)
	tRedDesc           = mk(0x0028, 0x1101)
	tGreenDesc         = mk(0x0028, 0x1102)
	tBlueDesc          = mk(0x0028, 0x1103)
	tRedLUT            = mk(0x0028, 0x1201)
	tGreenLUT          = mk(0x0028, 0x1202)
	tBlueLUT           = mk(0x0028, 0x1203)
	tSegRedLUT         = mk(0x0028, 0x1221)
	tSharedFG          = mk(0x5200, 0x9229)
	tPerFrameFG        = mk(0x5200, 0x9230)
	tPlanePosSeq       = mk(0x0020, 0x9113)
	tPlaneOriSeq       = mk(0x0020, 0x9116)
	tPixelMeasuresSeq  = mk(0x0028, 0x9110)
	tPixelValueSeq     = mk(0x0028, 0x9145)
	tFrameVOISeq       = mk(0x0028, 0x9132)
	tFrameContentSeq   = mk(0x0020, 0x9111)
	tStackID           = mk(0x0020, 0x9056)
	tInStackPos        = mk(0x0020, 0x9057)
	tTemporalIndex     = mk(0x0020, 0x9128)
	tPixelData         = mk(0x7FE0, 0x0010)
	tFloatPixelData    = mk(0x7FE0, 0x0008)
	tDoublePixelData   = mk(0x7FE0, 0x0009)
	tItem              = mk(0xFFFE, 0xE000)
	tItemDelim         = mk(0xFFFE, 0xE00D)
	tSeqDelim          = mk(0xFFFE, 0xE0DD)
)

// descend names the sequences whose items we keep; all others are skipped.
var descend = map[tag]bool{
	tSharedFG: true, tPerFrameFG: true, tPlanePosSeq: true, tPlaneOriSeq: true,
	tPixelMeasuresSeq: true, tPixelValueSeq: true, tFrameVOISeq: true, tFrameContentSeq: true,
}

// keep names the plain elements we store (their values are slices of the buffer).
var keep = map[tag]bool{
	tTransferSyntax: true, tImageType: true, tSOPClass: true, tModality: true, tSeriesDescription: true,
	tSliceThickness: true, tSpacingBetween: true, tEchoNumbers: true, tStudyUID: true, tSeriesUID: true,
	tSeriesNumber: true, tAcquisitionNumber: true, tInstanceNumber: true, tIPP: true, tIOP: true,
	tTemporalPosition: true, tSamplesPerPixel: true, tPhotometric: true, tPlanarConfig: true,
	tNumberOfFrames: true, tRows: true, tColumns: true, tPixelSpacing: true, tBitsAllocated: true,
	tBitsStored: true, tHighBit: true, tPixelRep: true, tWindowCenter: true, tWindowWidth: true,
	tRescaleIntercept: true, tRescaleSlope: true, tRedDesc: true, tGreenDesc: true, tBlueDesc: true,
	tRedLUT: true, tGreenLUT: true, tBlueLUT: true, tSegRedLUT: true, tStackID: true, tInStackPos: true,
	tTemporalIndex: true,
}

// implicitVR is the dictionary VR of every kept element (implicit VR files).
var implicitVR = map[tag]string{
	tTransferSyntax: "UI", tImageType: "CS", tSOPClass: "UI", tModality: "CS", tSeriesDescription: "LO",
	tSliceThickness: "DS", tSpacingBetween: "DS", tEchoNumbers: "IS", tStudyUID: "UI", tSeriesUID: "UI",
	tSeriesNumber: "IS", tAcquisitionNumber: "IS", tInstanceNumber: "IS", tIPP: "DS", tIOP: "DS",
	tTemporalPosition: "IS", tSamplesPerPixel: "US", tPhotometric: "CS", tPlanarConfig: "US",
	tNumberOfFrames: "IS", tRows: "US", tColumns: "US", tPixelSpacing: "DS", tBitsAllocated: "US",
	tBitsStored: "US", tHighBit: "US", tPixelRep: "US", tWindowCenter: "DS", tWindowWidth: "DS",
	tRescaleIntercept: "DS", tRescaleSlope: "DS", tRedDesc: "US", tGreenDesc: "US", tBlueDesc: "US",
	tRedLUT: "OW", tGreenLUT: "OW", tBlueLUT: "OW", tSegRedLUT: "OW", tStackID: "SH", tInStackPos: "UL",
	tTemporalIndex: "UL",
}

// elem is one stored element: its VR (as read, or implied) and raw value bytes.
type elem struct {
	vr    string
	val   []byte
	items []*dataset // for sequences
}

// dataset is the subset of a DICOM data set we keep.
type dataset struct {
	el map[tag]*elem
	bo binary.ByteOrder
}

var errNeedMore = errors.New("header continues past the bytes read")

// header is what one file's header says, plus where its pixels are.
type header struct {
	path    string
	ts      string
	ds      *dataset
	pixOff  int64 // offset of the PixelData value in the file (or in data, for deflated files)
	pixLen  int64 // -1: encapsulated (undefined length)
	hasPix  bool
	data    []byte // the inflated data set of a deflated file (pixOff is into it)
	bigEnd  bool
	size    int64 // file size
	pixNote string
	pixVR   string // "OB", "OW" or "" (implicit)
	nframes int    // NumberOfFrames as used: >= 1 (see frameCount)
	nfLie   bool   // NumberOfFrames was below 1 (nfRaw)
	nfRaw   int
	mos     mosaicInfo // Siemens mosaic layout (mos.n == 0: not a mosaic)
	mosNote string     // why a file marked MOSAIC is read as one image
}

// walker walks elements in buf.
type walker struct {
	buf      []byte
	bo       binary.ByteOrder
	implicit bool
	complete bool // buf holds the whole file (no errNeedMore)
	base     int64
}

func (w *walker) need(pos, n int) error {
	if n < 0 || pos+n > len(w.buf) || pos+n < pos {
		if w.complete {
			return fmt.Errorf("truncated at byte %d (element needs %d more bytes, file has %d)", int64(pos)+w.base, n, int64(len(w.buf)-pos))
		}
		return errNeedMore
	}
	return nil
}

// longVR lists the explicit VRs with a 2-byte reserved field and a 4-byte length.
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// readElemHeader reads tag, VR and length at pos; returns the value offset.
func (w *walker) readElemHeader(pos int, implicit bool) (t tag, vr string, vl uint32, vpos int, err error) {
	if err = w.need(pos, 8); err != nil {
		return
	}
	g := w.bo.Uint16(w.buf[pos:])
	e := w.bo.Uint16(w.buf[pos+2:])
	t = mk(g, e)
	if g == 0xFFFE || implicit {
		vl = w.bo.Uint32(w.buf[pos+4:])
		return t, "", vl, pos + 8, nil
	}
	vr = string(w.buf[pos+4 : pos+6])
	if vr[0] < 'A' || vr[0] > 'Z' || vr[1] < 'A' || vr[1] > 'Z' {
		return t, vr, 0, 0, fmt.Errorf("element %v at byte %d: invalid VR %q", t, int64(pos)+w.base, vr)
	}
	if longVR(vr) {
		if err = w.need(pos, 12); err != nil {
			return
		}
		return t, vr, w.bo.Uint32(w.buf[pos+8:]), pos + 12, nil
	}
	return t, vr, uint32(w.bo.Uint16(w.buf[pos+6:])), pos + 8, nil
}

const undefined = 0xFFFFFFFF

// maxItems bounds the kept items of one sequence (one per frame in functional groups).
const maxItems = 1 << 18

// parseDataset parses elements from pos until end (or an item delimiter when
// end < 0). It returns the position after the last element. At depth 0 it stops
// before PixelData and reports its position.
func (w *walker) parseDataset(ds *dataset, pos, end, depth int, pix *int) (int, error) {
	if depth > 12 {
		return 0, fmt.Errorf("sequences nested deeper than 12 at byte %d", int64(pos)+w.base)
	}
	for {
		if end >= 0 && pos >= end {
			return pos, nil
		}
		if end < 0 && pos >= len(w.buf) && w.complete {
			if depth == 0 {
				return pos, nil
			}
			return 0, fmt.Errorf("truncated inside a sequence item at byte %d", int64(pos)+w.base)
		}
		if depth == 0 && end < 0 && pos+8 > len(w.buf) && w.complete {
			return pos, nil // trailing padding bytes
		}
		t, vr, vl, vpos, err := w.readElemHeader(pos, w.implicit)
		if err != nil {
			return 0, err
		}
		if t == tItemDelim {
			if depth == 0 {
				return 0, fmt.Errorf("item delimiter outside a sequence at byte %d", int64(pos)+w.base)
			}
			return vpos, nil
		}
		if depth == 0 && (t == tPixelData || t == tFloatPixelData || t == tDoublePixelData) {
			*pix = pos
			return pos, nil
		}
		// UN of defined length is a sequence when the dictionary says so (GDCM writes
		// the shared functional groups that way): its items are implicit VR.
		isSeq := vr == "SQ" || (w.implicit && vl == undefined && t != tPixelData) || (vr == "UN" && (vl == undefined || descend[t]))
		if w.implicit && descend[t] {
			isSeq = true
		}
		if isSeq {
			implicitInside := w.implicit || vr == "UN"
			var items []*dataset
			next, err := w.parseSequence(vpos, vl, depth, descend[t], implicitInside, &items)
			if err != nil {
				return 0, fmt.Errorf("sequence %v: %w", t, err)
			}
			if descend[t] {
				ds.el[t] = &elem{vr: "SQ", items: items}
			}
			pos = next
			continue
		}
		if vl == undefined {
			// An undefined-length non-sequence value outside PixelData: encapsulated
			// OB elsewhere; skip its items.
			next, err := w.skipItems(vpos)
			if err != nil {
				return 0, fmt.Errorf("element %v: %w", t, err)
			}
			pos = next
			continue
		}
		if err := w.need(vpos, int(vl)); err != nil {
			if err == errNeedMore {
				return 0, err
			}
			return 0, fmt.Errorf("element %v claims %d bytes: %w", t, vl, err)
		}
		if keep[t] {
			if vr == "" || vr == "UN" {
				vr = implicitVR[t] // implicit files carry no VR: use the dictionary's
			}
			ds.el[t] = &elem{vr: vr, val: w.buf[vpos : vpos+int(vl)]}
		}
		pos = vpos + int(vl)
	}
}

// parseSequence walks the items of a sequence; keep stores them.
func (w *walker) parseSequence(pos int, vl uint32, depth int, keepItems, implicitInside bool, items *[]*dataset) (int, error) {
	end := -1
	if vl != undefined {
		if err := w.need(pos, int(vl)); err != nil {
			return 0, err
		}
		end = pos + int(vl)
	}
	saved := w.implicit
	w.implicit = implicitInside
	defer func() { w.implicit = saved }()
	for n := 0; ; n++ {
		if end >= 0 && pos >= end {
			return pos, nil
		}
		t, _, ivl, ipos, err := w.readElemHeader(pos, true)
		if err != nil {
			return 0, err
		}
		if t == tSeqDelim {
			return ipos, nil
		}
		if t != tItem {
			return 0, fmt.Errorf("expected an item, found %v at byte %d", t, int64(pos)+w.base)
		}
		item := &dataset{el: map[tag]*elem{}, bo: w.bo}
		iend := -1
		if ivl != undefined {
			if err := w.need(ipos, int(ivl)); err != nil {
				return 0, err
			}
			iend = ipos + int(ivl)
		}
		var dummy int
		next, err := w.parseDataset(item, ipos, iend, depth+1, &dummy)
		if err != nil {
			return 0, fmt.Errorf("item %d: %w", n+1, err)
		}
		if keepItems {
			if len(*items) >= maxItems {
				return 0, fmt.Errorf("more than %d items", maxItems)
			}
			*items = append(*items, item)
		}
		pos = next
	}
}

// skipItems skips an encapsulated value (items up to the sequence delimiter).
func (w *walker) skipItems(pos int) (int, error) {
	for {
		t, _, vl, vpos, err := w.readElemHeader(pos, true)
		if err != nil {
			return 0, err
		}
		if t == tSeqDelim {
			return vpos, nil
		}
		if t != tItem || vl == undefined {
			return 0, fmt.Errorf("bad item %v in an encapsulated value at byte %d", t, int64(pos)+w.base)
		}
		if err := w.need(vpos, int(vl)); err != nil {
			return 0, err
		}
		pos = vpos + int(vl)
	}
}

// maxInflate bounds a deflated data set: the largest image we accept, plus headers.
const maxInflate = 4<<30 + 1<<20

// parseHeader parses buf, the first bytes of a file of the given size (or all of
// it when complete). It returns errNeedMore when the header runs past buf.
func parseHeader(path string, buf []byte, size int64, complete bool) (*header, error) {
	h := &header{path: path, size: size, ds: &dataset{el: map[tag]*elem{}, bo: binary.LittleEndian}}
	pos := 0
	w := &walker{buf: buf, bo: binary.LittleEndian, complete: complete}
	if len(buf) >= 132 && string(buf[128:132]) == "DICM" {
		pos = 132
		// File meta group: explicit VR little endian, group 0002.
		for {
			if pos+8 > len(buf) {
				if complete {
					return nil, errors.New("file meta information runs past the end of the file")
				}
				return nil, errNeedMore
			}
			if binary.LittleEndian.Uint16(buf[pos:]) != 0x0002 {
				break
			}
			t, vr, vl, vpos, err := w.readElemHeader(pos, false)
			if err != nil {
				return nil, fmt.Errorf("file meta information: %w", err)
			}
			if vl == undefined {
				return nil, fmt.Errorf("file meta element %v has undefined length", t)
			}
			if err := w.need(vpos, int(vl)); err != nil {
				return nil, err
			}
			if t == tTransferSyntax {
				h.ts = strings.TrimRight(string(buf[vpos:vpos+int(vl)]), " \x00")
				_ = vr
			}
			pos = vpos + int(vl)
		}
	} else {
		// No preamble: guess the syntax from the first element, as the standard's
		// default (implicit LE) or explicit LE/BE when a VR is visible.
		if len(buf) < 8 {
			return nil, errors.New("not DICOM: too short")
		}
		g := binary.LittleEndian.Uint16(buf)
		vr := string(buf[4:6])
		switch {
		case g == 0x0008 && isVR(vr):
			h.ts = tsExplicitLE
		case binary.BigEndian.Uint16(buf) == 0x0008 && isVR(vr):
			h.ts = tsExplicitBE
		case g == 0x0008 || g == 0x0002:
			h.ts = tsImplicitLE
			if isVR(vr) {
				h.ts = tsExplicitLE
			}
		default:
			return nil, errors.New("not DICOM (no DICM marker at byte 128 and no group 0008 at the start)")
		}
		if g == 0x0002 {
			return nil, errors.New("meta group without preamble: not supported")
		}
	}
	if h.ts == "" {
		h.ts = tsImplicitLE
	}
	switch h.ts {
	case tsImplicitLE:
		w.implicit = true
	case tsExplicitBE:
		w.bo = binary.BigEndian
		h.bigEnd = true
	case tsDeflatedLE:
		if !complete {
			return nil, errNeedMore
		}
		lim := min(int64(maxInflate), size*1100+1<<16)
		var out bytes.Buffer
		n, err := io.Copy(&out, io.LimitReader(flate.NewReader(bytes.NewReader(buf[pos:])), lim+1))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("inflate deflated data set: %w", err)
		}
		if n > lim {
			return nil, fmt.Errorf("deflated data set inflates past %d bytes", lim)
		}
		h.data = out.Bytes()
		w.buf, w.base = h.data, 0
		pos = 0
	}
	h.ds.bo = w.bo
	pix := -1
	if _, err := w.parseDataset(h.ds, pos, -1, 0, &pix); err != nil {
		if _, known := tsNames[h.ts]; !known && err != errNeedMore {
			// Parsed as explicit little endian, the default for syntaxes we do not know.
			return nil, fmt.Errorf("unknown transfer syntax %q: the data set does not parse as explicit VR little endian (%w)", h.ts, err)
		}
		return nil, err
	}
	if pix >= 0 {
		t, vr, vl, vpos, err := w.readElemHeader(pix, w.implicit)
		if err != nil {
			return nil, err
		}
		if t != tPixelData {
			h.pixNote = fmt.Sprintf("float pixel data %v (VR %s) is not supported", t, vr)
		} else {
			h.hasPix = true
			h.pixVR = vr
			h.pixOff = int64(vpos)
			if vl == undefined {
				h.pixLen = -1
			} else {
				h.pixLen = int64(vl)
			}
		}
	}
	h.nframes, h.nfRaw = frameCount(h.ds)
	h.nfLie = h.nfRaw != h.nframes
	h.mos, h.mosNote = detectMosaic(h.ds, h.nframes)
	return h, nil
}

// frameCount reads NumberOfFrames once for every later use. A value below 1 is a lying
// header (seen from broken exporters): it is read as one frame, with a note, and the
// pixel-size checks then hold the file to that.
// It returns the count to use and the value the header holds.
func frameCount(d *dataset) (use, raw int) {
	n := d.uint(tNumberOfFrames, 1)
	return max(1, n), n
}

func isVR(s string) bool {
	switch s {
	case "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD", "OF", "OL",
		"OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV":
		return true
	}
	return false
}

// ---- value access ----

func (d *dataset) get(t tag) *elem {
	if d == nil {
		return nil
	}
	return d.el[t]
}

func (d *dataset) str(t tag) string {
	e := d.get(t)
	if e == nil {
		return ""
	}
	return strings.TrimRight(strings.TrimLeft(string(e.val), " "), " \x00")
}

// strs splits a multi-valued string.
func (d *dataset) strs(t tag) []string {
	s := d.str(t)
	if s == "" {
		return nil
	}
	parts := strings.Split(s, `\`)
	for i := range parts {
		parts[i] = strings.TrimSpace(strings.Trim(parts[i], "\x00"))
	}
	return parts
}

// floats parses DS/IS/FL/FD values; nil when absent or unparsable.
func (d *dataset) floats(t tag) []float64 {
	e := d.get(t)
	if e == nil {
		return nil
	}
	switch e.vr {
	case "FD":
		var out []float64
		for i := 0; i+8 <= len(e.val); i += 8 {
			out = append(out, math.Float64frombits(d.bo.Uint64(e.val[i:])))
		}
		return out
	case "FL":
		var out []float64
		for i := 0; i+4 <= len(e.val); i += 4 {
			out = append(out, float64(math.Float32frombits(d.bo.Uint32(e.val[i:]))))
		}
		return out
	}
	var out []float64
	for _, p := range d.strs(t) {
		if p == "" {
			continue
		}
		f, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return nil
		}
		out = append(out, f)
	}
	return out
}

func (d *dataset) float(t tag, def float64) float64 {
	if f := d.floats(t); len(f) > 0 && !math.IsNaN(f[0]) && !math.IsInf(f[0], 0) {
		return f[0]
	}
	return def
}

// uint reads a US/UL/SS/SL or IS value (VR-less elements of implicit files are
// read by their length: 2 bytes US, 4 bytes UL).
func (d *dataset) uint(t tag, def int) int {
	e := d.get(t)
	if e == nil {
		return def
	}
	switch {
	case e.vr == "IS" || e.vr == "DS":
		return int(d.float(t, float64(def)))
	case len(e.val) >= 2 && (e.vr == "US" || e.vr == "SS" || e.vr == "" || e.vr == "OW" || e.vr == "UN"):
		v := int(d.bo.Uint16(e.val))
		if e.vr == "SS" {
			v = int(int16(v))
		}
		return v
	case len(e.val) >= 4 && (e.vr == "UL" || e.vr == "SL"):
		return int(d.bo.Uint32(e.val))
	}
	return def
}

// ints reads all US values of an element (palette descriptors).
func (d *dataset) u16s(t tag) []int {
	e := d.get(t)
	if e == nil {
		return nil
	}
	var out []int
	for i := 0; i+2 <= len(e.val); i += 2 {
		out = append(out, int(d.bo.Uint16(e.val[i:])))
	}
	return out
}

// item returns the first item of sequence t.
func (d *dataset) item(t tag) *dataset {
	e := d.get(t)
	if e == nil || len(e.items) == 0 {
		return nil
	}
	return e.items[0]
}
