package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ManifestFormat is the only manifest format this engine reads (docs/MANIFEST.md).
const ManifestFormat = "medsa-manifest/1"

// Manifest is manifest.json of a model directory (docs/MANIFEST.md).
type Manifest struct {
	Format         string                 `json:"format"`
	Name           string                 `json:"name"`
	Version        string                 `json:"version"`
	Architecture   string                 `json:"architecture"`
	InputSize      int                    `json:"input_size"`
	Resize         string                 `json:"resize"`
	PixelAspect    string                 `json:"pixel_aspect"`
	Interpolation  string                 `json:"interpolation"`
	ValueRange     [2]float64             `json:"value_range"`
	RGBScale       float64                `json:"rgb_scale"`
	Mean           [3]float32             `json:"mean"`
	Std            [3]float32             `json:"std"`
	GreyToRGB      string                 `json:"grey_to_rgb"`
	Windowing      Windowing              `json:"windowing"`
	Coords         string                 `json:"coords"`
	EmbeddingShape []int64                `json:"embedding_shape"`
	LowResMaskSize int                    `json:"low_res_mask_size"`
	NumMaskOutputs int                    `json:"num_mask_outputs"`
	MaskThreshold  float32                `json:"mask_threshold"`
	DepthChunk     int                    `json:"depth_chunk"`
	Files          map[string]FileEntry   `json:"files"`
	Tensors        map[string]TensorNames `json:"tensors"`
	Params         map[string]int64       `json:"params"`
	Training       json.RawMessage        `json:"training"`
	AutoZoom       *AutoZoom              `json:"auto_zoom,omitempty"`
	Ranking        *Ranking               `json:"ranking,omitempty"`
	// BoxClip: a box prompt's masks are cut to the box (widened to its positive
	// clicks); see boxClipRect. Absent or false: the decoder's masks as they are.
	BoxClip bool `json:"box_clip,omitempty"`

	Dir string `json:"-"` // the directory it was read from
}

// Windowing is the manifest's policy for turning grey values into [0,1].
type Windowing struct {
	CT              string     `json:"ct"`
	Default         string     `json:"default"`
	Percentiles     [2]float64 `json:"percentiles"`
	CTDefaultWindow [2]float64 `json:"ct_default_window"`
}

// FileEntry names one ONNX file and its sha256.
type FileEntry struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// TensorNames lists a session's input and output tensor names.
type TensorNames struct {
	Inputs  []string `json:"inputs"`
	Outputs []string `json:"outputs"`
}

// Decoder tensor names in the order the engine feeds them (SAM's ONNX contract).
var decoderInputs = []string{"image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"}
var decoderOutputs = []string{"masks", "iou_predictions", "low_res_masks"}

// Has3D reports whether the model has a depth encoder.
func (m *Manifest) Has3D() bool {
	_, ok := m.Files["encoder3d"]
	return ok && m.DepthChunk > 0
}

// ID is "name@version", the model part of the embedding cache key.
func (m *Manifest) ID() string { return m.Name + "@" + m.Version }

// EmbeddingLen is the number of floats in one embedding.
func (m *Manifest) EmbeddingLen() int {
	n := int64(1)
	for _, d := range m.EmbeddingShape {
		n *= d
	}
	return int(n)
}

// LoadManifest reads and validates dir/manifest.json and checks every listed
// file exists and matches its sha256. Tensor names are checked against the ONNX
// sessions at Open.
func LoadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("model: parse %s: %w", path, err)
	}
	// Required keys: decode again into a map to tell "missing" from "zero".
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(b, &raw)
	for _, k := range []string{"format", "name", "version", "input_size", "resize", "pixel_aspect", "interpolation",
		"mean", "std", "embedding_shape", "low_res_mask_size", "num_mask_outputs", "files", "tensors"} {
		if _, ok := raw[k]; !ok {
			return nil, fmt.Errorf("model: %s: missing key %q", path, k)
		}
	}
	m.Dir = dir
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if err := m.checkFiles(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if m.Format != ManifestFormat {
		return fmt.Errorf("key \"format\" is %q, want %q", m.Format, ManifestFormat)
	}
	if m.Name == "" {
		return errors.New("key \"name\" is empty")
	}
	if m.InputSize < 8 || m.InputSize > 4096 {
		return fmt.Errorf("key \"input_size\" is %d, want 8..4096", m.InputSize)
	}
	switch m.Resize {
	case "longest_side_pad", "stretch":
	default:
		return fmt.Errorf("key \"resize\" is %q, want longest_side_pad or stretch", m.Resize)
	}
	switch m.PixelAspect {
	case "physical", "pixels":
	default:
		return fmt.Errorf("key \"pixel_aspect\" is %q, want physical or pixels", m.PixelAspect)
	}
	if m.Interpolation != "bilinear_half_pixel" {
		return fmt.Errorf("key \"interpolation\" is %q, want bilinear_half_pixel", m.Interpolation)
	}
	if m.GreyToRGB != "" && m.GreyToRGB != "replicate" {
		return fmt.Errorf("key \"grey_to_rgb\" is %q, want replicate", m.GreyToRGB)
	}
	if m.Coords != "" && m.Coords != "xy_model_pixels" {
		return fmt.Errorf("key \"coords\" is %q, want xy_model_pixels", m.Coords)
	}
	if m.ValueRange == [2]float64{} {
		m.ValueRange = [2]float64{0, 1}
	}
	if m.ValueRange != [2]float64{0, 1} {
		return fmt.Errorf("key \"value_range\" is %v, only [0, 1] is supported", m.ValueRange)
	}
	if m.RGBScale == 0 {
		m.RGBScale = 255
	}
	for c, s := range m.Std {
		if s == 0 {
			return fmt.Errorf("key \"std\"[%d] is 0", c)
		}
	}
	if len(m.EmbeddingShape) != 4 || m.EmbeddingShape[0] != 1 {
		return fmt.Errorf("key \"embedding_shape\" is %v, want [1, C, h, w]", m.EmbeddingShape)
	}
	for i, d := range m.EmbeddingShape {
		if d <= 0 || d > 1<<16 {
			return fmt.Errorf("key \"embedding_shape\"[%d] is %d", i, d)
		}
	}
	if m.LowResMaskSize <= 0 || m.LowResMaskSize > m.InputSize {
		return fmt.Errorf("key \"low_res_mask_size\" is %d, want 1..input_size (%d)", m.LowResMaskSize, m.InputSize)
	}
	if m.NumMaskOutputs <= 0 || m.NumMaskOutputs > 16 {
		return fmt.Errorf("key \"num_mask_outputs\" is %d, want 1..16", m.NumMaskOutputs)
	}
	if m.DepthChunk < 0 || m.DepthChunk > 256 {
		return fmt.Errorf("key \"depth_chunk\" is %d, want 0..256", m.DepthChunk)
	}
	if err := m.Ranking.validate(); err != nil {
		return err
	}
	if z := m.AutoZoom; z != nil {
		switch {
		case z.BoxMargin < 1 || z.BoxMargin > 16:
			return fmt.Errorf("key \"auto_zoom\".box_margin is %g, want 1..16", z.BoxMargin)
		case z.MinSide < 8:
			return fmt.Errorf("key \"auto_zoom\".min_side is %d, want >= 8", z.MinSide)
		case z.MaxFrac <= 0 || z.MaxFrac > 1:
			return fmt.Errorf("key \"auto_zoom\".max_frac is %g, want (0, 1]", z.MaxFrac)
		case z.ClickBelow < 0 || z.ClickBelow >= 1 || (z.ClickBelow > 0 && (z.ClickMargin < 1 || z.ClickMargin > 16)):
			return fmt.Errorf("key \"auto_zoom\" click_below %g / click_margin %g: want click_below in [0, 1) and click_margin 1..16", z.ClickBelow, z.ClickMargin)
		case z.ClickMinPoints < 0 || z.ClickMinPoints > 64:
			return fmt.Errorf("key \"auto_zoom\".click_min_points is %d, want 0..64", z.ClickMinPoints)
		case !(z.ClickAgree >= 0 && z.ClickAgree <= 1):
			return fmt.Errorf("key \"auto_zoom\".click_agree is %g, want 0..1", z.ClickAgree)
		}
	}
	for _, k := range []string{"encoder", "decoder"} {
		if _, ok := m.Files[k]; !ok {
			return fmt.Errorf("key \"files\" has no %q", k)
		}
		if _, ok := m.Tensors[k]; !ok {
			return fmt.Errorf("key \"tensors\" has no %q", k)
		}
	}
	if _, ok := m.Files["encoder3d"]; ok {
		if _, ok := m.Tensors["encoder3d"]; !ok {
			return errors.New("key \"tensors\" has no \"encoder3d\" though \"files\" lists one")
		}
		if m.DepthChunk < 1 {
			return errors.New("key \"depth_chunk\" is 0 though \"files\" lists an encoder3d")
		}
	}
	for k, f := range m.Files {
		if f.Path == "" || filepath.IsAbs(f.Path) || strings.Contains(f.Path, "..") {
			return fmt.Errorf("key \"files\".%s.path %q must be a relative path inside the model directory", k, f.Path)
		}
		if len(f.SHA256) != 64 {
			return fmt.Errorf("key \"files\".%s.sha256 %q is not 64 hex digits", k, f.SHA256)
		}
	}
	for k, t := range m.Tensors {
		if len(t.Inputs) != 1 && k != "decoder" {
			return fmt.Errorf("key \"tensors\".%s.inputs has %d names, want 1", k, len(t.Inputs))
		}
		if len(t.Outputs) != 1 && k != "decoder" {
			return fmt.Errorf("key \"tensors\".%s.outputs has %d names, want 1", k, len(t.Outputs))
		}
	}
	d := m.Tensors["decoder"]
	if !sameStrings(d.Inputs, decoderInputs) {
		return fmt.Errorf("key \"tensors\".decoder.inputs is %v, want %v", d.Inputs, decoderInputs)
	}
	if !sameStrings(d.Outputs, decoderOutputs) {
		return fmt.Errorf("key \"tensors\".decoder.outputs is %v, want %v", d.Outputs, decoderOutputs)
	}
	return nil
}

// sameStrings reports whether a and b hold the same names in any order.
func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s] == 0 {
			return false
		}
		seen[s]--
	}
	return true
}

// FilePath returns the absolute path of file kind k ("encoder", "decoder", "encoder3d").
func (m *Manifest) FilePath(k string) string { return filepath.Join(m.Dir, m.Files[k].Path) }

func (m *Manifest) checkFiles() error {
	for _, k := range []string{"encoder", "decoder", "encoder3d"} {
		f, ok := m.Files[k]
		if !ok {
			continue
		}
		p := m.FilePath(k)
		sum, err := fileSHA256(p)
		if err != nil {
			return fmt.Errorf("model: files.%s: %w", k, err)
		}
		if !strings.EqualFold(sum, f.SHA256) {
			return fmt.Errorf("model: files.%s: %s has sha256 %s, manifest.json says %s (re-export the model or fix the manifest)",
				k, p, sum, f.SHA256)
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
