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

// newLabel is a fresh row for value v: the default name when name is "", the
// default colour (volume.DefaultLabelColor: one palette for the GUI and the files).
func newLabel(v uint16, name string) LabelInfo {
	if name == "" {
		name = volume.DefaultLabelName(v)
	}
	return LabelInfo{Value: v, Name: name, Color: volume.DefaultLabelColor(v), Visible: true, Opacity: 0.5}
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

// AddLabel adds a label with the next free value ("" names it by the default
// rule) and makes it active; an unsaved change.
func (s *Session) AddLabel(name string) uint16 {
	s.mu.Lock()
	var v uint16 = 1
	for _, l := range s.labels {
		if l.Value >= v {
			v = l.Value + 1
		}
	}
	s.labels = append(s.labels, newLabel(v, name))
	s.active = v
	s.dirty++ // the label table is saved with the mask
	s.mu.Unlock()
	s.notify(ChangeLabelTable)
	return v
}

// ensureLabel adds a row for value v if it has none (e.g. loaded from a mask file).
func (s *Session) ensureLabel(v uint16) {
	if v == 0 || s.labelIdx(v) >= 0 {
		return
	}
	s.labels = append(s.labels, newLabel(v, ""))
	for i := len(s.labels) - 1; i > 0 && s.labels[i].Value < s.labels[i-1].Value; i-- {
		s.labels[i], s.labels[i-1] = s.labels[i-1], s.labels[i]
	}
}

// editLabel changes row v. A change to what the sidecar saves (name, colour)
// bumps the generation, so it counts as unsaved and is autosaved.
func (s *Session) editLabel(v uint16, f func(*LabelInfo)) error {
	s.mu.Lock()
	i := s.labelIdx(v)
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("no label %d", v)
	}
	before := s.labels[i]
	f(&s.labels[i])
	if after := s.labels[i]; after.Name != before.Name || after.Color != before.Color {
		s.dirty++
	}
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
