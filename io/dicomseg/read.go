package dicomseg

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/volume"
)

// SEG is a parsed DICOM Segmentation: its segments and, per frame, the
// segment it belongs to and where it lies. Pixels stay packed (Frame unpacks one).
type SEG struct {
	Name                string
	TransferSyntax      string
	SOPInstanceUID      string
	SeriesInstanceUID   string
	StudyInstanceUID    string
	FrameOfReferenceUID string
	ReferencedSeries    []string // SeriesInstanceUIDs of ReferencedSeriesSequence
	Rows, Columns       int
	Type                string // BINARY or FRACTIONAL
	MaxFractional       int    // FRACTIONAL: the value that means 100%
	Segments            []Segment
	Frames              []Frame
	Notes               []string

	pix    []byte
	bits   int  // 1 or 8
	swapOW bool // big endian OW: bytes of each 16-bit word swapped
}

// Frame is where one frame of a SEG lies.
type Frame struct {
	Segment        int        // SegmentNumber
	Position       [3]float64 // ImagePositionPatient (LPS mm)
	HasPosition    bool
	Orientation    [6]float64
	HasOrientation bool
	PixelSpacing   [2]float64 // 0 when absent
	RefInstance    string     // SourceImageSequence ReferencedSOPInstanceUID ("" when absent)
	RefFrame       int        // ReferencedFrameNumber (0 when absent)
}

// MaxFileSize bounds a SEG file read whole into memory.
const MaxFileSize = 4 << 30

// ReadFile reads and parses a DICOM-SEG file.
func ReadFile(path string) (*SEG, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("read %s: is a folder, not a DICOM-SEG file", path)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("read %s: %d bytes is larger than the %d a DICOM-SEG may be here", path, st.Size(), int64(MaxFileSize))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse parses a DICOM-SEG held in memory; name is used in messages. Malformed
// input gives an error naming the problem, never a panic.
func Parse(name string, data []byte) (seg *SEG, err error) {
	defer func() {
		if r := recover(); r != nil {
			seg, err = nil, fmt.Errorf("read %s: malformed DICOM-SEG (%v)", name, r)
		}
	}()
	seg, err = parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return seg, nil
}

func parse(name string, data []byte) (*SEG, error) {
	ds, ts, err := parseFile(data)
	if err != nil {
		return nil, err
	}
	if c := ds.str(tg(0x0008, 0x0016)); c != SOPClassSegmentation {
		return nil, fmt.Errorf("not a DICOM Segmentation (SOP class %q, modality %q)", c, ds.str(tg(0x0008, 0x0060)))
	}
	s := &SEG{Name: name, TransferSyntax: ts, SOPInstanceUID: ds.str(tg(0x0008, 0x0018)),
		SeriesInstanceUID: ds.str(tg(0x0020, 0x000E)), StudyInstanceUID: ds.str(tg(0x0020, 0x000D)),
		FrameOfReferenceUID: ds.str(tg(0x0020, 0x0052)), Rows: ds.int(tg(0x0028, 0x0010), 0),
		Columns: ds.int(tg(0x0028, 0x0011), 0), Type: strings.ToUpper(ds.str(tg(0x0062, 0x0001)))}
	for _, it := range ds.seq(tg(0x0008, 0x1115)) {
		if u := it.str(tg(0x0020, 0x000E)); u != "" {
			s.ReferencedSeries = append(s.ReferencedSeries, u)
		}
	}
	if s.Rows <= 0 || s.Columns <= 0 {
		return nil, fmt.Errorf("rows x columns is %d x %d", s.Rows, s.Columns)
	}
	if spp := ds.int(tg(0x0028, 0x0002), 1); spp != 1 {
		return nil, fmt.Errorf("%d samples per pixel (a segmentation has 1)", spp)
	}
	s.bits = ds.int(tg(0x0028, 0x0100), 0)
	switch s.Type {
	case "BINARY":
		if s.bits != 1 {
			return nil, fmt.Errorf("BINARY segmentation with %d bits allocated (want 1)", s.bits)
		}
	case "FRACTIONAL":
		if s.bits != 8 {
			return nil, fmt.Errorf("FRACTIONAL segmentation with %d bits allocated (want 8)", s.bits)
		}
		s.MaxFractional = ds.int(tg(0x0062, 0x000E), 255)
		if s.MaxFractional <= 0 {
			return nil, fmt.Errorf("MaximumFractionalValue is %d", s.MaxFractional)
		}
		s.Notes = append(s.Notes, fmt.Sprintf("FRACTIONAL segmentation: voxels at 50%% or more of %d are inside", s.MaxFractional))
	default:
		return nil, fmt.Errorf("segmentation type %q is not supported (BINARY or FRACTIONAL)", s.Type)
	}
	if err := s.readSegments(ds); err != nil {
		return nil, err
	}
	n := 1
	if e := ds.get(tg(0x0028, 0x0008)); e != nil {
		if n = ds.int(tg(0x0028, 0x0008), 0); n < 1 {
			return nil, fmt.Errorf("NumberOfFrames is %q", ds.str(tg(0x0028, 0x0008)))
		}
	} else {
		s.Notes = append(s.Notes, "no NumberOfFrames: read as 1 frame")
	}
	pe := ds.get(tg(0x7FE0, 0x0010))
	if pe == nil {
		return nil, errors.New("no PixelData")
	}
	if pe.vr == "OB*" {
		return nil, errors.New("the pixels are encapsulated (compressed): decompress the file first, e.g. with dcmtk's dcmdrle or gdcmconv --raw")
	}
	s.pix = pe.val
	s.swapOW = ds.bo.Uint16([]byte{0, 1}) == 1 && pe.vr == "OW" // big endian OW
	// The bytes present must hold every frame before anything is allocated per frame.
	plane := int64(s.Rows) * int64(s.Columns)
	need := plane * int64(n)
	if s.bits == 1 {
		need = (need + 7) / 8
	}
	if need > int64(len(s.pix)) {
		return nil, fmt.Errorf("PixelData holds %d bytes; %d frame(s) of %dx%d at %d bit(s) need %d", len(s.pix), n, s.Columns, s.Rows, s.bits, need)
	}
	shared := ds.item(tg(0x5200, 0x9229))
	perFrame := ds.seq(tg(0x5200, 0x9230))
	if len(perFrame) < n {
		return nil, fmt.Errorf("PerFrameFunctionalGroupsSequence has %d item(s) for %d frame(s)", len(perFrame), n)
	}
	if len(perFrame) > n {
		s.Notes = append(s.Notes, fmt.Sprintf("PerFrameFunctionalGroupsSequence has %d items for %d frame(s): the first %d used", len(perFrame), n, n))
	}
	fg := func(i int, t uint32) *pset {
		if it := perFrame[i].item(t); it != nil {
			return it
		}
		return shared.item(t)
	}
	known := map[int]bool{}
	for _, sg := range s.Segments {
		known[sg.Number] = true
	}
	s.Frames = make([]Frame, n)
	for i := range s.Frames {
		f := &s.Frames[i]
		f.Segment = fg(i, tg(0x0062, 0x000A)).int(tg(0x0062, 0x000B), 0)
		if !known[f.Segment] {
			return nil, fmt.Errorf("frame %d: segment number %d is not in the SegmentSequence", i+1, f.Segment)
		}
		if p := fg(i, tg(0x0020, 0x9113)).floats(tg(0x0020, 0x0032)); len(p) == 3 {
			copy(f.Position[:], p)
			f.HasPosition = true
		}
		if o := fg(i, tg(0x0020, 0x9116)).floats(tg(0x0020, 0x0037)); len(o) == 6 {
			copy(f.Orientation[:], o)
			f.HasOrientation = true
		}
		if ps := fg(i, tg(0x0028, 0x9110)).floats(tg(0x0028, 0x0030)); len(ps) == 2 {
			copy(f.PixelSpacing[:], ps)
		}
		if ref := fg(i, tg(0x0008, 0x9124)).item(tg(0x0008, 0x2112)); ref != nil {
			f.RefInstance = ref.str(tg(0x0008, 0x1155))
			f.RefFrame = ref.int(tg(0x0008, 0x1160), 0)
		}
	}
	return s, nil
}

func (s *SEG) readSegments(ds *pset) error {
	items := ds.seq(tg(0x0062, 0x0002))
	if len(items) == 0 {
		return errors.New("no SegmentSequence")
	}
	seen := map[int]bool{}
	for i, it := range items {
		sg := Segment{Number: it.int(tg(0x0062, 0x0004), 0), Name: it.str(tg(0x0062, 0x0005)),
			Algorithm: strings.ToUpper(it.str(tg(0x0062, 0x0008))), AlgorithmName: it.str(tg(0x0062, 0x0009)),
			Description: it.str(tg(0x0062, 0x0006)), Category: readCode(it.item(tg(0x0062, 0x0003))),
			Type: readCode(it.item(tg(0x0062, 0x000F)))}
		if sg.Number < 1 || sg.Number > 65535 {
			return fmt.Errorf("segment %d: SegmentNumber %d", i+1, sg.Number)
		}
		if seen[sg.Number] {
			return fmt.Errorf("segment number %d appears twice", sg.Number)
		}
		seen[sg.Number] = true
		sg.Label = uint16(sg.Number)
		if lab := it.ints(tg(0x0062, 0x000D)); len(lab) == 3 {
			sg.Color = DICOMLabToRGB([3]uint16{uint16(lab[0]), uint16(lab[1]), uint16(lab[2])})
			sg.HasColor = true
		} else {
			sg.Color = mask.DefaultColor(sg.Label)
		}
		if sg.Name == "" {
			sg.Name = fmt.Sprintf("Segment %d", sg.Number)
		}
		s.Segments = append(s.Segments, sg)
	}
	sort.Slice(s.Segments, func(i, j int) bool { return s.Segments[i].Number < s.Segments[j].Number })
	return nil
}

func readCode(d *pset) Code {
	return Code{Value: d.str(tg(0x0008, 0x0100)), Scheme: d.str(tg(0x0008, 0x0102)), Meaning: d.str(tg(0x0008, 0x0104))}
}

// Frame unpacks frame i into dst (len rows*columns, row by row): 1 inside, 0 outside.
func (s *SEG) Frame(i int, dst []uint8) {
	plane := s.Rows * s.Columns
	dst = dst[:plane]
	if s.bits == 8 {
		half := (s.MaxFractional + 1) / 2
		for p, v := range s.pix[i*plane : (i+1)*plane] {
			dst[p] = b2u(int(v) >= half)
		}
		return
	}
	bit := int64(i) * int64(plane)
	if bit%8 == 0 && !s.swapOW {
		// Byte-aligned frame: eight pixels per byte.
		src := s.pix[bit/8:]
		p := 0
		for ; p+8 <= plane; p += 8 {
			b := src[p/8]
			d := dst[p : p+8 : p+8]
			for j := range d {
				d[j] = b >> j & 1
			}
		}
		for ; p < plane; p++ {
			dst[p] = src[p/8] >> (p % 8) & 1
		}
		return
	}
	for p := range dst {
		b := bit + int64(p)
		idx := b >> 3
		if s.swapOW {
			idx ^= 1
		}
		dst[p] = s.pix[idx] >> (b & 7) & 1
	}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Result is a SEG placed on its source: a label map on the source's grid
// (label value = SegmentNumber) and one label per segment.
type Result struct {
	LabelMap *volume.LabelMap
	Labels   []volume.Label
	Segments []Segment
	Notes    []string
}

// MismatchError says how a SEG does not fit the image it is opened on.
type MismatchError struct {
	Path  string
	Diffs []string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s does not fit the open image: %s", e.Path, strings.Join(e.Diffs, "; "))
}

// Read reads the DICOM-SEG at path and places it on the series src describes.
func Read(path string, src *dicom.SourceRefs) (*Result, error) {
	s, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return s.Place(src)
}

// Place puts every frame on the source slice at its position (the frame's
// ImagePositionPatient projected on the source's slice normal; frames without
// a position by their source image reference). A frame of reference,
// orientation, pixel spacing, size or position that does not fit the source is
// refused with a *MismatchError listing what differs.
func (s *SEG) Place(src *dicom.SourceRefs) (*Result, error) {
	if src == nil || len(src.Slices) == 0 {
		return nil, fmt.Errorf("place %s: no source image", s.Name)
	}
	var diffs []string
	notes := append([]string(nil), s.Notes...)
	if s.FrameOfReferenceUID != "" && src.FrameOfReferenceUID != "" && s.FrameOfReferenceUID != src.FrameOfReferenceUID {
		diffs = append(diffs, fmt.Sprintf("frame of reference %s, image %s", s.FrameOfReferenceUID, src.FrameOfReferenceUID))
	} else if s.FrameOfReferenceUID == "" || src.FrameOfReferenceUID == "" {
		notes = append(notes, "no frame of reference to compare: placed by position alone")
	}
	if s.Rows != src.Rows || s.Columns != src.Columns {
		diffs = append(diffs, fmt.Sprintf("frames are %dx%d (columns x rows), image %dx%d", s.Columns, s.Rows, src.Columns, src.Rows))
	}
	if len(diffs) > 0 {
		return nil, &MismatchError{Path: s.Name, Diffs: diffs}
	}
	s0 := src.Slices[0]
	iop := s0.Orientation
	if !s0.HasOrientation {
		return nil, fmt.Errorf("place %s: the image has no orientation to place frames by", s.Name)
	}
	unit(iop[:3])
	unit(iop[3:])
	normal := [3]float64{iop[1]*iop[5] - iop[2]*iop[4], iop[2]*iop[3] - iop[0]*iop[5], iop[0]*iop[4] - iop[1]*iop[3]}
	// Positions fit within 5% of the finest spacing (at least GridTolMM):
	// other writers round positions to a few decimals.
	step := math.Inf(1)
	for k := 1; k < len(src.Slices); k++ {
		step = math.Min(step, math.Abs(dot(normal, src.Slices[k].Position)-dot(normal, src.Slices[k-1].Position)))
	}
	fine := math.Min(step, math.Min(s0.PixelSpacing[0], s0.PixelSpacing[1]))
	tol := math.Max(mask.GridTolMM, 0.05*fine)
	along := make([]float64, len(src.Slices))
	for k, sl := range src.Slices {
		along[k] = dot(normal, sl.Position)
	}
	byRef := map[[2]any]int{}
	for k, sl := range src.Slices {
		byRef[[2]any{sl.SOPInstanceUID, sl.Frame}] = k
	}
	nx, ny, nz := src.Columns, src.Rows, len(src.Slices)
	if err := volume.CheckSize([3]int{nx, ny, nz}, 1); err != nil {
		return nil, fmt.Errorf("place %s: %w", s.Name, err)
	}
	lm := &volume.LabelMap{Size: [3]int{nx, ny, nz}, Affine: src.Affine, Data: make([]uint16, nx*ny*nz)}
	plane := nx * ny
	buf := make([]uint8, plane)
	overlap := 0
	ascending := sort.Float64sAreSorted(along)
	for i, f := range s.Frames {
		if f.HasOrientation {
			o := f.Orientation
			if !unit(o[:3]) || !unit(o[3:]) || !near(o[:], iop[:], 1e-3) {
				diffs = append(diffs, fmt.Sprintf("frame %d orientation %v, image %v", i+1, f.Orientation, s0.Orientation))
				break
			}
		}
		if f.PixelSpacing[0] > 0 && !near(f.PixelSpacing[:], s0.PixelSpacing[:], 1e-3+1e-4*fine) {
			diffs = append(diffs, fmt.Sprintf("frame %d pixel spacing %v mm, image %v mm", i+1, f.PixelSpacing, s0.PixelSpacing))
			break
		}
		k := -1
		switch {
		case f.HasPosition:
			d := dot(normal, f.Position)
			if ascending {
				k = sort.SearchFloat64s(along, d)
				if k == len(along) || k > 0 && d-along[k-1] < along[k]-d {
					k--
				}
			} else {
				k = nearest(along, d)
			}
			off := math.Sqrt(dist2(f.Position, src.Slices[k].Position))
			if off > tol {
				diffs = append(diffs, fmt.Sprintf("frame %d at %s lies %.4g mm from the nearest slice %d (%s; %.4g mm along the normal)",
					i+1, fmtPos(f.Position), off, k, fmtPos(src.Slices[k].Position), math.Abs(d-along[k])))
				k = -1
			}
		case f.RefInstance != "":
			kk, ok := byRef[[2]any{f.RefInstance, f.RefFrame}]
			if !ok && f.RefFrame == 1 {
				kk, ok = byRef[[2]any{f.RefInstance, 0}]
			}
			if !ok {
				diffs = append(diffs, fmt.Sprintf("frame %d has no position and references instance %s (frame %d), not in the image", i+1, f.RefInstance, f.RefFrame))
				break
			}
			k = kk
		default:
			diffs = append(diffs, fmt.Sprintf("frame %d has neither a position nor a source image reference", i+1))
		}
		if len(diffs) >= 5 {
			break
		}
		if k < 0 {
			continue
		}
		s.Frame(i, buf)
		dst := lm.Data[k*plane : (k+1)*plane]
		l := uint16(f.Segment)
		for p, on := range buf {
			if on != 0 {
				if dst[p] != 0 && dst[p] != l {
					overlap++
				}
				dst[p] = l
			}
		}
	}
	if len(diffs) > 0 {
		if len(diffs) >= 5 {
			diffs = append(diffs, "(stopped at 5 differences)")
		}
		return nil, &MismatchError{Path: s.Name, Diffs: diffs}
	}
	if overlap > 0 {
		notes = append(notes, fmt.Sprintf("segments overlap in %d voxel(s): each holds the higher segment number (a label map has one label per voxel)", overlap))
	}
	r := &Result{LabelMap: lm, Segments: s.Segments, Notes: notes}
	for _, sg := range s.Segments {
		r.Labels = append(r.Labels, volume.Label{Value: sg.Label, Name: sg.Name, Color: sg.Color})
	}
	return r, nil
}

func dot(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func dist2(a, b [3]float64) float64 {
	d := [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]}
	return dot(d, d)
}

// unit normalises v in place; false when it is not roughly a unit vector.
func unit(v []float64) bool {
	n := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
	if !(n > 0.5 && n < 1.5) {
		return false
	}
	for i := range v {
		v[i] /= n
	}
	return true
}

func near(a, b []float64, tol float64) bool {
	for i := range a {
		if !(math.Abs(a[i]-b[i]) <= tol) {
			return false
		}
	}
	return true
}

func nearest(x []float64, d float64) int {
	best := 0
	for k := range x {
		if math.Abs(x[k]-d) < math.Abs(x[best]-d) {
			best = k
		}
	}
	return best
}

func fmtPos(p [3]float64) string { return fmt.Sprintf("(%.4g, %.4g, %.4g)", p[0], p[1], p[2]) }
