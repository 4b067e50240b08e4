package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"

	"github.com/medsa/medsa/io/atomicfile"
)

// segmentState is what `medsa segment --state FILE` keeps between calls so a
// sequence of calls refines one mask the way clicks in the GUI do: the prompts
// so far on one slice and the low-res logits of the candidate that was chosen,
// which the next call feeds back as the decoder's mask_input.
type segmentState struct {
	Format     string    `json:"format"`
	Model      string    `json:"model"`
	Image      string    `json:"image"`
	Plane      string    `json:"plane"`
	Slice      int       `json:"slice"`
	Points     []string  `json:"points"`
	Box        string    `json:"box,omitempty"`
	Best       int       `json:"best"`
	Scores     []float32 `json:"scores"`
	LowResSize int       `json:"low_res_size"`
	// LowRes holds LowResSize² float32 logits, little-endian, base64.
	LowRes string `json:"low_res_logits"`
}

const stateFormat = "medsa-segment-state/1"

// loadState reads path; a missing file is no state (nil, nil).
func loadState(path string) (*segmentState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--state %s: %w", path, err)
	}
	var s segmentState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("--state %s: not a segment state file: %v", path, err)
	}
	if s.Format != stateFormat {
		return nil, fmt.Errorf("--state %s: format %q, want %q", path, s.Format, stateFormat)
	}
	return &s, nil
}

// logits decodes the stored low-res logits, checking their size against L.
func (s *segmentState) logits(path string, L int) ([]float32, error) {
	if s.LowResSize != L {
		return nil, fmt.Errorf("--state %s: low-res logits are %dx%d, the model wants %dx%d (made by another model?)", path, s.LowResSize, s.LowResSize, L, L)
	}
	raw, err := base64.StdEncoding.DecodeString(s.LowRes)
	if err != nil {
		return nil, fmt.Errorf("--state %s: low_res_logits: %v", path, err)
	}
	if len(raw) != 4*L*L {
		return nil, fmt.Errorf("--state %s: low_res_logits hold %d bytes, want %d", path, len(raw), 4*L*L)
	}
	out := make([]float32, L*L)
	for i := range out {
		x := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if x != x || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("--state %s: low_res_logits[%d] is %v", path, i, x)
		}
		out[i] = x
	}
	return out, nil
}

// check refuses a state made for another model, image, plane or slice: its
// logits would describe a different picture.
func (s *segmentState) check(path, model, image, plane string, slice int) error {
	switch {
	case s.Model != model:
		return fmt.Errorf("--state %s was made by model %s, this run uses %s: delete it to start over", path, s.Model, model)
	case s.Image != image:
		return fmt.Errorf("--state %s belongs to image %s, not %s: delete it to start over", path, s.Image, image)
	case s.Plane != plane || s.Slice != slice:
		return fmt.Errorf("--state %s holds prompts on %s slice %d, this call's prompts are on %s slice %d: delete it to start over",
			path, s.Plane, s.Slice, plane, slice)
	}
	return nil
}

func encodeLogits(x []float32) string {
	raw := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// saveState writes s to path atomically, so an interrupted call never
// leaves half a state.
func saveState(path string, s *segmentState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("--state %s: %w", path, err)
	}
	return nil
}
