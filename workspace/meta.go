package workspace

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/volume"
)

// Meta is the sidecar's "meta" as medsa writes it, from the GUI and from
// `medsa segment` alike: the source, the model, the size of each label, and
// for every accepted mask the prompts, model and window that made it (so it
// can be re-run, and reopens with its records).
type Meta struct {
	Tool     string                   `json:"tool"` // "medsa" (the GUI), "medsa segment"
	Source   string                   `json:"source"`
	Model    string                   `json:"model,omitempty"`
	Provider string                   `json:"provider,omitempty"`
	Volumes  map[string]float64       `json:"label_sizes,omitempty"` // "<value> (<unit>)" -> size
	Masks    []interaction.MaskRecord `json:"masks"`
	Segment  *SegmentRun              `json:"segment,omitempty"` // `medsa segment` only
}

// SegmentRun is what `medsa segment` adds: the call's prompts as given and
// every candidate's score.
type SegmentRun struct {
	Points    []string  `json:"points,omitempty"`
	Box       string    `json:"box,omitempty"`
	Propagate bool      `json:"propagate"`
	Scores    []float32 `json:"scores"`
	Best      int       `json:"best"`
	ZoomCrop  []int     `json:"zoom_crop,omitempty"`
	// EncoderServer is the encoder server that did the encoding, if one did.
	EncoderServer string `json:"encoder_server,omitempty"`
}

// Meta describes d's labels for its sidecar.
func (w *Workspace) Meta(d *Doc, table []volume.Label, recs []interaction.MaskRecord) *Meta {
	m := &Meta{Tool: "medsa", Source: d.Path, Masks: recs, Volumes: map[string]float64{}}
	for _, l := range table {
		v, unit := d.Sess.Measure(l.Value)
		m.Volumes[fmt.Sprintf("%d (%s)", l.Value, unit)] = v
	}
	if e, _ := w.Engine(); e != nil {
		m.Model = e.Manifest().ID()
	}
	return m
}

// ReadMeta reads the records of a saved mask's sidecar (nil without one).
func ReadMeta(maskPath string) (*Meta, error) {
	sc, err := mask.ReadSidecar(maskPath)
	if err != nil || sc == nil || len(sc.Meta) == 0 {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(sc.Meta, &m); err != nil {
		return nil, fmt.Errorf("read %s: meta: %w", mask.SidecarPath(maskPath), err)
	}
	return &m, nil
}

// LoadMask reads a saved mask for editing on vol (it must lie on vol's grid:
// NIfTI, NRRD, MetaImage, PNG with their sidecar, or a DICOM-SEG over vol's
// series) and the records of how its masks were made, when the sidecar has
// them. A sidecar whose meta does not parse still loads, without records.
func LoadMask(path string, vol *volume.Volume) (*volume.LabelMap, []volume.Label, []interaction.MaskRecord, error) {
	if strings.HasSuffix(strings.ToLower(path), ".dcm") {
		lm, labels, err := LoadSEG(path, vol)
		return lm, labels, nil, err
	}
	lm, labels, err := mask.Load(path, vol)
	if err != nil {
		return nil, nil, nil, err
	}
	var recs []interaction.MaskRecord
	if m, err := ReadMeta(path); err == nil && m != nil {
		recs = m.Masks
	}
	return lm, labels, recs, nil
}

// PNGSlice says which slice a PNG export holds.
type PNGSlice struct{ Axis, Index int }

// SaveMask writes the label map (NIfTI and the other io/mask formats, or a
// PNG of one slice of a volume) and its sidecar.
func SaveMask(path string, lm *volume.LabelMap, labels []volume.Label, meta *Meta, ps *PNGSlice) error {
	if ps != nil && lm.Size[2] != 1 {
		return mask.SaveSlicePNG(path, lm, ps.Axis, ps.Index, labels)
	}
	return mask.Save(path, lm, labels, meta)
}
