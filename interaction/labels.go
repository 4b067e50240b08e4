package interaction

import (
	"fmt"

	"github.com/medsa/medsa/io/volume"
)

// LabelInfo is one row of the label table.
type LabelInfo struct {
	Value   uint16
	Name    string
	Color   [3]uint8
	Visible bool
	Opacity float64 // 0..1
}

// palette gives new labels distinct colours (ITK-SNAP-like).
var palette = [][3]uint8{
	{230, 25, 75}, {60, 180, 75}, {255, 225, 25}, {0, 130, 200}, {245, 130, 48},
	{145, 30, 180}, {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 190},
	{0, 128, 128}, {230, 190, 255}, {170, 110, 40}, {255, 250, 200}, {128, 0, 0},
}

// PaletteColor is the default colour of label value v.
func PaletteColor(v uint16) [3]uint8 {
	if v == 0 {
		return [3]uint8{0, 0, 0}
	}
	return palette[int(v-1)%len(palette)]
}

// Labels returns a copy of the label table, ordered by value.
func (s *Session) Labels() []LabelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LabelInfo, len(s.labels))
	copy(out, s.labels)
	return out
}

// Label returns the row of value v.
func (s *Session) Label(v uint16) (LabelInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.labelIdx(v)
	if i < 0 {
		return LabelInfo{}, false
	}
	return s.labels[i], true
}

func (s *Session) labelIdx(v uint16) int {
	for i, l := range s.labels {
		if l.Value == v {
			return i
		}
	}
	return -1
}

// AddLabel adds a label with the next free value and makes it active.
func (s *Session) AddLabel(name string) uint16 {
	s.mu.Lock()
	var v uint16 = 1
	for _, l := range s.labels {
		if l.Value >= v {
			v = l.Value + 1
		}
	}
	if name == "" {
		name = fmt.Sprintf("label %d", v)
	}
	s.labels = append(s.labels, LabelInfo{Value: v, Name: name, Color: PaletteColor(v), Visible: true, Opacity: 0.5})
	s.active = v
	s.mu.Unlock()
	s.notify(ChangeLabelTable)
	return v
}

// ensureLabel adds a row for value v if it has none (e.g. loaded from a mask file).
func (s *Session) ensureLabel(v uint16) {
	if v == 0 || s.labelIdx(v) >= 0 {
		return
	}
	s.labels = append(s.labels, LabelInfo{Value: v, Name: fmt.Sprintf("label %d", v), Color: PaletteColor(v), Visible: true, Opacity: 0.5})
	for i := len(s.labels) - 1; i > 0 && s.labels[i].Value < s.labels[i-1].Value; i-- {
		s.labels[i], s.labels[i-1] = s.labels[i-1], s.labels[i]
	}
}

func (s *Session) editLabel(v uint16, f func(*LabelInfo)) error {
	s.mu.Lock()
	i := s.labelIdx(v)
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("no label %d", v)
	}
	f(&s.labels[i])
	s.mu.Unlock()
	s.notify(ChangeLabelTable)
	return nil
}

// RenameLabel sets the name of label v.
func (s *Session) RenameLabel(v uint16, name string) error {
	return s.editLabel(v, func(l *LabelInfo) { l.Name = name })
}

// SetLabelColor sets the colour of label v.
func (s *Session) SetLabelColor(v uint16, c [3]uint8) error {
	return s.editLabel(v, func(l *LabelInfo) { l.Color = c })
}

// SetLabelVisible shows or hides label v.
func (s *Session) SetLabelVisible(v uint16, on bool) error {
	return s.editLabel(v, func(l *LabelInfo) { l.Visible = on })
}

// SetLabelOpacity sets the overlay opacity of label v (clamped to 0..1).
func (s *Session) SetLabelOpacity(v uint16, o float64) error {
	o = min(max(o, 0), 1)
	return s.editLabel(v, func(l *LabelInfo) { l.Opacity = o })
}

// Active is the label that accepted masks and the brush write.
func (s *Session) Active() uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// SetActive selects the active label.
func (s *Session) SetActive(v uint16) error {
	s.mu.Lock()
	if s.labelIdx(v) < 0 {
		s.mu.Unlock()
		return fmt.Errorf("no label %d", v)
	}
	s.active = v
	s.mu.Unlock()
	s.notify(ChangeLabelTable)
	return nil
}

// VoxelCount is the number of voxels carrying label v (kept incrementally).
func (s *Session) VoxelCount(v uint16) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[v]
}

// Measure returns the size of label v: in mL for a volume, in mm² for a 2D image.
// unit is "mL" or "mm²"; for 2D images without known spacing the unit is "px".
func (s *Session) Measure(v uint16) (value float64, unit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := float64(s.counts[v])
	sp := s.vol.Spacing()
	if s.vol.Is2D() {
		if s.vol.Modality == "RGB" && sp[0] == 1 && sp[1] == 1 {
			return n, "px"
		}
		return n * sp[0] * sp[1], "mm²"
	}
	return n * sp[0] * sp[1] * sp[2] / 1000, "mL"
}

// TableForSave returns the labels for the sidecar, as io/volume.Label rows.
func (s *Session) TableForSave() []volume.Label {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]volume.Label, 0, len(s.labels))
	for _, l := range s.labels {
		out = append(out, volume.Label{Value: l.Value, Name: l.Name, Color: l.Color})
	}
	return out
}
