// Package mask saves and loads label maps: NIfTI, NRRD, Slicer's .seg.nrrd,
// MetaImage (any grid) or PNG (2D images, or one slice), each with a JSON sidecar naming the labels and carrying the caller's
// records (prompts, model, window); a colour preview PNG; and, when a mask is
// loaded for editing, a check that it lies on the image's grid.
package mask

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/medsa/medsa/io/atomicfile"
	"github.com/medsa/medsa/io/metaimage"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/nrrd"
	"github.com/medsa/medsa/io/raster"
	"github.com/medsa/medsa/io/volume"
)

// GridTolMM is how far (mm) a mask's affine entries may differ from the image's.
const GridTolMM = 0.01

// Sidecar is the JSON file written next to a mask (<name>.json).
type Sidecar struct {
	Format  string          `json:"format"` // "medsa-labels"
	Version int             `json:"version"`
	Labels  []volume.Label  `json:"labels"`
	Size    [3]int          `json:"size"`   // the image grid the mask belongs to
	Affine  volume.Affine   `json:"affine"` // index -> RAS+ mm
	Slice   *SliceRef       `json:"slice,omitempty"`
	Meta    json.RawMessage `json:"meta,omitempty"` // the caller's records, verbatim
}

// SliceRef says which slice of the grid a slice PNG holds (array axis and index;
// pixel (x, y) is (u, v) of volume.SliceAxes(Axis), not flipped for display).
type SliceRef struct {
	Axis  int `json:"axis"`
	Index int `json:"index"`
}

const sidecarFormat = "medsa-labels"

// SidecarPath is the JSON sidecar's path for a mask path: seg.nii.gz -> seg.json.
func SidecarPath(path string) string {
	l := strings.ToLower(path)
	for _, ext := range []string{".nii.gz", ".nii", ".png", ".seg.nrrd", ".nrrd", ".nhdr", ".mha", ".mhd"} {
		if strings.HasSuffix(l, ext) {
			return path[:len(path)-len(ext)] + ".json"
		}
	}
	return path + ".json"
}

// DefaultColor is the default colour of a label value (volume.DefaultLabelColor).
func DefaultColor(l uint16) [3]uint8 { return volume.DefaultLabelColor(l) }

// DefaultLabels names each label value present in m ("Label 1", ...), with default colours.
func DefaultLabels(m *volume.LabelMap) []volume.Label {
	present := map[uint16]bool{}
	for _, l := range m.Data {
		if l != 0 {
			present[l] = true
		}
	}
	var out []volume.Label
	for l := range present {
		out = append(out, volume.Label{Value: l, Name: volume.DefaultLabelName(l), Color: DefaultColor(l)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out
}

func checkLabelMap(m *volume.LabelMap) error {
	if m == nil {
		return errors.New("no label map")
	}
	if err := volume.CheckSize(m.Size, 1); err != nil {
		return err
	}
	if len(m.Data) != m.Size[0]*m.Size[1]*m.Size[2] {
		return fmt.Errorf("%d labels for size %v", len(m.Data), m.Size)
	}
	return m.Affine.Validate()
}

// Save writes m as a NIfTI label map (.nii, .nii.gz: the source grid and affine),
// NRRD (.nrrd, .nhdr), a Slicer segmentation (.seg.nrrd), MetaImage (.mha, .mhd)
// or a PNG of label indices (.png: 2D images only; 8-bit, or 16-bit past 255),
// plus the sidecar <name>.json with labels (defaults when nil) and meta. Both
// files are replaced atomically and together: both or neither (for NRRD and
// MetaImage, the sidecar is written first and renamed right after the mask).
func Save(path string, m *volume.LabelMap, labels []volume.Label, meta any) error {
	if err := checkLabelMap(m); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	l := strings.ToLower(path)
	var create func() (*atomicfile.Pending, error) // formats written in two phases
	var write func() error                         // formats that commit themselves
	switch {
	case strings.HasSuffix(l, ".nii") || strings.HasSuffix(l, ".nii.gz"):
		create = func() (*atomicfile.Pending, error) {
			return nifti.CreateLabelMap(path, m, nifti.Description("medsa label map"))
		}
	case strings.HasSuffix(l, ".png"):
		if m.Size[2] != 1 {
			return fmt.Errorf("save %s: a PNG holds one 2D image but this mask has %d slices: save as .nii.gz, or save one slice as PNG", path, m.Size[2])
		}
		create = func() (*atomicfile.Pending, error) { return createLabelPNG(path, m.Data, m.Size[0], m.Size[1]) }
	case strings.HasSuffix(l, ".seg.nrrd"):
		write = func() error { return nrrd.WriteSegmentation(path, m, labels) }
	case strings.HasSuffix(l, ".nrrd") || strings.HasSuffix(l, ".nhdr"):
		write = func() error { return nrrd.WriteLabelMap(path, m) }
	case strings.HasSuffix(l, ".mha") || strings.HasSuffix(l, ".mhd"):
		write = func() error { return metaimage.WriteLabelMap(path, m) }
	default:
		return fmt.Errorf("save %s: unknown mask format (use .nii.gz, .nii, .nrrd, .seg.nrrd, .mha, .mhd or .png)", path)
	}
	// The sidecar first: one that cannot be written stops the save before the
	// mask is touched.
	sp, err := createSidecar(path, m, labels, meta, nil)
	if err != nil {
		return err
	}
	if write != nil {
		if err := write(); err != nil {
			sp.Abort()
			return err
		}
		return atomicfile.Commit(sp)
	}
	mp, err := create()
	if err != nil {
		sp.Abort()
		return err
	}
	return atomicfile.Commit(mp, sp)
}

// SaveSlicePNG writes slice index along array axis (0, 1, 2) of m as a PNG of label
// indices, in the Slice frame of io/volume (no display flips), plus a sidecar
// recording the axis and index (both or neither).
func SaveSlicePNG(path string, m *volume.LabelMap, axis, index int, labels []volume.Label) error {
	if err := checkLabelMap(m); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if axis < 0 || axis > 2 || index < 0 || index >= m.Size[axis] {
		return fmt.Errorf("save %s: slice %d along axis %d is outside the mask (size %v)", path, index, axis, m.Size)
	}
	ua, va := volume.SliceAxes(axis)
	mp, err := createLabelPNG(path, m.SliceLabels(axis, index), m.Size[ua], m.Size[va])
	if err != nil {
		return err
	}
	return commitWithSidecar(mp, path, m, labels, nil, &SliceRef{Axis: axis, Index: index})
}

// commitWithSidecar writes the sidecar of a mask written to mp and renames both
// into place together.
func commitWithSidecar(mp *atomicfile.Pending, path string, m *volume.LabelMap, labels []volume.Label, meta any, slice *SliceRef) error {
	sp, err := createSidecar(path, m, labels, meta, slice)
	if err != nil {
		mp.Abort()
		return err
	}
	return atomicfile.Commit(mp, sp)
}

func createLabelPNG(path string, data []uint16, w, h int) (*atomicfile.Pending, error) {
	var mx uint16
	for _, l := range data {
		mx = max(mx, l)
	}
	var img image.Image
	if mx <= 255 {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i, l := range data {
			g.Pix[i] = uint8(l)
		}
		img = g
	} else {
		g := image.NewGray16(image.Rect(0, 0, w, h))
		for i, l := range data {
			g.Pix[2*i], g.Pix[2*i+1] = uint8(l>>8), uint8(l)
		}
		img = g
	}
	return atomicfile.Create(path, func(wr io.Writer) error {
		return (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(wr, img)
	})
}

func createSidecar(path string, m *volume.LabelMap, labels []volume.Label, meta any, slice *SliceRef) (*atomicfile.Pending, error) {
	if labels == nil {
		labels = DefaultLabels(m)
	}
	sc := Sidecar{Format: sidecarFormat, Version: 1, Labels: labels, Size: m.Size, Affine: m.Affine, Slice: slice}
	if meta != nil {
		b, err := json.Marshal(meta)
		if err != nil {
			return nil, fmt.Errorf("save %s: meta: %w", SidecarPath(path), err)
		}
		sc.Meta = b
	}
	b, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", SidecarPath(path), err)
	}
	return atomicfile.Create(SidecarPath(path), func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// ReadSidecar reads the sidecar of a mask path; (nil, nil) when there is none.
func ReadSidecar(maskPath string) (*Sidecar, error) {
	p := SidecarPath(maskPath)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var sc Sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("read %s: not a medsa label sidecar: %w", p, err)
	}
	if sc.Format != sidecarFormat {
		return nil, fmt.Errorf("read %s: format %q, want %q", p, sc.Format, sidecarFormat)
	}
	return &sc, nil
}

// GridDiff lists every way the grid (size2, a2) of a mask differs from the
// image's (size1, a1): the size, then each affine entry off by more than tolMM.
func GridDiff(size1 [3]int, a1 volume.Affine, size2 [3]int, a2 volume.Affine, tolMM float64) []string {
	var d []string
	if size1 != size2 {
		d = append(d, fmt.Sprintf("size %dx%dx%d, image %dx%dx%d", size2[0], size2[1], size2[2], size1[0], size1[1], size1[2]))
	}
	names := [3]string{"x", "y", "z"}
	for r := 0; r < 3; r++ {
		for c := 0; c < 4; c++ {
			if diff := math.Abs(a1[r][c] - a2[r][c]); !(diff <= tolMM) {
				what := fmt.Sprintf("affine[%d][%d] (%s per index %c)", r, c, names[r], "ijk"[min(c, 2)])
				if c == 3 {
					what = fmt.Sprintf("affine[%d][3] (origin %s)", r, names[r])
				}
				d = append(d, fmt.Sprintf("%s is %.4f mm, image %.4f mm (off by %.4g)", what, a2[r][c], a1[r][c], diff))
			}
		}
	}
	return d
}

// GridError reports a mask that does not lie on the image's grid.
type GridError struct {
	Path  string
	Diffs []string
}

func (e *GridError) Error() string {
	return fmt.Sprintf("load %s: the mask does not match the image grid: %s", e.Path, strings.Join(e.Diffs, "; "))
}

// Load reads a label map saved as NIfTI, NRRD, MetaImage or PNG (with its
// sidecar when present) for editing on image v, and checks it lies on v's grid
// (size, and each affine entry within 0.01 mm); a *GridError says exactly what
// differs. A Slicer .seg.nrrd brings its segments' names and colours as labels
// (they win over a sidecar's, Slicer may have edited them), and one cropped to
// its segments' extent (as Slicer can save it) is placed back on v's grid.
func Load(path string, v *volume.Volume) (*volume.LabelMap, []volume.Label, error) {
	sc, err := ReadSidecar(path)
	if err != nil {
		return nil, nil, err
	}
	var m *volume.LabelMap
	var segLabels []volume.Label
	l := strings.ToLower(path)
	switch {
	case strings.HasSuffix(l, ".png"):
		m, err = loadPNG(path, v, sc)
	case strings.HasSuffix(l, ".nrrd") || strings.HasSuffix(l, ".nhdr"):
		m, segLabels, _, err = nrrd.ReadLabelMap(path)
		if err == nil && strings.HasSuffix(l, ".seg.nrrd") {
			m = placeOnGrid(m, v)
		}
	case strings.HasSuffix(l, ".mha") || strings.HasSuffix(l, ".mhd"):
		m, err = metaimage.ReadLabelMap(path)
	default:
		m, err = loadNifti(path)
	}
	if err != nil {
		return nil, nil, err
	}
	if d := GridDiff(v.Size, v.Affine, m.Size, m.Affine, GridTolMM); len(d) > 0 {
		return nil, nil, &GridError{Path: path, Diffs: d}
	}
	var labels []volume.Label
	if segLabels != nil {
		labels = segLabels
	} else if sc != nil && sc.Labels != nil {
		labels = sc.Labels
	} else {
		labels = DefaultLabels(m)
	}
	return m, labels, nil
}

func loadNifti(path string) (*volume.LabelMap, error) {
	lv, err := nifti.Read(path)
	if err != nil {
		return nil, err
	}
	if lv.Channels != 1 {
		return nil, fmt.Errorf("load %s: a colour image, not a label map", path)
	}
	m := &volume.LabelMap{Size: lv.Size, Affine: lv.Affine, Data: make([]uint16, len(lv.Data))}
	for i, x := range lv.Data {
		if x < 0 || x > 65535 || x != float32(math.Trunc(float64(x))) {
			ii, jj, kk := i%lv.Size[0], i/lv.Size[0]%lv.Size[1], i/(lv.Size[0]*lv.Size[1])
			return nil, fmt.Errorf("load %s: not a label map: value %v at voxel (%d, %d, %d) (labels are whole numbers 0..65535)", path, x, ii, jj, kk)
		}
		m.Data[i] = uint16(x)
	}
	return m, nil
}

func loadPNG(path string, v *volume.Volume, sc *Sidecar) (*volume.LabelMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > volume.MaxVoxels/4 || int64(cfg.Width)*int64(cfg.Height)/8 > int64(len(b))*1032+1<<16 {
		return nil, fmt.Errorf("load %s: PNG claims %dx%d pixels, more than the file can hold", path, cfg.Width, cfg.Height)
	}
	// The decoded image and the uint16 label map, within the memory budget.
	if err := volume.CheckMemory(fmt.Sprintf("this %dx%d PNG mask", cfg.Width, cfg.Height), raster.DecodedBytes(cfg)+2*int64(cfg.Width)*int64(cfg.Height)); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if sc != nil && sc.Slice != nil {
		return nil, fmt.Errorf("load %s: this PNG holds one slice (axis %d, index %d) of a mask, not a whole mask: load the NIfTI mask", path, sc.Slice.Axis, sc.Slice.Index)
	}
	m := &volume.LabelMap{Size: [3]int{w, h, 1}, Affine: v.Affine, Data: make([]uint16, w*h)}
	if sc != nil {
		m.Affine = sc.Affine
	}
	if v.Size[2] != 1 {
		return nil, &GridError{Path: path, Diffs: []string{fmt.Sprintf("a PNG mask is 2D (%dx%d) but the image has %d slices: load a NIfTI mask", w, h, v.Size[2])}}
	}
	colours := map[color.RGBA]uint16{}
	if sc != nil {
		for _, l := range sc.Labels {
			colours[color.RGBA{l.Color[0], l.Color[1], l.Color[2], 255}] = l.Value
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var l uint16
			switch p := img.(type) {
			case *image.Gray:
				l = uint16(p.GrayAt(x, y).Y)
			case *image.Gray16:
				l = p.Gray16At(x, y).Y
			case *image.Paletted:
				l = uint16(p.ColorIndexAt(x, y))
			default:
				r, g, bb, _ := img.At(x, y).RGBA()
				r, g, bb = r>>8, g>>8, bb>>8
				if r == g && g == bb && (len(colours) == 0 || r == 0) {
					l = uint16(r)
					break
				}
				lv, ok := colours[color.RGBA{uint8(r), uint8(g), uint8(bb), 255}]
				if !ok {
					return nil, fmt.Errorf("load %s: colour (%d, %d, %d) at pixel (%d, %d) is no label's colour (a label PNG holds label numbers as grey values)", path, r, g, bb, x, y)
				}
				l = lv
			}
			m.Data[x+w*y] = l
		}
	}
	return m, nil
}

// placeOnGrid pastes a label map that covers a box of v's grid (same axes and
// spacing, its first voxel on one of v's voxels) into a map of v's full size;
// any other map is returned as it is, for the grid check to report.
func placeOnGrid(m *volume.LabelMap, v *volume.Volume) *volume.LabelMap {
	if m.Size == v.Size {
		return m
	}
	for r := 0; r < 3; r++ {
		for c := 0; c < 3; c++ {
			if math.Abs(m.Affine[r][c]-v.Affine[r][c]) > GridTolMM {
				return m
			}
		}
	}
	inv, err := v.Affine.Inverse()
	if err != nil {
		return m
	}
	p := inv.Apply([3]float64{m.Affine[0][3], m.Affine[1][3], m.Affine[2][3]})
	var off [3]int
	for a := 0; a < 3; a++ {
		off[a] = int(math.Round(p[a]))
		if math.Abs(p[a]-float64(off[a])) > 1e-3 || off[a] < 0 || off[a]+m.Size[a] > v.Size[a] {
			return m
		}
	}
	full := volume.NewLabelMap(v)
	for k := 0; k < m.Size[2]; k++ {
		for j := 0; j < m.Size[1]; j++ {
			src := m.Data[m.Index(0, j, k) : m.Index(0, j, k)+m.Size[0]]
			copy(full.Data[full.Index(off[0], off[1]+j, off[2]+k):], src)
		}
	}
	return full
}
