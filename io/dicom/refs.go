package dicom

// Source references for writers of derived objects (DICOM-SEG): for each slice k
// of the volume ReadFiles returns, the instance (and frame) it came from and its
// geometry as the file states it, plus the patient/study attributes to copy.
// Headers only: no pixels are decoded.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/medsa/medsa/io/volume"
)

// Tags read only for references (registered into the walker's keep list at init,
// so the parser needs no edit).
var (
	rCharset      = mk(0x0008, 0x0005)
	rSOPInstance  = mk(0x0008, 0x0018)
	rStudyDate    = mk(0x0008, 0x0020)
	rStudyTime    = mk(0x0008, 0x0030)
	rAccession    = mk(0x0008, 0x0050)
	rReferring    = mk(0x0008, 0x0090)
	rStudyDesc    = mk(0x0008, 0x1030)
	rPatientName  = mk(0x0010, 0x0010)
	rPatientID    = mk(0x0010, 0x0020)
	rIssuerOfPID  = mk(0x0010, 0x0021)
	rBirthDate    = mk(0x0010, 0x0030)
	rPatientSex   = mk(0x0010, 0x0040)
	rPatientAge   = mk(0x0010, 0x1010)
	rStudyID      = mk(0x0020, 0x0010)
	rFrameOfRef   = mk(0x0020, 0x0052)
	rPosRefIndic  = mk(0x0020, 0x1040)
	rLaterality   = mk(0x0020, 0x0060)
	rManufacturer = mk(0x0008, 0x0070)
)

func init() {
	for t, vr := range map[tag]string{
		rCharset: "CS", rSOPInstance: "UI", rStudyDate: "DA", rStudyTime: "TM", rAccession: "SH",
		rReferring: "PN", rStudyDesc: "LO", rPatientName: "PN", rPatientID: "LO", rIssuerOfPID: "LO",
		rBirthDate: "DA", rPatientSex: "CS", rPatientAge: "AS", rStudyID: "SH", rFrameOfRef: "UI",
		rPosRefIndic: "LO", rLaterality: "CS", rManufacturer: "LO",
	} {
		keep[t] = true
		if _, ok := implicitVR[t]; !ok {
			implicitVR[t] = vr
		}
	}
}

// SliceRef is where slice k of the volume came from.
type SliceRef struct {
	Path           string
	SOPClassUID    string
	SOPInstanceUID string
	Frame          int        // 1-based frame number in a multi-frame instance; 0 for a single-frame one
	Position       [3]float64 // ImagePositionPatient (LPS mm, as in the file)
	HasPosition    bool
	Orientation    [6]float64 // ImageOrientationPatient as in the file (row cosine, column cosine)
	HasOrientation bool
	PixelSpacing   [2]float64 // row spacing, column spacing (mm)
	SliceThickness float64    // 0 when absent
}

// Study holds the patient and study attributes a derived object copies
// verbatim (the source's character set comes with them).
type Study struct {
	SpecificCharacterSet   string
	PatientName            string
	PatientID              string
	IssuerOfPatientID      string
	PatientBirthDate       string
	PatientSex             string
	PatientAge             string
	StudyInstanceUID       string
	StudyDate              string
	StudyTime              string
	StudyID                string
	AccessionNumber        string
	ReferringPhysicianName string
	StudyDescription       string
}

// SourceRefs describes the series behind a volume, slice by slice.
type SourceRefs struct {
	Name                       string // the paths read, for messages
	Slices                     []SliceRef
	Rows, Columns              int
	SeriesInstanceUID          string
	SeriesDescription          string
	Modality                   string
	FrameOfReferenceUID        string
	PositionReferenceIndicator string
	Laterality                 string
	Study                      Study
	// Size and Affine are those of the volume ReadFiles gives for the same
	// files (RAS+), so a label map can be checked against them.
	Size   [3]int
	Affine volume.Affine
}

// ReadRefs reads the headers of series uid ("" when there is only one) under
// paths and returns the per-slice references, in the slice order of ReadFiles.
func ReadRefs(paths []string, uid string) (*SourceRefs, error) {
	name := strings.Join(paths, ", ")
	hs, _, err := scan(context.Background(), paths)
	if err != nil {
		return nil, err
	}
	series, by := group(hs)
	var chosen []*header
	switch {
	case uid != "":
		if chosen = by[uid]; chosen == nil {
			return nil, fmt.Errorf("%s: no series %s (found %d series)", name, uid, len(series))
		}
	case len(series) > 1:
		return nil, &MultipleSeriesError{Path: name, Series: series}
	default:
		chosen = by[series[0].UID]
	}
	return refsOf(name, chosen)
}

// refsOf repeats build's selection (largest pixel-format group, file order,
// frames, geometry) on headers only.
func refsOf(name string, hs []*header) (r *SourceRefs, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("%s: malformed DICOM (panic: %v)", name, p)
		}
	}()
	byFmt := map[pixelFormat][]*header{}
	for _, h := range hs {
		f := formatOf(h.ds)
		byFmt[f] = append(byFmt[f], h)
	}
	var pf pixelFormat
	best := -1
	for f, g := range byFmt {
		if len(g) > best || (len(g) == best && g[0].path < byFmt[pf][0].path) {
			pf, best = f, len(g)
		}
	}
	hs = append([]*header(nil), byFmt[pf]...)
	sort.Slice(hs, func(i, j int) bool { return hs[i].path < hs[j].path })
	if err := pf.check(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, hs[0].path, err)
	}
	var all []frameRef
	for _, h := range hs {
		fr, err := frames(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.path, err)
		}
		if len(fr) != max(1, h.nframes) {
			// A Siemens mosaic: its slices are tiles of one frame, which no reference can name.
			return nil, fmt.Errorf("%s: one image holding %d slices (a mosaic): derived objects cannot reference its slices", h.path, len(fr))
		}
		all = append(all, fr...)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%s: no frames", name)
	}
	for i := range all {
		all[i].seq = i
	}
	sel, affine, _, err := geometry(all)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d := hs[0].ds
	r = &SourceRefs{Name: name, Rows: pf.rows, Columns: pf.cols, Size: [3]int{pf.cols, pf.rows, len(sel)}, Affine: affine,
		SeriesInstanceUID: d.str(tSeriesUID), SeriesDescription: d.str(tSeriesDescription),
		Modality: strings.ToUpper(d.str(tModality)), FrameOfReferenceUID: d.str(rFrameOfRef),
		PositionReferenceIndicator: d.str(rPosRefIndic), Laterality: d.str(rLaterality),
		Study: Study{SpecificCharacterSet: d.str(rCharset), PatientName: d.str(rPatientName), PatientID: d.str(rPatientID),
			IssuerOfPatientID: d.str(rIssuerOfPID), PatientBirthDate: d.str(rBirthDate), PatientSex: d.str(rPatientSex),
			PatientAge: d.str(rPatientAge), StudyInstanceUID: d.str(tStudyUID), StudyDate: d.str(rStudyDate),
			StudyTime: d.str(rStudyTime), StudyID: d.str(rStudyID), AccessionNumber: d.str(rAccession),
			ReferringPhysicianName: d.str(rReferring), StudyDescription: d.str(rStudyDesc)}}
	for _, f := range sel {
		s := SliceRef{Path: f.h.path, SOPClassUID: f.h.ds.str(tSOPClass), SOPInstanceUID: f.h.ds.str(rSOPInstance),
			Position: f.pos, HasPosition: f.hasPos, PixelSpacing: f.ps}
		if f.h.nframes > 1 {
			s.Frame = f.idx + 1
		}
		if iop := rawFG(f.h, f.idx, tPlaneOriSeq, tIOP); len(iop) == 6 && f.hasIOP {
			copy(s.Orientation[:], iop)
			s.HasOrientation = true
		}
		if t := rawFG(f.h, f.idx, tPixelMeasuresSeq, tSliceThickness); len(t) > 0 && t[0] > 0 && !math.IsInf(t[0], 0) {
			s.SliceThickness = t[0]
		}
		if s.SOPInstanceUID == "" {
			return nil, fmt.Errorf("%s: no SOPInstanceUID: it cannot be referenced", f.h.path)
		}
		r.Slices = append(r.Slices, s)
	}
	if r.SeriesInstanceUID == "" {
		return nil, errors.New(name + ": no SeriesInstanceUID")
	}
	return r, nil
}

// rawFG is value t of frame i as the file states it: the per-frame functional
// group seq, the shared one, then the top level (values, not normalised).
func rawFG(h *header, i int, seq, t tag) []float64 {
	d := h.ds
	if e := d.get(tPerFrameFG); e != nil && i < len(e.items) {
		if v := e.items[i].item(seq).floats(t); v != nil {
			return v
		}
	}
	if v := d.item(tSharedFG).item(seq).floats(t); v != nil {
		return v
	}
	return d.floats(t)
}
