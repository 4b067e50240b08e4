package dicom

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Siemens mosaic: an EPI/DWI/ASL volume stored as one 2D image of tiles (ImageType
// MOSAIC). The number of slices comes from the CSA image header (0029,xx10,
// NumberOfImagesInMosaic) or from (0019,100A); the tiles fill a square grid of
// ceil(sqrt(n)) per side, row by row. The file's ImagePositionPatient is that of the
// whole grid's first pixel, so the first slice sits half the grid's excess further in,
// along the row and column directions (as dcm2niix and nibabel place it). Slices follow
// each other along the plane normal, signed as the CSA SliceNormalVector says.

// mosaicInfo describes one mosaic file's tiling (n == 0: not a mosaic).
type mosaicInfo struct {
	n, grid            int // slices, tiles per side
	tileRows, tileCols int
	csaNormal          [3]float64 // the CSA SliceNormalVector (LPS), when given
	hasNormal          bool
}

var (
	tSiemensMRCreator  = mk(0x0019, 0x0010)
	tSiemensNumMosaic  = mk(0x0019, 0x100A)
	tSiemensCSACreator = [3]tag{mk(0x0029, 0x0010), mk(0x0029, 0x0011), mk(0x0029, 0x0012)}
	tSiemensCSAImage   = [3]tag{mk(0x0029, 0x1010), mk(0x0029, 0x1110), mk(0x0029, 0x1210)}
)

func init() {
	// The walker keeps these private elements (creators LO, CSA header OB, count US).
	for _, t := range []tag{tSiemensMRCreator, tSiemensNumMosaic} {
		keep[t] = true
	}
	implicitVR[tSiemensMRCreator], implicitVR[tSiemensNumMosaic] = "LO", "US"
	for i := range tSiemensCSACreator {
		keep[tSiemensCSACreator[i]], keep[tSiemensCSAImage[i]] = true, true
		implicitVR[tSiemensCSACreator[i]], implicitVR[tSiemensCSAImage[i]] = "LO", "OB"
	}
}

// csaImageHeader returns the Siemens CSA image header of d, found through its private
// creator (nil when absent).
func csaImageHeader(d *dataset) []byte {
	for i, c := range tSiemensCSACreator {
		if strings.EqualFold(d.str(c), "SIEMENS CSA HEADER") {
			if e := d.get(tSiemensCSAImage[i]); e != nil {
				return e.val
			}
		}
	}
	return nil
}

// csaValues reads the named tags' items from a CSA2 ("SV10") header. Malformed headers
// give what was read before the problem: the caller falls back to the public fields.
func csaValues(b []byte, names ...string) map[string][]string {
	out := map[string][]string{}
	if len(b) < 16 || string(b[:4]) != "SV10" {
		return out
	}
	le := binary.LittleEndian
	ntags := le.Uint32(b[8:])
	if ntags == 0 || ntags > 1000 {
		return out
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	pos := 16
	for t := uint32(0); t < ntags; t++ {
		if pos+84 > len(b) {
			return out
		}
		name := string(b[pos : pos+64])
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		nitems := le.Uint32(b[pos+76:])
		pos += 84
		if nitems > 1000 {
			return out
		}
		var items []string
		for k := uint32(0); k < nitems; k++ {
			if pos+16 > len(b) {
				return out
			}
			l := int64(le.Uint32(b[pos+4:]))
			pos += 16
			if l > int64(len(b)-pos) {
				return out
			}
			if want[name] && l > 0 {
				v := b[pos : pos+int(l)]
				if i := bytes.IndexByte(v, 0); i >= 0 {
					v = v[:i]
				}
				items = append(items, strings.TrimSpace(string(v)))
			}
			pos += int((l + 3) &^ 3)
		}
		if want[name] {
			out[name] = items
		}
	}
	return out
}

// detectMosaic reads the mosaic layout of a header; note explains a file that says
// MOSAIC but cannot be unpacked (it is then read as one image).
func detectMosaic(d *dataset, nframes int) (m mosaicInfo, note string) {
	isMosaic := false
	for _, s := range d.strs(tImageType) {
		if strings.EqualFold(s, "MOSAIC") {
			isMosaic = true
		}
	}
	if !isMosaic {
		return m, ""
	}
	csa := csaValues(csaImageHeader(d), "NumberOfImagesInMosaic", "SliceNormalVector")
	n := 0
	if v := csa["NumberOfImagesInMosaic"]; len(v) > 0 {
		if f, err := strconv.ParseFloat(v[0], 64); err == nil && f >= 1 && f <= 4096 {
			n = int(f)
		}
	}
	if n == 0 && strings.Contains(strings.ToUpper(d.str(tSiemensMRCreator)), "SIEMENS") {
		n = d.uint(tSiemensNumMosaic, 0)
	}
	rows, cols := d.uint(tRows, 0), d.uint(tColumns, 0)
	switch {
	case n < 1 || n > 4096:
		return m, "ImageType says MOSAIC but no NumberOfImagesInMosaic (Siemens CSA header or (0019,100A)) was found: read as one image"
	case d.uint(tBitsAllocated, 0) == 1:
		return m, "ImageType says MOSAIC but the pixels are 1-bit: read as one image"
	case nframes != 1:
		return m, fmt.Sprintf("ImageType says MOSAIC but the file has %d frames: read as stored", nframes)
	}
	grid := int(math.Ceil(math.Sqrt(float64(n))))
	if rows < grid || cols < grid || rows%grid != 0 || cols%grid != 0 || n > grid*grid {
		return m, fmt.Sprintf("mosaic of %d images: %dx%d pixels do not divide into a %dx%d grid: read as one image", n, cols, rows, grid, grid)
	}
	m = mosaicInfo{n: n, grid: grid, tileRows: rows / grid, tileCols: cols / grid}
	if v := csa["SliceNormalVector"]; len(v) == 3 {
		ok := true
		for i := range 3 {
			f, err := strconv.ParseFloat(v[i], 64)
			ok = ok && err == nil && finite(f)
			m.csaNormal[i] = f
		}
		m.hasNormal = ok && dot(m.csaNormal, m.csaNormal) > 0.25
	}
	return m, ""
}

// mosaicFrames expands the one frame of a mosaic file into its slices. f carries the
// file's own geometry: the first tile is moved in from the grid's corner, and each
// next one a slice spacing further along the normal.
func mosaicFrames(f frameRef) []frameRef {
	m := f.h.mos
	d := f.h.ds
	row := [3]float64{f.iop[0], f.iop[1], f.iop[2]}
	col := [3]float64{f.iop[3], f.iop[4], f.iop[5]}
	normal := cross(row, col)
	if m.hasNormal && dot(normal, m.csaNormal) < 0 {
		// Siemens stores some (e.g. sagittal, descending) mosaics against the cross
		// product: the CSA normal gives the direction, the cross product the exact axis.
		normal = [3]float64{-normal[0], -normal[1], -normal[2]}
	}
	sp := d.float(tSpacingBetween, 0)
	if sp <= 0 {
		sp = d.float(tSliceThickness, 0)
	}
	if sp <= 0 {
		sp = 1
	}
	rows, cols := float64(m.tileRows*m.grid), float64(m.tileCols*m.grid)
	dc := (cols - float64(m.tileCols)) / 2 * f.ps[1] // along the row direction (columns)
	dr := (rows - float64(m.tileRows)) / 2 * f.ps[0] // along the column direction (rows)
	out := make([]frameRef, m.n)
	for k := range out {
		g := f
		g.idx = k
		g.hasPos = f.hasPos && f.hasIOP // without an orientation the tiles stack in order
		if g.hasPos {
			for c := 0; c < 3; c++ {
				g.pos[c] = f.pos[c] + row[c]*dc + col[c]*dr + float64(k)*sp*normal[c]
			}
		}
		out[k] = g
	}
	return out
}

// copyTile copies tile t of a decoded mosaic (mosaic-sized, channels interleaved) into out.
func copyTile(m mosaicInfo, mos []float32, t, channels int, out []float32) {
	r0, c0 := (t/m.grid)*m.tileRows, (t%m.grid)*m.tileCols
	w := m.tileCols * m.grid * channels
	n := m.tileCols * channels
	for y := 0; y < m.tileRows; y++ {
		src := (r0+y)*w + c0*channels
		copy(out[y*n:(y+1)*n], mos[src:src+n])
	}
}
