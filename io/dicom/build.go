package dicom

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/medsa/medsa/io/volume"
)

type volumeT = volume.Volume

// frameRef is one 2D frame of the series: a single-frame file or one frame of a multi-frame file.
type frameRef struct {
	h         *header
	idx       int // frame index inside the file
	pos       [3]float64
	hasPos    bool
	iop       [6]float64
	hasIOP    bool
	ps        [2]float64 // row spacing, column spacing (PixelSpacing order)
	slope     float64
	inter     float64
	wc, ww    float64
	hasWin    bool
	secondary [4]int // temporal, acquisition, echo, stack position: picks among duplicates
	seq       int
	inst      int  // InstanceNumber (0 when absent): orders frames only when no positions exist
	hasInst   bool // InstanceNumber present
	badIOP    bool // an orientation is given but is not two orthogonal unit vectors
	badPS     bool // a PixelSpacing is missing, zero, negative or not finite (1 mm used)
	badSlope  bool // RescaleSlope is zero or not finite (1 used)
}

// pixelFormat is what every file of the series must share.
type pixelFormat struct {
	rows, cols, spp, alloc, stored, high, rep int
	photo                                     string
	planar                                    int
}

func formatOf(d *dataset) pixelFormat {
	f := pixelFormat{rows: d.uint(tRows, 0), cols: d.uint(tColumns, 0), spp: d.uint(tSamplesPerPixel, 1),
		alloc: d.uint(tBitsAllocated, 0), rep: d.uint(tPixelRep, 0), photo: strings.ToUpper(d.str(tPhotometric)),
		planar: d.uint(tPlanarConfig, 0)}
	f.stored = d.uint(tBitsStored, f.alloc)
	f.high = d.uint(tHighBit, f.stored-1)
	if f.photo == "" {
		f.photo = "MONOCHROME2"
	}
	return f
}

func (f pixelFormat) check() error {
	switch {
	case f.rows <= 0 || f.cols <= 0:
		return fmt.Errorf("rows x columns is %d x %d", f.rows, f.cols)
	case f.spp != 1 && f.spp != 3:
		return fmt.Errorf("%d samples per pixel (want 1 or 3)", f.spp)
	case f.alloc == 1 && f.spp == 1:
		return nil // bit-packed (segmentations)
	case f.alloc != 8 && f.alloc != 16 && f.alloc != 32:
		return fmt.Errorf("%d bits allocated (want 1, 8, 16 or 32)", f.alloc)
	case f.stored < 1 || f.stored > f.alloc || f.high < f.stored-1 || f.high >= f.alloc:
		return fmt.Errorf("bits stored %d / high bit %d do not fit %d bits allocated", f.stored, f.high, f.alloc)
	}
	return nil
}

// frames expands a header into its frames with per-frame geometry.
func frames(h *header) ([]frameRef, error) {
	d := h.ds
	n := max(1, h.nframes)
	if n > 1<<20 {
		return nil, fmt.Errorf("number of frames %d", n)
	}
	// The file must hold what the header claims before anything is allocated per frame:
	// native pixels their bytes, encapsulated ones at least an 8-byte item per frame.
	if h.hasPix {
		end := h.size
		if h.data != nil {
			end = int64(len(h.data))
		}
		avail := max(0, end-h.pixOff)
		if h.pixLen >= 0 {
			avail = min(avail, h.pixLen)
			if pf := formatOf(d); pf.check() == nil {
				if need := nativeBytes(pf, n); need > avail {
					return nil, fmt.Errorf("PixelData holds %d bytes; %d frame(s) of %dx%dx%d at %d bits need %d",
						avail, n, pf.cols, pf.rows, pf.spp, pf.alloc, need)
				}
			}
		} else if int64(n)*8 > avail {
			return nil, fmt.Errorf("NumberOfFrames is %d but the encapsulated PixelData (%d bytes) cannot hold that many fragments", n, avail)
		}
	}
	shared := d.item(tSharedFG)
	var perFrame []*dataset
	if e := d.get(tPerFrameFG); e != nil {
		perFrame = e.items
	}
	// fg returns the first item of functional-group sequence t for frame i.
	fg := func(i int, t tag) *dataset {
		if i < len(perFrame) {
			if it := perFrame[i].item(t); it != nil {
				return it
			}
		}
		if shared != nil {
			return shared.item(t)
		}
		return nil
	}
	top := func(x *dataset, t tag) []float64 {
		if x != nil {
			if v := x.floats(t); v != nil {
				return v
			}
		}
		return nil
	}
	out := make([]frameRef, n)
	for i := 0; i < n; i++ {
		f := frameRef{h: h, idx: i, slope: 1}
		pos := top(fg(i, tPlanePosSeq), tIPP)
		iop := top(fg(i, tPlaneOriSeq), tIOP)
		ps := top(fg(i, tPixelMeasuresSeq), tPixelSpacing)
		if n == 1 || perFrame != nil || shared != nil {
			if pos == nil && n == 1 {
				pos = d.floats(tIPP)
			}
			if iop == nil {
				iop = d.floats(tIOP)
			}
		} else if iop == nil {
			iop = d.floats(tIOP) // classic multi-frame: one orientation, no per-frame position
		}
		if ps == nil {
			ps = d.floats(tPixelSpacing)
		}
		if len(pos) == 3 && finite(pos...) {
			f.hasPos = true
			copy(f.pos[:], pos)
		}
		if len(iop) == 6 && finite(iop...) {
			copy(f.iop[:], iop)
			f.hasIOP = normalizeIOP(&f.iop)
		}
		f.badIOP = iop != nil && !f.hasIOP
		f.ps = [2]float64{1, 1}
		if len(ps) == 2 && finite(ps...) && ps[0] > 0 && ps[1] > 0 {
			f.ps = [2]float64{ps[0], ps[1]}
		} else if ps != nil || d.get(tPixelSpacing) != nil {
			f.badPS = true
		}
		f.inst, f.hasInst = d.uint(tInstanceNumber, 0), d.get(tInstanceNumber) != nil
		pv := fg(i, tPixelValueSeq)
		if pv == nil {
			pv = d
		}
		f.slope = pv.float(tRescaleSlope, d.float(tRescaleSlope, 1))
		f.inter = pv.float(tRescaleIntercept, d.float(tRescaleIntercept, 0))
		for _, x := range []*dataset{pv, d} {
			if v := x.floats(tRescaleSlope); len(v) > 0 {
				f.badSlope = v[0] == 0 || !finite(v[0])
				break
			}
		}
		if f.slope == 0 {
			f.slope = 1
		}
		voi := fg(i, tFrameVOISeq)
		if voi == nil {
			voi = d
		}
		wc, ww := voi.floats(tWindowCenter), voi.floats(tWindowWidth)
		if len(wc) > 0 && len(ww) > 0 && finite(wc[0], ww[0]) && ww[0] > 0 {
			f.wc, f.ww, f.hasWin = wc[0], ww[0], true
		}
		fc := fg(i, tFrameContentSeq)
		f.secondary = [4]int{d.uint(tTemporalPosition, 0), d.uint(tAcquisitionNumber, 0), d.uint(tEchoNumbers, 0), 0}
		if fc != nil {
			f.secondary[0] = fc.uint(tTemporalIndex, f.secondary[0])
			f.secondary[3] = fc.uint(tInStackPos, 0)
		}
		out[i] = f
	}
	if h.mos.n > 0 && n == 1 {
		return mosaicFrames(out[0]), nil
	}
	return out, nil
}

// units is how many slices a file holds: its frames, or a mosaic's tiles.
func units(h *header) int {
	if h.mos.n > 0 {
		return h.mos.n
	}
	return h.nframes
}

// normalizeIOP checks two unit, orthogonal direction cosines (renormalising small
// rounding) and reports whether they are usable.
func normalizeIOP(o *[6]float64) bool {
	for _, off := range []int{0, 3} {
		n := math.Sqrt(o[off]*o[off] + o[off+1]*o[off+1] + o[off+2]*o[off+2])
		if n < 0.5 || n > 1.5 {
			return false
		}
		for c := 0; c < 3; c++ {
			o[off+c] /= n
		}
	}
	dot := o[0]*o[3] + o[1]*o[4] + o[2]*o[5]
	return math.Abs(dot) < 0.01
}

func cross(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func dot(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// build assembles the chosen files of one series into a volume.
func build(ctx context.Context, name string, hs []*header) (*volumeT, error) {
	var notes []string
	// Keep the largest group of files that share the pixel format (and mosaic tiling).
	type fmtKey struct {
		pf  pixelFormat
		mos [2]int
	}
	byFmt := map[fmtKey][]*header{}
	for _, h := range hs {
		f := fmtKey{formatOf(h.ds), [2]int{h.mos.n, h.mos.grid}}
		byFmt[f] = append(byFmt[f], h)
	}
	var key fmtKey
	best := -1
	for f, g := range byFmt {
		if len(g) > best || (len(g) == best && g[0].path < byFmt[key][0].path) {
			key, best = f, len(g)
		}
	}
	pf := key.pf
	if len(byFmt) > 1 {
		notes = append(notes, fmt.Sprintf("kept %d of %d files sharing %dx%d %s pixels; %d differ (other image sizes, formats or mosaic tilings)",
			best, len(hs), pf.cols, pf.rows, pf.photo, len(hs)-best))
	}
	hs = byFmt[key]
	mos := hs[0].mos
	if mos.n > 0 {
		notes = append(notes, fmt.Sprintf("Siemens mosaic: %d slices of %dx%d unpacked from a %dx%d grid", mos.n, mos.tileCols, mos.tileRows, mos.grid, mos.grid))
	} else if hs[0].mosNote != "" {
		notes = append(notes, hs[0].mosNote)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].path < hs[j].path })
	if err := pf.check(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, hs[0].path, err)
	}
	ts := hs[0].ts
	for _, h := range hs {
		if err := checkSyntax(h.ts); err != nil {
			return nil, fmt.Errorf("%s: %w", h.path, err)
		}
	}
	var all []frameRef
	var lying []string
	raw := 0
	for _, h := range hs {
		if h.nfLie {
			lying = append(lying, filepath0(h.path))
			raw = h.nfRaw
		}
	}
	if len(lying) > 0 {
		more := ""
		if len(lying) > 3 {
			more = fmt.Sprintf(" and %d more", len(lying)-3)
			lying = lying[:3]
		}
		notes = append(notes, fmt.Sprintf("NumberOfFrames is %d in %s%s; read as 1 frame", raw, strings.Join(lying, ", "), more))
	}
	for _, h := range hs {
		fr, err := frames(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.path, err)
		}
		all = append(all, fr...)
	}
	for i := range all {
		all[i].seq = i
	}
	sel, affine, gnotes, err := geometry(all)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	notes = append(notes, gnotes...)

	channels := 1
	if pf.spp == 3 || pf.photo == "PALETTE COLOR" {
		channels = 3
	}
	size := [3]int{pf.cols, pf.rows, len(sel)}
	if mos.n > 0 {
		size[0], size[1] = mos.tileCols, mos.tileRows
	}
	if err := volume.CheckSize(size, channels); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := volume.CheckMemory(fmt.Sprintf("%s: %dx%dx%d x %d channel(s) as float32", name, size[0], size[1], size[2], channels),
		int64(size[0])*int64(size[1])*int64(size[2])*int64(channels)*4); err != nil {
		return nil, err
	}
	// The files must justify the allocation: native pixels need their bytes;
	// compressed ones at most 1024 voxels per byte.
	frameVox := int64(size[0]) * int64(size[1]) * int64(channels)
	var have int64
	for _, h := range hs {
		have += h.size
	}
	for _, h := range hs {
		if h.pixLen < 0 {
			continue
		}
		nf := h.nframes
		need := nativeBytes(pf, nf)
		end := h.size
		if h.data != nil {
			end = int64(len(h.data))
		}
		if h.pixLen < need || h.pixOff+need > end {
			return nil, fmt.Errorf("%s: PixelData holds %d bytes (%d in the file); %d frame(s) of %dx%dx%d at %d bits need %d",
				h.path, h.pixLen, max(0, end-h.pixOff), nf, pf.cols, pf.rows, pf.spp, pf.alloc, need)
		}
	}
	if frameVox*int64(len(sel)) > have*1024 {
		return nil, fmt.Errorf("%s: %d frames of %dx%d claimed by %d bytes of files", name, len(sel), pf.cols, pf.rows, have)
	}
	v := &volumeT{Size: size, Channels: channels, Affine: affine, Modality: strings.ToUpper(hs[0].ds.str(tModality)),
		Source: name, Name: hs[0].ds.str(tSeriesDescription)}
	if v.Modality == "" {
		v.Modality = "OT"
	}
	if v.Name == "" {
		v.Name = filepath0(hs[0].path)
	}
	v.Data = make([]float32, v.NumVoxels()*channels)

	// Decode per file, in parallel; each file's frames go to their slots.
	slots := map[*header][]int{} // file -> k for each frame index (-1 if unused)
	for k, f := range sel {
		s := slots[f.h]
		if s == nil {
			s = make([]int, units(f.h))
			for i := range s {
				s[i] = -1
			}
			slots[f.h] = s
		}
		if f.idx < len(s) {
			s[f.idx] = k
		}
	}
	files := make([]*header, 0, len(slots))
	for h := range slots {
		files = append(files, h)
	}
	errs := make([]error, len(files))
	plane := int(frameVox)
	if err := parallel(ctx, len(files), func(i int) {
		errs[i] = decodeFile(files[i], pf, slots[files[i]], sel, v.Data, plane)
	}); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	v.DataType = dataType(pf, channels, sel)
	v.Window = window(v, sel, pf)
	if ts != tsExplicitLE && ts != tsImplicitLE {
		notes = append(notes, "transfer syntax: "+tsName(ts))
	}
	v.Notes = notes
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

func filepath0(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

func checkSyntax(ts string) error {
	switch ts {
	case tsImplicitLE, tsExplicitLE, tsExplicitBE, tsDeflatedLE, tsJPEGBaseline, tsJPEGExtended, tsJPEGLossless, tsJPEGLossSV1, tsRLE:
		return nil
	}
	if isJ2K(ts) || isJPEGLS(ts) {
		return nil
	}
	return fmt.Errorf("transfer syntax %s is not supported (decode it first, e.g. with dcmtk's dcmdjpls/dcmdjpeg or gdcmconv --raw)", tsName(ts))
}

// geometry sorts frames along the slice normal, drops duplicates, and derives the affine.
func geometry(all []frameRef) ([]frameRef, volume.Affine, []string, error) {
	notes, commonPS := frameNotes(all)
	var placed, unplaced []frameRef
	for _, f := range all {
		if f.hasPos && f.hasIOP {
			placed = append(placed, f)
		} else {
			unplaced = append(unplaced, f)
		}
	}
	// A series where most frames carry a position but a few do not: the positions
	// decide the order and the odd frames are left out, named. Stacking everything in
	// file order instead would scramble the whole volume.
	if len(placed) >= 2 && len(unplaced) > 0 {
		notes = append(notes, fmt.Sprintf("left out %d of %d frame(s) without a usable ImagePositionPatient/ImageOrientationPatient (%s); the other %d are placed by their positions",
			len(unplaced), len(all), frameNames(unplaced, 3), len(placed)))
		all = placed
	}
	spatial := len(unplaced) == 0 || len(placed) >= 2
	stackOrder := "file name order"
	if !spatial && len(all) > 1 {
		// No positions at all: InstanceNumber when every frame has a distinct one, else file order.
		byInst := true
		seen := map[[2]int]bool{}
		for _, f := range all {
			key := [2]int{f.inst, f.idx}
			if !f.hasInst || seen[key] {
				byInst = false
				break
			}
			seen[key] = true
		}
		if byInst {
			sort.SliceStable(all, func(i, j int) bool {
				if all[i].inst != all[j].inst {
					return all[i].inst < all[j].inst
				}
				return all[i].idx < all[j].idx
			})
		}
		if byInst {
			stackOrder = "InstanceNumber order"
		}
	}
	first := all[0]
	first.ps = commonPS
	if spatial {
		for _, f := range all[1:] {
			for c := 0; c < 6; c++ {
				if math.Abs(f.iop[c]-first.iop[c]) > 1e-3 {
					return nil, volume.Affine{}, nil, fmt.Errorf("%s: orientation %v differs from %v in %s: not one volume",
						f.h.path, f.iop, first.iop, first.h.path)
				}
			}
		}
	}
	row := [3]float64{1, 0, 0}
	col := [3]float64{0, 1, 0}
	if first.hasIOP {
		row = [3]float64{first.iop[0], first.iop[1], first.iop[2]}
		col = [3]float64{first.iop[3], first.iop[4], first.iop[5]}
	}
	normal := cross(row, col)
	sel := all
	var kvec [3]float64
	origin := first.pos
	if spatial {
		sort.SliceStable(all, func(i, j int) bool {
			di, dj := dot(normal, all[i].pos), dot(normal, all[j].pos)
			if math.Abs(di-dj) > 1e-4 {
				return di < dj
			}
			a, b := all[i].secondary, all[j].secondary
			for c := range a {
				if a[c] != b[c] {
					return a[c] < b[c]
				}
			}
			return all[i].seq < all[j].seq
		})
		// Group equal positions.
		var uniq []frameRef
		var mult []int
		for i, f := range all {
			if i > 0 && math.Abs(dot(normal, f.pos)-dot(normal, uniq[len(uniq)-1].pos)) < 1e-3 {
				mult[len(mult)-1]++
				continue
			}
			uniq = append(uniq, f)
			mult = append(mult, 1)
		}
		if len(uniq) < len(all) {
			m, same := mult[0], true
			for _, x := range mult {
				same = same && x == m
			}
			if same && m > 1 {
				notes = append(notes, fmt.Sprintf("%d frames at each of %d positions (several volumes: time points, echoes or repeats); showing the first", m, len(uniq)))
			} else {
				notes = append(notes, fmt.Sprintf("duplicate slice positions: dropped %d frame(s) at the same position as another", len(all)-len(uniq)))
			}
		}
		sel = uniq
		n := len(sel)
		if n == 1 {
			t := first.h.ds.float(tSliceThickness, 0)
			if t <= 0 {
				t = first.h.ds.float(tSpacingBetween, 1)
			}
			kvec = [3]float64{normal[0] * t, normal[1] * t, normal[2] * t}
		} else {
			last := sel[n-1].pos
			origin = sel[0].pos
			for c := 0; c < 3; c++ {
				kvec[c] = (last[c] - origin[c]) / float64(n-1)
			}
			diffs := make([]float64, n-1)
			for i := 1; i < n; i++ {
				diffs[i-1] = dot(normal, sel[i].pos) - dot(normal, sel[i-1].pos)
			}
			sorted := append([]float64(nil), diffs...)
			sort.Float64s(sorted)
			med := sorted[len(sorted)/2]
			lo, hi := sorted[0], sorted[len(sorted)-1]
			gaps := 0
			for _, d := range diffs {
				if d > 1.5*med {
					gaps++
				}
			}
			if gaps > 0 {
				notes = append(notes, fmt.Sprintf("gap in the series: %d step(s) larger than 1.5x the usual %.4g mm spacing (missing slices?); the affine uses the mean spacing %.4g mm", gaps, med, dot(normal, kvec)))
			} else if hi-lo > math.Max(0.01, 1e-3*med) {
				notes = append(notes, fmt.Sprintf("non-uniform slice spacing: %.4g to %.4g mm; the affine uses the mean %.4g mm", lo, hi, dot(normal, kvec)))
			}
			// Positions that do not follow the normal (gantry tilt) shear the grid.
			along := dot(normal, kvec)
			off := [3]float64{kvec[0] - along*normal[0], kvec[1] - along*normal[1], kvec[2] - along*normal[2]}
			if math.Sqrt(dot(off, off)) > 1e-3*math.Abs(along)+1e-4 {
				notes = append(notes, "slice positions do not follow the slice normal (gantry tilt): the affine is sheared, not resampled")
			}
			if along == 0 {
				return nil, volume.Affine{}, nil, errors.New("all slices at the same position")
			}
		}
	} else {
		// No usable geometry: stack frames in file order, 1 mm apart unless a spacing is given.
		t := first.h.ds.float(tSpacingBetween, 0)
		if t <= 0 {
			t = first.h.ds.float(tSliceThickness, 1)
		}
		if t <= 0 {
			t = 1
		}
		kvec = [3]float64{normal[0] * t, normal[1] * t, normal[2] * t}
		if !first.hasPos {
			// No position: centre the image on the origin, as dcm2niix does.
			for r := 0; r < 3; r++ {
				origin[r] = -(row[r]*first.ps[1]*float64(first.h.ds.uint(tColumns, 1)-1) +
					col[r]*first.ps[0]*float64(first.h.ds.uint(tRows, 1)-1)) / 2
			}
		}
		switch {
		case len(all) > 1:
			notes = append(notes, fmt.Sprintf("no per-frame positions: %d frames stacked in %s (k is the frame number, %.3g mm apart)", len(all), stackOrder, t))
		case first.badIOP:
			notes = append(notes, fmt.Sprintf("ImageOrientationPatient %v is not two orthogonal unit vectors (collinear or zero): identity orientation assumed", first.h.ds.floats(tIOP)))
		case !first.hasPos || !first.hasIOP:
			notes = append(notes, "no image position/orientation: identity orientation assumed")
		}
	}
	// LPS affine, then to RAS by negating x and y. DICOM columns run along i
	// (direction = the row cosine, step = column spacing), rows along j.
	var a volume.Affine
	for r := 0; r < 3; r++ {
		a[r][0] = row[r] * first.ps[1]
		a[r][1] = col[r] * first.ps[0]
		a[r][2] = kvec[r]
		a[r][3] = origin[r]
	}
	a[3] = [4]float64{0, 0, 0, 1}
	for c := 0; c < 4; c++ {
		a[0][c], a[1][c] = -a[0][c], -a[1][c]
	}
	if err := a.Validate(); err != nil {
		return nil, a, nil, fmt.Errorf("geometry: %w", err)
	}
	return sel, a, notes, nil
}

// frameNotes reports header values the reader had to replace, once per kind.
// It also returns the PixelSpacing most frames share.
func frameNotes(all []frameRef) ([]string, [2]float64) {
	var notes []string
	var badPS, badSlope, badIOP, otherPS []frameRef
	counts := map[[2]float64]int{}
	for _, f := range all {
		if f.badPS {
			badPS = append(badPS, f)
		} else {
			counts[f.ps]++
		}
		if f.badSlope {
			badSlope = append(badSlope, f)
		}
		if f.badIOP && len(all) > 1 {
			badIOP = append(badIOP, f)
		}
	}
	var common [2]float64
	for ps, n := range counts {
		if n > counts[common] || (n == counts[common] && (ps[0] < common[0] || ps[0] == common[0] && ps[1] < common[1])) {
			common = ps
		}
	}
	for _, f := range all {
		if !f.badPS && (math.Abs(f.ps[0]-common[0]) > 1e-4*common[0] || math.Abs(f.ps[1]-common[1]) > 1e-4*common[1]) {
			otherPS = append(otherPS, f)
		}
	}
	if len(badPS) > 0 {
		notes = append(notes, fmt.Sprintf("PixelSpacing %q is missing, zero or not a number in %d frame(s) (%s): 1 mm assumed there",
			badPS[0].h.ds.str(tPixelSpacing), len(badPS), frameNames(badPS, 3)))
	}
	if len(otherPS) > 0 {
		notes = append(notes, fmt.Sprintf("PixelSpacing differs in %d frame(s) (%s has %.4g\\%.4g; most have %.4g\\%.4g): the volume uses the common spacing, so those slices are drawn at the wrong scale",
			len(otherPS), frameNames(otherPS, 3), otherPS[0].ps[0], otherPS[0].ps[1], common[0], common[1]))
	}
	if len(badSlope) > 0 {
		notes = append(notes, fmt.Sprintf("RescaleSlope %q is zero or not finite in %d frame(s) (%s): 1 used, so those values are raw stored values",
			badSlope[0].h.ds.str(tRescaleSlope), len(badSlope), frameNames(badSlope, 3)))
	}
	if len(badIOP) > 0 {
		notes = append(notes, fmt.Sprintf("ImageOrientationPatient is not two orthogonal unit vectors in %d frame(s) (%s)", len(badIOP), frameNames(badIOP, 3)))
	}
	if len(counts) == 0 {
		common = [2]float64{1, 1}
	}
	return notes, common
}

// frameNames names up to k frames by file (and frame number in multi-frame files).
func frameNames(fs []frameRef, k int) string {
	var parts []string
	for i, f := range fs {
		if i == k {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-k))
			break
		}
		n := filepath0(f.h.path)
		if f.h.nframes > 1 {
			n += fmt.Sprintf(" frame %d", f.idx+1)
		}
		parts = append(parts, n)
	}
	return strings.Join(parts, ", ")
}

// readPayload returns the PixelData value bytes of h (native: the declared
// length; encapsulated: to the end of the file).
func readPayload(h *header, buf []byte) ([]byte, error) {
	if h.data != nil {
		if h.pixOff > int64(len(h.data)) {
			return nil, errors.New("pixel data offset past the end")
		}
		end := int64(len(h.data))
		if h.pixLen >= 0 {
			if h.pixOff+h.pixLen > end {
				return nil, fmt.Errorf("PixelData claims %d bytes, only %d present", h.pixLen, end-h.pixOff)
			}
			end = h.pixOff + h.pixLen
		}
		return h.data[h.pixOff:end], nil
	}
	f, err := os.Open(h.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := st.Size() - h.pixOff
	if h.pixLen >= 0 {
		if h.pixLen > n {
			return nil, fmt.Errorf("PixelData claims %d bytes, only %d present (truncated file?)", h.pixLen, max(n, 0))
		}
		n = h.pixLen
	}
	if n < 0 {
		return nil, errors.New("pixel data offset past the end of the file")
	}
	if int64(cap(buf)) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := f.ReadAt(buf, h.pixOff); err != nil {
		return nil, fmt.Errorf("read pixel data: %w", err)
	}
	return buf, nil
}

// fragments splits encapsulated pixel data into items: the basic offset table and the fragments.
func fragments(b []byte, bo binary.ByteOrder) (bot []byte, frags [][]byte, err error) {
	pos := 0
	for n := 0; ; n++ {
		if pos+8 > len(b) {
			if n == 0 {
				return nil, nil, errors.New("encapsulated pixel data: no items")
			}
			return bot, frags, nil // missing delimiter: accept what is there
		}
		t := mk(bo.Uint16(b[pos:]), bo.Uint16(b[pos+2:]))
		l := int64(bo.Uint32(b[pos+4:]))
		pos += 8
		if t == tSeqDelim {
			return bot, frags, nil
		}
		if t != tItem || l == undefined {
			return nil, nil, fmt.Errorf("encapsulated pixel data: unexpected %v", t)
		}
		if int64(pos)+l > int64(len(b)) {
			return nil, nil, fmt.Errorf("encapsulated pixel data: item %d claims %d bytes, %d present", n, l, len(b)-pos)
		}
		if n == 0 {
			bot = b[pos : pos+int(l)]
		} else {
			frags = append(frags, b[pos:pos+int(l)])
		}
		pos += int(l)
	}
}

// frameStart returns a test for the fragment that starts a frame of syntax ts
// (nil where fragments carry no marker: RLE).
func frameStart(ts string) func([]byte) bool {
	switch {
	case ts == tsRLE:
		return nil
	case isJ2K(ts):
		return func(f []byte) bool {
			return len(f) >= 4 && f[0] == 0xFF && f[1] == 0x4F && f[2] == 0xFF && f[3] == 0x51 || // SOC SIZ
				len(f) >= 12 && string(f[4:8]) == "jP  " // a JP2 wrapper
		}
	}
	return func(f []byte) bool { return len(f) >= 2 && f[0] == 0xFF && f[1] == 0xD8 } // SOI
}

// frameData groups fragments into nFrames frames: by the basic offset table when
// present, else by the fragments that open a frame (start, when not nil).
func frameData(bot []byte, frags [][]byte, nFrames int, bo binary.ByteOrder, start func([]byte) bool) ([][]byte, error) {
	if nFrames == 1 {
		if len(frags) == 1 {
			return frags, nil
		}
		return [][]byte{bytes.Join(frags, nil)}, nil
	}
	if len(frags) == nFrames {
		return frags, nil
	}
	// Basic offset table: byte offsets of each frame's first fragment (from the first fragment's item tag).
	if len(bot) >= 4*nFrames {
		starts := map[int]int{}
		off := 0
		for i, f := range frags {
			starts[off] = i
			off += len(f) + 8
		}
		out := make([][]byte, 0, nFrames)
		for k := 0; k < nFrames; k++ {
			o := int(bo.Uint32(bot[4*k:]))
			i, ok := starts[o]
			if !ok {
				return nil, fmt.Errorf("offset table entry %d (%d) matches no fragment", k, o)
			}
			end := len(frags)
			if k+1 < nFrames {
				e, ok := starts[int(bo.Uint32(bot[4*(k+1):]))]
				if !ok {
					return nil, fmt.Errorf("offset table entry %d matches no fragment", k+1)
				}
				end = e
			}
			if end < i {
				return nil, errors.New("offset table not increasing")
			}
			out = append(out, bytes.Join(frags[i:end], nil))
		}
		return out, nil
	}
	if start != nil {
		var out [][]byte
		for _, f := range frags {
			if start(f) || len(out) == 0 {
				out = append(out, append([]byte(nil), f...))
			} else {
				out[len(out)-1] = append(out[len(out)-1], f...)
			}
		}
		if len(out) == nFrames {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%d fragments for %d frames and no usable offset table", len(frags), nFrames)
}

// nativeBytes is the PixelData length nf native frames need.
func nativeBytes(pf pixelFormat, nf int) int64 {
	px := int64(pf.rows) * int64(pf.cols) * int64(nf)
	switch {
	case pf.alloc == 1:
		return (px + 7) / 8
	case pf.photo == "YBR_FULL_422" && pf.spp == 3:
		return px * 2 * int64(pf.alloc/8)
	}
	return px * int64(pf.spp) * int64(pf.alloc/8)
}

// payloadPool recycles pixel-data read buffers across files (a series repeats one size).
var payloadPool = sync.Pool{New: func() any { b := []byte(nil); return &b }}

// decodeFile decodes the needed frames of one file into dst.
func decodeFile(h *header, pf pixelFormat, slots []int, sel []frameRef, dst []float32, plane int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: malformed pixel data (panic: %v)", h.path, r)
		}
	}()
	bp := payloadPool.Get().(*[]byte)
	defer payloadPool.Put(bp)
	payload, err := readPayload(h, *bp)
	if err == nil && h.data == nil && cap(payload) > cap(*bp) && cap(payload) <= 64<<20 {
		*bp = payload[:0] // keep the larger buffer for the next file
	}
	if err != nil {
		return fmt.Errorf("%s: %w", h.path, err)
	}
	nFrames := h.nframes
	bo := binary.ByteOrder(binary.LittleEndian)
	if h.bigEnd {
		bo = binary.BigEndian
	}
	var frameBytes [][]byte
	native := h.pixLen >= 0
	if native && pf.alloc == 1 {
		// Bit-packed, least significant bit first; frames follow without byte padding.
		if need := nativeBytes(pf, nFrames); int64(len(payload)) < need {
			return fmt.Errorf("%s: PixelData holds %d bytes; %d 1-bit frame(s) need %d", h.path, len(payload), nFrames, need)
		}
		npx := pf.rows * pf.cols
		for i, k := range slots {
			if k < 0 || i >= nFrames {
				continue
			}
			out := dst[k*plane : (k+1)*plane]
			slope, inter := float32(sel[k].slope), float32(sel[k].inter)
			for p := range out {
				bit := i*npx + p
				out[p] = float32(payload[bit>>3]>>(bit&7)&1)*slope + inter
			}
		}
		return nil
	}
	if native {
		fb := pf.rows * pf.cols * pf.spp * pf.alloc / 8
		if pf.photo == "YBR_FULL_422" && pf.spp == 3 {
			fb = pf.rows * pf.cols * 2 * pf.alloc / 8
		}
		need := int64(fb) * int64(nFrames)
		if int64(len(payload)) < need {
			return fmt.Errorf("%s: PixelData holds %d bytes; %d frame(s) of %dx%dx%d at %d bits need %d",
				h.path, len(payload), nFrames, pf.cols, pf.rows, pf.spp, pf.alloc, need)
		}
		if h.bigEnd && pf.alloc == 8 && h.pixVR == "OW" {
			// 8-bit samples in an OW value are 16-bit words: big endian swaps each pair
			// (PS3.5 8.1.1; dcmtk writes this, some readers forget it).
			sw := make([]byte, len(payload)&^1)
			for i := 0; i+1 < len(sw); i += 2 {
				sw[i], sw[i+1] = payload[i+1], payload[i]
			}
			payload = sw
		}
		for i := 0; i < nFrames; i++ {
			frameBytes = append(frameBytes, payload[i*fb:(i+1)*fb])
		}
	} else {
		bot, frags, err := fragments(payload, binary.LittleEndian)
		if err != nil {
			return fmt.Errorf("%s: %w", h.path, err)
		}
		frameBytes, err = frameData(bot, frags, nFrames, binary.LittleEndian, frameStart(h.ts))
		if err != nil {
			return fmt.Errorf("%s: %w", h.path, err)
		}
	}
	var scratch []int64 // allocated by the first frame off the fast path
	if m := h.mos; m.n > 0 {
		// One stored frame holds every slice: decode it whole, then cut out the tiles.
		first := -1
		for _, k := range slots {
			if k >= 0 {
				first = k
				break
			}
		}
		if first < 0 || len(frameBytes) == 0 {
			return nil
		}
		channels := plane / (m.tileRows * m.tileCols)
		whole := make([]float32, pf.rows*pf.cols*channels)
		if err := decodeFrame(h, pf, frameBytes[0], bo, native, sel[first], whole, &scratch); err != nil {
			return fmt.Errorf("%s: mosaic: %w", h.path, err)
		}
		for t, k := range slots {
			if k >= 0 {
				copyTile(m, whole, t, channels, dst[k*plane:(k+1)*plane])
			}
		}
		return nil
	}
	for i, k := range slots {
		if k < 0 || i >= len(frameBytes) {
			continue
		}
		f := sel[k]
		out := dst[k*plane : (k+1)*plane]
		if err := decodeFrame(h, pf, frameBytes[i], bo, native, f, out, &scratch); err != nil {
			return fmt.Errorf("%s: frame %d: %w", h.path, i+1, err)
		}
	}
	return nil
}

// decodeFrame turns one frame's bytes into physical values (grey) or RGB.
func decodeFrame(h *header, pf pixelFormat, b []byte, bo binary.ByteOrder, native bool, f frameRef, out []float32, sp *[]int64) error {
	npx := pf.rows * pf.cols
	photo := pf.photo
	planar := pf.planar
	if native && fastPath(pf, b, bo, f, out) {
		return nil
	}
	if *sp == nil {
		*sp = make([]int64, npx*pf.spp)
	}
	s := *sp
	switch {
	case native:
		if photo == "YBR_FULL_422" && pf.spp == 3 {
			ybr422(b, s, pf)
			photo = "YBR_FULL"
			planar = 0
		} else {
			unpack(b, s, pf, bo, planar)
		}
	case h.ts == tsRLE:
		raw, err := decodeRLE(b, pf.rows, pf.cols, pf.spp, pf.alloc/8)
		if err != nil {
			return err
		}
		unpack(raw, s, pf, binary.LittleEndian, 0)
		planar = 0
	case h.ts == tsJPEGLossless || h.ts == tsJPEGLossSV1:
		img, err := decodeJPEGLossless(b, npx*pf.spp)
		if err != nil {
			return err
		}
		if img.w != pf.cols || img.h != pf.rows || img.comps != pf.spp {
			return fmt.Errorf("JPEG is %dx%dx%d, header says %dx%dx%d", img.w, img.h, img.comps, pf.cols, pf.rows, pf.spp)
		}
		for i, v := range img.pix {
			s[i] = signExtend(int64(v), pf)
		}
	case isJ2K(h.ts):
		pix, _, err := decodeJ2K(b, pf)
		if err != nil {
			return err
		}
		// The codec's values, as the stored bit patterns a native copy would hold.
		for i, v := range pix {
			s[i] = signExtend(int64(v), pf)
		}
		if pf.spp == 3 && (photo == "YBR_RCT" || photo == "YBR_ICT") {
			photo = "RGB" // OpenJPEG undid the component transform
		}
	case isJPEGLS(h.ts):
		raw, err := decodeJPEGLS(b, pf)
		if err != nil {
			return err
		}
		for i, v := range raw {
			s[i] = signExtend(v, pf)
		}
	case h.ts == tsJPEGBaseline || h.ts == tsJPEGExtended:
		// Check the JPEG's own size before the decoder allocates for it.
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(b)); err == nil && (cfg.Width != pf.cols || cfg.Height != pf.rows) {
			return fmt.Errorf("JPEG is %dx%d, header says %dx%d", cfg.Width, cfg.Height, pf.cols, pf.rows)
		}
		im, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			if h.ts == tsJPEGExtended {
				return fmt.Errorf("%s: %v (12-bit JPEG extended is not supported; decompress with dcmdjpeg)", tsName(h.ts), err)
			}
			return fmt.Errorf("%s: %w", tsName(h.ts), err)
		}
		r := im.Bounds()
		if r.Dx() != pf.cols || r.Dy() != pf.rows {
			return fmt.Errorf("JPEG is %dx%d, header says %dx%d", r.Dx(), r.Dy(), pf.cols, pf.rows)
		}
		switch m := im.(type) {
		case *image.Gray:
			if pf.spp != 1 {
				return errors.New("grey JPEG in a colour image")
			}
			for y := 0; y < pf.rows; y++ {
				for x := 0; x < pf.cols; x++ {
					s[y*pf.cols+x] = int64(m.Pix[y*m.Stride+x])
				}
			}
		default:
			if pf.spp != 3 {
				return errors.New("colour JPEG in a grey image")
			}
			for y := 0; y < pf.rows; y++ {
				for x := 0; x < pf.cols; x++ {
					cr, cg, cb, _ := im.At(r.Min.X+x, r.Min.Y+y).RGBA()
					i := 3 * (y*pf.cols + x)
					s[i], s[i+1], s[i+2] = int64(cr>>8), int64(cg>>8), int64(cb>>8)
				}
			}
			photo = "RGB" // the JPEG decoder already converted YCbCr
		}
	default:
		return fmt.Errorf("transfer syntax %s is not supported", tsName(h.ts))
	}
	_ = planar
	return finish(s, out, pf, photo, f, h)
}

// fastPath handles the common native 16-bit greyscale case without the scratch buffer.
func fastPath(pf pixelFormat, b []byte, bo binary.ByteOrder, f frameRef, out []float32) bool {
	if pf.spp != 1 || pf.alloc != 16 || pf.photo != "MONOCHROME2" || bo != binary.LittleEndian || pf.high != pf.stored-1 {
		return false
	}
	n := len(out)
	slope, inter := float32(f.slope), float32(f.inter)
	b = b[:2*n]
	o := out[:n]
	// Four samples per step from one 64-bit load; bits above BitsStored are masked
	// (unsigned) or sign-extended from the high bit (signed).
	if pf.rep == 1 {
		sh := uint(16 - pf.stored)
		cv := func(u uint64) float32 { return float32(int16(uint16(u)<<sh)>>sh)*slope + inter }
		i := 0
		for ; len(b) >= 8 && i+4 <= len(o); i += 4 {
			w := binary.LittleEndian.Uint64(b)
			o[i], o[i+1], o[i+2], o[i+3] = cv(w), cv(w>>16), cv(w>>32), cv(w>>48)
			b = b[8:]
		}
		for ; i < n && len(b) >= 2; i++ {
			o[i] = cv(uint64(binary.LittleEndian.Uint16(b)))
			b = b[2:]
		}
	} else {
		mask := uint64(1)<<uint(pf.stored) - 1
		cv := func(u uint64) float32 { return float32(u&mask)*slope + inter }
		i := 0
		for ; len(b) >= 8 && i+4 <= len(o); i += 4 {
			w := binary.LittleEndian.Uint64(b)
			o[i], o[i+1], o[i+2], o[i+3] = cv(w), cv(w>>16), cv(w>>32), cv(w>>48)
			b = b[8:]
		}
		for ; i < n && len(b) >= 2; i++ {
			o[i] = cv(uint64(binary.LittleEndian.Uint16(b)))
			b = b[2:]
		}
	}
	return true
}

// signExtend applies bits stored / high bit and the pixel representation to a raw value.
func signExtend(v int64, pf pixelFormat) int64 {
	lowBit := pf.high + 1 - pf.stored
	u := uint64(v) >> uint(lowBit)
	u &= 1<<uint(pf.stored) - 1
	if pf.rep == 1 {
		sh := uint(64 - pf.stored)
		return int64(u<<sh) >> sh
	}
	return int64(u)
}

// unpack reads native samples (interleaved output) from bytes.
func unpack(b []byte, s []int64, pf pixelFormat, bo binary.ByteOrder, planar int) {
	npx := pf.rows * pf.cols
	bps := pf.alloc / 8
	for p := 0; p < npx; p++ {
		for c := 0; c < pf.spp; c++ {
			var o int
			if planar == 1 && pf.spp > 1 {
				o = (c*npx + p) * bps
			} else {
				o = (p*pf.spp + c) * bps
			}
			var v int64
			switch bps {
			case 1:
				v = int64(b[o])
			case 2:
				v = int64(bo.Uint16(b[o:]))
			default:
				v = int64(bo.Uint32(b[o:]))
			}
			s[p*pf.spp+c] = signExtend(v, pf)
		}
	}
}

// ybr422 expands native YBR_FULL_422 (Y0 Y1 Cb Cr per pixel pair) to interleaved YCbCr.
func ybr422(b []byte, s []int64, pf pixelFormat) {
	npx := pf.rows * pf.cols
	for p := 0; p+1 < npx+1 && 2*p+3 < len(b)+1; p += 2 {
		o := 2 * p
		if o+3 >= len(b) {
			break
		}
		y0, y1, cb, cr := int64(b[o]), int64(b[o+1]), int64(b[o+2]), int64(b[o+3])
		s[3*p], s[3*p+1], s[3*p+2] = y0, cb, cr
		if p+1 < npx {
			s[3*p+3], s[3*p+4], s[3*p+5] = y1, cb, cr
		}
	}
}

func clamp255(x float64) float32 {
	if x < 0 {
		return 0
	}
	if x > 255 {
		return 255
	}
	return float32(math.Round(x))
}

// finish applies the photometric interpretation and rescale.
func finish(s []int64, out []float32, pf pixelFormat, photo string, f frameRef, h *header) error {
	npx := pf.rows * pf.cols
	switch photo {
	case "MONOCHROME1", "MONOCHROME2":
		if pf.spp != 1 {
			return fmt.Errorf("%s with %d samples per pixel", photo, pf.spp)
		}
		var flip int64
		inv := photo == "MONOCHROME1"
		if inv {
			// Invert within the stored range so bright means dense, as for MONOCHROME2.
			if pf.rep == 1 {
				flip = -1
			} else {
				flip = int64(uint64(1)<<uint(pf.stored) - 1)
			}
		}
		for i := 0; i < npx; i++ {
			v := s[i]
			if inv {
				v = flip - v
			}
			out[i] = float32(float64(v)*f.slope + f.inter)
		}
	case "RGB", "YBR_RCT", "YBR_ICT":
		for i := 0; i < 3*npx; i++ {
			out[i] = float32(s[i])
		}
	case "YBR_FULL", "YBR_FULL_422":
		for p := 0; p < npx; p++ {
			y, cb, cr := float64(s[3*p]), float64(s[3*p+1])-128, float64(s[3*p+2])-128
			out[3*p] = clamp255(y + 1.402*cr)
			out[3*p+1] = clamp255(y - 0.344136*cb - 0.714136*cr)
			out[3*p+2] = clamp255(y + 1.772*cb)
		}
	case "PALETTE COLOR":
		luts, err := palette(h.ds)
		if err != nil {
			return err
		}
		for p := 0; p < npx; p++ {
			for c := 0; c < 3; c++ {
				out[3*p+c] = luts[c].at(int(s[p]))
			}
		}
	default:
		return fmt.Errorf("photometric interpretation %q is not supported", photo)
	}
	return nil
}

type lut struct {
	first int
	vals  []float32
}

func (l lut) at(i int) float32 {
	i -= l.first
	if i < 0 {
		i = 0
	}
	if i >= len(l.vals) {
		i = len(l.vals) - 1
	}
	return l.vals[i]
}

// palette reads the red, green and blue lookup tables, scaled to 0..255.
func palette(d *dataset) ([3]lut, error) {
	var out [3]lut
	if d.get(tSegRedLUT) != nil && d.get(tRedLUT) == nil {
		return out, errors.New("segmented palette colour lookup tables are not supported")
	}
	descs := []tag{tRedDesc, tGreenDesc, tBlueDesc}
	datas := []tag{tRedLUT, tGreenLUT, tBlueLUT}
	for c := 0; c < 3; c++ {
		desc := d.u16s(descs[c])
		if len(desc) < 3 {
			return out, fmt.Errorf("palette descriptor %v missing", descs[c])
		}
		n := desc[0]
		if n == 0 {
			n = 65536
		}
		bits := desc[2]
		e := d.get(datas[c])
		if e == nil {
			return out, fmt.Errorf("palette data %v missing", datas[c])
		}
		vals := make([]float32, 0, n)
		if bits == 8 && len(e.val) >= n && len(e.val) < 2*n {
			for i := 0; i < n; i++ {
				vals = append(vals, float32(e.val[i]))
			}
		} else {
			if len(e.val) < 2*n {
				return out, fmt.Errorf("palette %v holds %d bytes for %d entries", datas[c], len(e.val), n)
			}
			scale := float32(1)
			if bits == 16 {
				scale = 1.0 / 257
			}
			for i := 0; i < n; i++ {
				vals = append(vals, float32(d.bo.Uint16(e.val[2*i:]))*scale)
			}
		}
		out[c] = lut{first: int(int16(desc[1])), vals: vals}
		if desc[1] >= 0 && d.get(descs[c]).vr != "SS" {
			out[c].first = desc[1]
		}
	}
	return out, nil
}

// dataType names the source datatype of the physical values.
func dataType(pf pixelFormat, channels int, sel []frameRef) string {
	if channels == 3 {
		return "rgb24"
	}
	integral := true
	for _, f := range sel {
		if f.slope != math.Trunc(f.slope) || f.inter != math.Trunc(f.inter) {
			integral = false
		}
	}
	if !integral {
		return "float32"
	}
	f := sel[0]
	lo, hi := 0.0, math.Exp2(float64(pf.stored))-1
	if pf.rep == 1 {
		lo, hi = -math.Exp2(float64(pf.stored-1)), math.Exp2(float64(pf.stored-1))-1
	}
	a, b := lo*f.slope+f.inter, hi*f.slope+f.inter
	lo, hi = math.Min(a, b), math.Max(a, b)
	switch {
	case lo >= 0 && hi <= 255:
		return "uint8"
	case lo >= -32768 && hi <= 32767:
		return "int16"
	case lo >= 0 && hi <= 65535:
		return "uint16"
	case lo >= -(1<<31) && hi < 1<<31:
		return "int32"
	}
	return "float32"
}

// window: the file's WindowCenter/Width, else CT 40/400, else the 1st..99th percentiles.
func window(v *volumeT, sel []frameRef, pf pixelFormat) [2]float64 {
	f := sel[len(sel)/2]
	if f.hasWin && v.Channels == 1 {
		if pf.photo == "MONOCHROME1" {
			// The pixels were inverted: out' = slope*flip + 2*intercept - out.
			flip := -1.0
			if pf.rep == 0 {
				flip = math.Exp2(float64(pf.stored)) - 1
			}
			return [2]float64{f.slope*flip + 2*f.inter - f.wc, f.ww}
		}
		return [2]float64{f.wc, f.ww}
	}
	if v.Channels == 3 {
		return [2]float64{127.5, 255}
	}
	if v.Modality == "CT" {
		return [2]float64{40, 400}
	}
	return volume.PercentileWindow(v.Data, 1, 0.5, 99.5)
}
