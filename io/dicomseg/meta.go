package dicomseg

import (
	"encoding/json"

	"github.com/medsa/medsa/io/volume"
)

// sidecarMeta is the part of a mask sidecar's "meta" (io/mask) that says how
// each label was made: the GUI records every accepted model mask in "masks"
// (label, model); `medsa segment` records one "model". An optional "segments"
// list carries per-label DICOM codes and algorithm overrides.
type sidecarMeta struct {
	Model string `json:"model"`
	Masks []struct {
		Label uint16 `json:"label"`
		Model string `json:"model"`
	} `json:"masks"`
	Segments []struct {
		Label         uint16 `json:"label"`
		Category      *Code  `json:"category"`
		Type          *Code  `json:"type"`
		Algorithm     string `json:"algorithm"`
		AlgorithmName string `json:"algorithm_name"`
	} `json:"segments"`
}

// SegmentsFromMeta describes labels for Write from a mask sidecar's meta
// (nil or unparsable meta: names and colours only). A label with a recorded
// model mask is SEMIAUTOMATIC, named after that model; when the meta keeps
// mask records but none for a label, it was only brushed: MANUAL. With no records at all,
// the meta's "model" (or, without one, Options.Model) decides. It also returns
// the model the meta names ("" if none).
func SegmentsFromMeta(labels []volume.Label, meta json.RawMessage) ([]Segment, string) {
	var m sidecarMeta
	var keys map[string]json.RawMessage
	if len(meta) > 0 {
		// The meta is the caller's: what does not parse is ignored.
		if json.Unmarshal(meta, &keys) != nil || json.Unmarshal(meta, &m) != nil {
			m, keys = sidecarMeta{}, nil
		}
	}
	_, recorded := keys["masks"] // the GUI writes "masks" always, null when nothing came from a model
	made := map[uint16]string{}
	for _, r := range m.Masks {
		if r.Model != "" && made[r.Label] == "" {
			made[r.Label] = r.Model
		}
	}
	model := m.Model
	out := make([]Segment, 0, len(labels))
	for _, l := range labels {
		s := Segment{Label: l.Value, Name: l.Name, Color: l.Color}
		switch {
		case made[l.Value] != "":
			s.Algorithm, s.AlgorithmName = Semiautomatic, made[l.Value]
		case recorded:
			s.Algorithm = Manual
		case model != "":
			s.Algorithm, s.AlgorithmName = Semiautomatic, model
		}
		for _, o := range m.Segments {
			if o.Label != l.Value {
				continue
			}
			if o.Category != nil {
				s.Category = *o.Category
			}
			if o.Type != nil {
				s.Type = *o.Type
			}
			if o.Algorithm != "" {
				s.Algorithm, s.AlgorithmName = o.Algorithm, o.AlgorithmName
			}
		}
		out = append(out, s)
		if model == "" && s.AlgorithmName != "" {
			model = s.AlgorithmName
		}
	}
	return out, model
}
