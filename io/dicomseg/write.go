// Package dicomseg writes and reads DICOM Segmentation objects (SOP Class
// 1.2.840.10008.5.1.4.1.1.66.4) for label maps on DICOM sources.
//
// Write makes a BINARY segmentation, enhanced multi-frame, explicit VR little
// endian: one segment per label present, one frame per non-empty slice per
// segment, pixels 1-bit packed across frames. Every frame carries the source
// slice's ImagePositionPatient and references the source instance (and frame),
// so the object lies exactly on the source series, oblique or not, single- or
// multi-frame. The source's per-slice attributes come from dicom.ReadRefs.
//
// Read places the frames of a SEG onto a source series by position (each
// frame's ImagePositionPatient projected on the source's slice normal), never by
// frame order, and refuses a SEG whose frame of reference, orientation, pixel
// spacing, size or positions do not fit the source, saying what differs.
package dicomseg

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/medsa/medsa/io/atomicfile"
	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/volume"
)

// Code is one coded concept (a Code Sequence item).
type Code struct {
	Value   string `json:"value"`   // CodeValue
	Scheme  string `json:"scheme"`  // CodingSchemeDesignator, e.g. "SCT", "DCM"
	Meaning string `json:"meaning"` // CodeMeaning
}

// The default category and type of a segment: a structure of tissue, the most
// general SNOMED CT concepts that still say what a segment is. Users refine them.
var (
	DefaultCategory = Code{"91723000", "SCT", "Anatomical Structure"}
	DefaultType     = Code{"85756007", "SCT", "Tissue"}
)

// Segment algorithm types (SegmentAlgorithmType).
const (
	Manual        = "MANUAL"
	Semiautomatic = "SEMIAUTOMATIC"
	Automatic     = "AUTOMATIC"
)

// Segment describes one segment: the label value it holds in a label map and
// how it is described in the SEG.
type Segment struct {
	Label         uint16   // value in the label map
	Number        int      // SegmentNumber (1..n); set by Write and Read
	Name          string   // SegmentLabel
	Color         [3]uint8 // sRGB; written as RecommendedDisplayCIELabValue
	HasColor      bool     // Read: the SEG gave a colour (else Color is the default)
	Category      Code     // zero: DefaultCategory
	Type          Code     // zero: DefaultType
	Algorithm     string   // Manual, Semiautomatic, Automatic; "" derives it from Options.Model
	AlgorithmName string   // "" = Options.Model (required unless Manual)
	Description   string   // SegmentDescription (optional)
}

// Options control what Write records besides the segments.
type Options struct {
	// Segments name, colour and code the labels. A label present in the map
	// but missing here gets "Label N" with the default colour and codes.
	Segments []Segment
	// Model is the name and version of the model ("name@version"): the
	// algorithm name of segments without their own, which are then
	// SEMIAUTOMATIC; with no model they are MANUAL.
	Model              string
	SeriesDescription  string // default "Segmentation"
	SeriesNumber       int    // default 300
	InstanceNumber     int    // default 1
	ContentLabel       string // default "SEGMENTATION" (CS: upper case, digits, _ and space)
	ContentDescription string
	ContentCreator     string    // PN, e.g. "Doe^Jane"
	Now                time.Time // creation time (zero: now)
	// SeriesInstanceUID and SOPInstanceUID are new UIDs unless given (tests).
	SeriesInstanceUID, SOPInstanceUID string
}

// Write saves lm, a label map on the grid of the DICOM series src describes, as a
// DICOM-SEG file at path (replaced atomically).
func Write(path string, lm *volume.LabelMap, src *dicom.SourceRefs, opt Options) error {
	p, err := prepare(lm, src, opt)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return atomicfile.Write(path, p.encode)
}

// Encode writes the DICOM-SEG of lm on src to w (Write without the file).
func Encode(w io.Writer, lm *volume.LabelMap, src *dicom.SourceRefs, opt Options) error {
	p, err := prepare(lm, src, opt)
	if err != nil {
		return err
	}
	return p.encode(w)
}

// frame is one output frame: segment s on source slice k.
type frame struct{ seg, k int }

type plan struct {
	lm     *volume.LabelMap
	src    *dicom.SourceRefs
	opt    Options
	segs   []Segment
	frames []frame
	ds     []el
}

// prepare checks the inputs and builds every element but the pixels.
func prepare(lm *volume.LabelMap, src *dicom.SourceRefs, opt Options) (*plan, error) {
	if lm == nil || src == nil {
		return nil, errors.New("no label map or no source")
	}
	if len(lm.Data) != lm.Size[0]*lm.Size[1]*lm.Size[2] {
		return nil, fmt.Errorf("label map holds %d labels for size %v", len(lm.Data), lm.Size)
	}
	if len(src.Slices) == 0 || src.Rows <= 0 || src.Columns <= 0 {
		return nil, fmt.Errorf("source %s: no slices", src.Name)
	}
	want := [3]int{src.Columns, src.Rows, len(src.Slices)}
	if lm.Size != want {
		return nil, fmt.Errorf("the mask (%dx%dx%d) is not on the grid of the DICOM source %s (%dx%dx%d)",
			lm.Size[0], lm.Size[1], lm.Size[2], src.Name, want[0], want[1], want[2])
	}
	if d := volume.SameGrid(src.Size, src.Affine, lm.Size, lm.Affine, mask.GridTolMM); d != "" {
		return nil, fmt.Errorf("the mask's geometry differs from the DICOM source %s: %s", src.Name, d)
	}
	s0 := src.Slices[0]
	if !s0.HasOrientation {
		return nil, fmt.Errorf("source %s has no ImageOrientationPatient: a DICOM-SEG needs the source's geometry (save as NIfTI instead)", src.Name)
	}
	for k, s := range src.Slices {
		if !s.HasPosition {
			return nil, fmt.Errorf("source %s: slice %d (%s) has no ImagePositionPatient: a DICOM-SEG needs the source's geometry (save as NIfTI instead)", src.Name, k, s.Path)
		}
	}
	p := &plan{lm: lm, src: src, opt: opt}
	if err := p.segments(); err != nil {
		return nil, err
	}
	if len(p.frames) == 0 {
		return nil, errors.New("the mask is empty: a DICOM-SEG needs at least one labelled voxel")
	}
	p.build()
	return p, nil
}

// segments finds the labels present and the slices each occupies.
func (p *plan) segments() error {
	lm := p.lm
	plane := lm.Size[0] * lm.Size[1]
	nz := lm.Size[2]
	// on[l] lists, per slice, whether label l occurs there.
	on := map[uint16][]bool{}
	for k := 0; k < nz; k++ {
		var last uint16
		for _, l := range lm.Data[k*plane : (k+1)*plane] {
			if l == 0 || l == last {
				continue
			}
			last = l
			s := on[l]
			if s == nil {
				s = make([]bool, nz)
				on[l] = s
			}
			s[k] = true
		}
	}
	labels := make([]uint16, 0, len(on))
	for l := range on {
		labels = append(labels, l)
	}
	sort.Slice(labels, func(i, j int) bool { return labels[i] < labels[j] })
	given := map[uint16]Segment{}
	for _, s := range p.opt.Segments {
		given[s.Label] = s
	}
	for i, l := range labels {
		s, ok := given[l]
		if !ok {
			s = Segment{Label: l, Name: volume.DefaultLabelName(l), Color: mask.DefaultColor(l)}
		}
		s.Number = i + 1
		if strings.TrimSpace(s.Name) == "" {
			s.Name = volume.DefaultLabelName(l)
		}
		if s.Category.Value == "" {
			s.Category = DefaultCategory
		}
		if s.Type.Value == "" {
			s.Type = DefaultType
		}
		if s.Algorithm == "" {
			s.Algorithm = Manual
			if p.opt.Model != "" {
				s.Algorithm = Semiautomatic
			}
		}
		switch s.Algorithm {
		case Manual, Semiautomatic, Automatic:
		default:
			return fmt.Errorf("segment %q: algorithm type %q (want MANUAL, SEMIAUTOMATIC or AUTOMATIC)", s.Name, s.Algorithm)
		}
		if s.Algorithm != Manual && s.AlgorithmName == "" {
			s.AlgorithmName = p.opt.Model
			if s.AlgorithmName == "" {
				s.AlgorithmName = "medsa"
			}
		}
		p.segs = append(p.segs, s)
		for k, x := range on[l] {
			if x {
				p.frames = append(p.frames, frame{seg: i, k: k})
			}
		}
	}
	return nil
}

func code(c Code) []el {
	return []el{
		str(tg(0x0008, 0x0100), "SH", clip(c.Value, 16)),
		str(tg(0x0008, 0x0102), "SH", clip(c.Scheme, 16)),
		str(tg(0x0008, 0x0104), "LO", clip(c.Meaning, 64)),
	}
}

// build makes every element of the data set except PixelData.
func (p *plan) build() {
	src, opt := p.src, p.opt
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	date, tm := now.Format("20060102"), now.Format("150405")
	seriesUID, sopUID := opt.SeriesInstanceUID, opt.SOPInstanceUID
	if seriesUID == "" {
		seriesUID = NewUID()
	}
	if sopUID == "" {
		sopUID = NewUID()
	}
	p.opt.SOPInstanceUID = sopUID
	orgUID := NewUID()
	def := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	defi := func(n, d int) int {
		if n <= 0 {
			return d
		}
		return n
	}
	st := src.Study
	cs := charset(st.SpecificCharacterSet, p.ourText())
	txt := func(s string, n int) string { return clip(encodeText(s, cs), n) }

	s0 := src.Slices[0]
	thick := s0.SliceThickness
	spacing := 0.0
	if len(src.Slices) > 1 {
		c := src.Affine
		spacing = math.Sqrt(c[0][2]*c[0][2] + c[1][2]*c[1][2] + c[2][2]*c[2][2])
	}
	if thick <= 0 {
		thick = spacing
	}
	pm := []el{ds(tg(0x0028, 0x0030), s0.PixelSpacing[0], s0.PixelSpacing[1])}
	if thick > 0 {
		pm = append(pm, ds(tg(0x0018, 0x0050), thick))
	}
	if spacing > 0 {
		pm = append(pm, ds(tg(0x0018, 0x0088), spacing))
	}
	shared := []el{
		sq(tg(0x0028, 0x9110), pm),
		sq(tg(0x0020, 0x9116), []el{ds(tg(0x0020, 0x0037), s0.Orientation[:]...)}),
	}
	perFrame := make([][]el, len(p.frames))
	for i, f := range p.frames {
		s := src.Slices[f.k]
		ref := []el{
			str(tg(0x0008, 0x1150), "UI", s.SOPClassUID),
			str(tg(0x0008, 0x1155), "UI", s.SOPInstanceUID),
			sq(tg(0x0040, 0xA170), code(Code{"121322", "DCM", "Source image for image processing operation"})),
			// The frame is on the source slice's grid, pixel for pixel.
			str(tg(0x0028, 0x135A), "CS", "YES"),
		}
		if s.Frame > 0 {
			ref = append(ref, is(tg(0x0008, 0x1160), s.Frame))
		}
		perFrame[i] = []el{
			sq(tg(0x0008, 0x9124), []el{
				sq(tg(0x0008, 0x2112), ref),
				sq(tg(0x0008, 0x9215), code(Code{"113076", "DCM", "Segmentation"})),
			}),
			sq(tg(0x0020, 0x9111), []el{ul(tg(0x0020, 0x9157), p.segs[f.seg].Number, f.k+1)}),
			sq(tg(0x0020, 0x9113), []el{ds(tg(0x0020, 0x0032), s.Position[:]...)}),
			sq(tg(0x0062, 0x000A), []el{us(tg(0x0062, 0x000B), p.segs[f.seg].Number)}),
		}
	}
	// The referenced instances, once each, in slice order.
	var inst [][]el
	seen := map[string]bool{}
	for _, s := range src.Slices {
		if !seen[s.SOPInstanceUID] {
			seen[s.SOPInstanceUID] = true
			inst = append(inst, []el{str(tg(0x0008, 0x1150), "UI", s.SOPClassUID), str(tg(0x0008, 0x1155), "UI", s.SOPInstanceUID)})
		}
	}
	var segItems [][]el
	for _, s := range p.segs {
		lab := RGBToDICOMLab(s.Color)
		it := []el{
			sq(tg(0x0062, 0x0003), code(s.Category)),
			us(tg(0x0062, 0x0004), s.Number),
			str(tg(0x0062, 0x0005), "LO", txt(s.Name, 64)),
			str(tg(0x0062, 0x0008), "CS", s.Algorithm),
			us(tg(0x0062, 0x000D), int(lab[0]), int(lab[1]), int(lab[2])),
			sq(tg(0x0062, 0x000F), code(s.Type)),
		}
		if s.Algorithm != Manual {
			it = append(it, str(tg(0x0062, 0x0009), "LO", txt(s.AlgorithmName, 64)))
		}
		if s.Description != "" {
			it = append(it, str(tg(0x0062, 0x0006), "ST", txt(s.Description, 1024)))
		}
		segItems = append(segItems, it)
	}
	p.ds = []el{
		str(tg(0x0008, 0x0008), "CS", "DERIVED", "PRIMARY"),
		str(tg(0x0008, 0x0012), "DA", date),
		str(tg(0x0008, 0x0013), "TM", tm),
		str(tg(0x0008, 0x0016), "UI", SOPClassSegmentation),
		str(tg(0x0008, 0x0018), "UI", sopUID),
		str(tg(0x0008, 0x0020), "DA", st.StudyDate),
		str(tg(0x0008, 0x0021), "DA", date),
		str(tg(0x0008, 0x0023), "DA", date),
		str(tg(0x0008, 0x0030), "TM", st.StudyTime),
		str(tg(0x0008, 0x0031), "TM", tm),
		str(tg(0x0008, 0x0033), "TM", tm),
		str(tg(0x0008, 0x0050), "SH", st.AccessionNumber),
		str(tg(0x0008, 0x0060), "CS", "SEG"),
		str(tg(0x0008, 0x0070), "LO", "medsa"),
		str(tg(0x0008, 0x0090), "PN", st.ReferringPhysicianName),
		str(tg(0x0008, 0x103E), "LO", txt(def(opt.SeriesDescription, "Segmentation"), 64)),
		str(tg(0x0008, 0x1090), "LO", "medsa"),
		sq(tg(0x0008, 0x1115), []el{
			sq(tg(0x0008, 0x114A), inst...),
			str(tg(0x0020, 0x000E), "UI", src.SeriesInstanceUID),
		}),
		str(tg(0x0010, 0x0010), "PN", st.PatientName),
		str(tg(0x0010, 0x0020), "LO", st.PatientID),
		str(tg(0x0010, 0x0030), "DA", st.PatientBirthDate),
		str(tg(0x0010, 0x0040), "CS", st.PatientSex),
		str(tg(0x0018, 0x1000), "LO", "1"),
		str(tg(0x0018, 0x1020), "LO", Version),
		str(tg(0x0020, 0x000D), "UI", st.StudyInstanceUID),
		str(tg(0x0020, 0x000E), "UI", seriesUID),
		str(tg(0x0020, 0x0010), "SH", st.StudyID),
		is(tg(0x0020, 0x0011), defi(opt.SeriesNumber, 300)),
		is(tg(0x0020, 0x0013), defi(opt.InstanceNumber, 1)),
		str(tg(0x0020, 0x1040), "LO", src.PositionReferenceIndicator),
		sq(tg(0x0020, 0x9221), []el{str(tg(0x0020, 0x9164), "UI", orgUID)}),
		sq(tg(0x0020, 0x9222),
			[]el{str(tg(0x0020, 0x9164), "UI", orgUID), at(tg(0x0020, 0x9165), tg(0x0062, 0x000B)),
				at(tg(0x0020, 0x9167), tg(0x0062, 0x000A)), str(tg(0x0020, 0x9421), "LO", "ReferencedSegmentNumber")},
			[]el{str(tg(0x0020, 0x9164), "UI", orgUID), at(tg(0x0020, 0x9165), tg(0x0020, 0x0032)),
				at(tg(0x0020, 0x9167), tg(0x0020, 0x9113)), str(tg(0x0020, 0x9421), "LO", "ImagePositionPatient")}),
		us(tg(0x0028, 0x0002), 1),
		str(tg(0x0028, 0x0004), "CS", "MONOCHROME2"),
		is(tg(0x0028, 0x0008), len(p.frames)),
		us(tg(0x0028, 0x0010), src.Rows),
		us(tg(0x0028, 0x0011), src.Columns),
		us(tg(0x0028, 0x0100), 1),
		us(tg(0x0028, 0x0101), 1),
		us(tg(0x0028, 0x0102), 0),
		us(tg(0x0028, 0x0103), 0),
		str(tg(0x0028, 0x2110), "CS", "00"),
		str(tg(0x0062, 0x0001), "CS", "BINARY"),
		sq(tg(0x0062, 0x0002), segItems...),
		str(tg(0x0070, 0x0080), "CS", contentLabel(opt.ContentLabel)),
		str(tg(0x0070, 0x0081), "LO", txt(opt.ContentDescription, 64)),
		str(tg(0x0070, 0x0084), "PN", txt(opt.ContentCreator, 64)),
		sq(tg(0x5200, 0x9229), shared),
		sq(tg(0x5200, 0x9230), perFrame...),
	}
	if cs != "" {
		p.ds = append(p.ds, str(tg(0x0008, 0x0005), "CS", cs))
	}
	if st.IssuerOfPatientID != "" {
		p.ds = append(p.ds, str(tg(0x0010, 0x0021), "LO", st.IssuerOfPatientID))
	}
	if st.PatientAge != "" {
		p.ds = append(p.ds, str(tg(0x0010, 0x1010), "AS", st.PatientAge))
	}
	if st.StudyDescription != "" {
		p.ds = append(p.ds, str(tg(0x0008, 0x1030), "LO", st.StudyDescription))
	}
	if src.FrameOfReferenceUID != "" {
		p.ds = append(p.ds, str(tg(0x0020, 0x0052), "UI", src.FrameOfReferenceUID))
	}
}

// encode writes the file: the prepared elements, then the packed pixels.
func (p *plan) encode(w io.Writer) error {
	if err := encodeFile(w, SOPClassSegmentation, p.opt.SOPInstanceUID, p.ds); err != nil {
		return err
	}
	pix := p.pack()
	hdr := []byte{0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 0, 0, 0, 0}
	n := uint32(len(pix))
	hdr[8], hdr[9], hdr[10], hdr[11] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(pix)
	return err
}

// pack bit-packs the frames: pixel p of frame f is bit (f*rows*cols + p) of the
// value, least significant bit first (PS3.5 8.1.1); frames are not byte-aligned
// when rows*cols is not a multiple of 8. The length is padded to even.
func (p *plan) pack() []byte {
	plane := p.lm.Size[0] * p.lm.Size[1]
	total := int64(plane) * int64(len(p.frames))
	out := make([]byte, (total+15)/16*2)
	one := func(fi int) {
		f := p.frames[fi]
		l := p.segs[f.seg].Label
		src := p.lm.Data[f.k*plane : (f.k+1)*plane]
		bit := int64(fi) * int64(plane)
		if bit%8 == 0 {
			// Byte-aligned frame: eight pixels per byte.
			dst := out[bit/8:]
			i := 0
			for ; i+8 <= plane; i += 8 {
				s := src[i : i+8 : i+8]
				var b byte
				for j, x := range s {
					if x == l {
						b |= 1 << j
					}
				}
				dst[i/8] = b
			}
			for ; i < plane; i++ {
				if src[i] == l {
					dst[i/8] |= 1 << (i % 8)
				}
			}
			return
		}
		for i, x := range src {
			if x == l {
				b := bit + int64(i)
				out[b/8] |= 1 << (b % 8)
			}
		}
	}
	if plane%8 != 0 {
		// Frames share their boundary bytes: one goroutine.
		for fi := range p.frames {
			one(fi)
		}
		return out
	}
	// Byte-aligned frames own their bytes: pack them in parallel.
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(p.frames)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fi := int(next.Add(1)) - 1; fi < len(p.frames); fi = int(next.Add(1)) - 1 {
				one(fi)
			}
		}()
	}
	wg.Wait()
	return out
}

// ourText is the free text Write adds (it decides the character set).
func (p *plan) ourText() []string {
	t := []string{p.opt.SeriesDescription, p.opt.ContentDescription, p.opt.ContentCreator}
	for _, s := range p.segs {
		t = append(t, s.Name, s.AlgorithmName, s.Description)
	}
	return t
}

// charset picks SpecificCharacterSet: the source's, or UTF-8 (ISO_IR 192)
// when our text needs more than ASCII and the source's values allow it.
func charset(src string, ours []string) string {
	ascii := true
	for _, s := range ours {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				ascii = false
			}
		}
	}
	if ascii {
		return src
	}
	switch strings.TrimSpace(src) {
	case "", "ISO_IR 6", "ISO_IR 192":
		return "ISO_IR 192"
	}
	return src
}

// encodeText writes s in character set cs: UTF-8 as is; Latin-1 where every
// rune fits; otherwise non-ASCII runes become '?'. Control characters and the
// value separator are replaced too.
func encodeText(s, cs string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\' || (r < 0x20 && r != '\t') || r == 0x7f || r == utf8.RuneError:
			b.WriteByte(' ')
		case r < 0x80:
			b.WriteRune(r)
		case cs == "ISO_IR 192":
			b.WriteRune(r)
		case cs == "ISO_IR 100" && r <= 0xff:
			b.WriteByte(byte(r))
		default:
			b.WriteByte('?')
		}
	}
	return strings.TrimSpace(b.String())
}

// clip truncates s to n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// contentLabel makes a valid CS ContentLabel (upper case, digits, '_', space; 16 chars).
func contentLabel(s string) string {
	if s == "" {
		s = "SEGMENTATION"
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r < 0x80 && (unicode.IsUpper(r) || unicode.IsDigit(r) || r == '_' || r == ' '):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return clip(b.String(), 16)
}
