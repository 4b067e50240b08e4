package volume

import "fmt"

// LabelMap is a segmentation on the grid of a Volume: 0 = background.
// Stored as uint16 so more than 255 labels fit; writers store uint8 when they can.
type LabelMap struct {
	Size   [3]int
	Affine Affine
	Data   []uint16 // len nx*ny*nz, same voxel order as Volume
}

// NewLabelMap returns an empty label map on v's grid.
func NewLabelMap(v *Volume) *LabelMap {
	return &LabelMap{Size: v.Size, Affine: v.Affine, Data: make([]uint16, v.NumVoxels())}
}

// Index is the flat voxel offset of (i, j, k).
func (m *LabelMap) Index(i, j, k int) int { return i + m.Size[0]*(j+m.Size[1]*k) }

// Contains reports whether (i, j, k) lies inside the grid.
func (m *LabelMap) Contains(i, j, k int) bool {
	return i >= 0 && j >= 0 && k >= 0 && i < m.Size[0] && j < m.Size[1] && k < m.Size[2]
}

// MaxLabel is the largest label value present.
func (m *LabelMap) MaxLabel() uint16 {
	var mx uint16
	for _, l := range m.Data {
		if l > mx {
			mx = l
		}
	}
	return mx
}

// Count returns the number of voxels carrying label l.
func (m *LabelMap) Count(l uint16) int {
	n := 0
	for _, x := range m.Data {
		if x == l {
			n++
		}
	}
	return n
}

// CheckGrid says exactly how the label map's grid differs from the image's, or nil.
func (m *LabelMap) CheckGrid(v *Volume) error {
	if d := SameGrid(v.Size, v.Affine, m.Size, m.Affine, 0.01); d != "" {
		return fmt.Errorf("mask does not match the image grid: %s", d)
	}
	return nil
}

// Label describes one label of a label map (for the JSON sidecar and the GUI).
type Label struct {
	Value uint16   `json:"value"`
	Name  string   `json:"name"`
	Color [3]uint8 `json:"color"`
}

// labelColors is ITK-SNAP's default label colour table: the one palette of
// medsa (GUI, mask files, NRRD segmentations, DICOM-SEG).
var labelColors = [...][3]uint8{
	{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}, {0, 255, 255}, {255, 0, 255},
	{255, 239, 213}, {0, 0, 205}, {205, 133, 63}, {210, 180, 140}, {102, 205, 170},
	{0, 0, 128}, {0, 139, 139}, {46, 139, 87}, {255, 228, 225}, {106, 90, 205},
}

// DefaultLabelColor is the colour of label value l when nothing names one (black for 0).
func DefaultLabelColor(l uint16) [3]uint8 {
	if l == 0 {
		return [3]uint8{}
	}
	return labelColors[int(l-1)%len(labelColors)]
}

// DefaultLabelName is the name of label value l when nothing names it ("Label 3").
func DefaultLabelName(l uint16) string { return fmt.Sprintf("Label %d", l) }
