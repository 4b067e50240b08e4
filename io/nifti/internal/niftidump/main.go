// Command niftidump is the Go half of scripts/test.d/nifti-referee.sh: for each
// input it reads the image with io/nifti, writes its voxels (float32, little
// endian, channels interleaved) and a JSON summary, and writes the volume and a
// label map derived from it back as NIfTI, so nibabel can judge both directions.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/medsa/medsa/io/mask"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/volume"
)

type entry struct {
	Input    string        `json:"input"`
	Size     [3]int        `json:"size"`
	Channels int           `json:"channels"`
	DataType string        `json:"datatype"`
	Affine   volume.Affine `json:"affine"`
	Modality string        `json:"modality"`
	Window   [2]float64    `json:"window"`
	Notes    []string      `json:"notes"`
	Raw      string        `json:"raw"`       // our voxels as float32
	Volume   string        `json:"volume"`    // WriteVolume output
	Labels   string        `json:"labels"`    // WriteLabelMap output
	LabelRaw string        `json:"label_raw"` // the label map as uint16
	Error    string        `json:"error,omitempty"`
}

func main() {
	out := flag.String("o", "", "output folder")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: niftidump -o DIR FILE...")
		os.Exit(2)
	}
	var all []entry
	failed := false
	for n, in := range flag.Args() {
		e := entry{Input: in}
		if err := dump(&e, in, filepath.Join(*out, fmt.Sprintf("f%02d", n))); err != nil {
			e.Error = err.Error()
			failed = true
			fmt.Fprintln(os.Stderr, err)
		}
		all = append(all, e)
	}
	b, _ := json.MarshalIndent(all, "", " ")
	if err := os.WriteFile(filepath.Join(*out, "medsa.json"), b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

func dump(e *entry, in, stem string) error {
	v, err := nifti.Read(in)
	if err != nil {
		return err
	}
	e.Size, e.Channels, e.DataType, e.Affine = v.Size, v.Channels, v.DataType, v.Affine
	e.Modality, e.Window, e.Notes = v.Modality, v.Window, v.Notes
	e.Raw = stem + ".f32"
	buf := make([]byte, 4*len(v.Data))
	for i, x := range v.Data {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	if err := os.WriteFile(e.Raw, buf, 0o644); err != nil {
		return err
	}
	e.Volume = stem + "_vol.nii.gz"
	if err := nifti.WriteVolume(e.Volume, v); err != nil {
		return err
	}
	// A label map from intensity bands: 0 below the 40th percentile of channel 0,
	// then labels 1..3 (and a label 300 band on every other file, to force uint16).
	m := volume.NewLabelMap(v)
	w := volume.PercentileWindow(v.Data, v.Channels, 40, 90)
	lo, hi := w[0]-w[1]/2, w[0]+w[1]/2
	big := strings.HasSuffix(stem, "1") || strings.HasSuffix(stem, "4")
	for i := range m.Data {
		x := float64(v.Data[i*v.Channels])
		switch {
		case x <= lo:
		case x <= (lo+hi)/2:
			m.Data[i] = 1
		case x <= hi:
			m.Data[i] = 2
		case big:
			m.Data[i] = 300
		default:
			m.Data[i] = 3
		}
	}
	e.Labels = stem + "_lab.nii.gz"
	// through io/mask, as the app saves masks: label map + JSON sidecar
	if err := mask.Save(e.Labels, m, nil, map[string]string{"source": in}); err != nil {
		return err
	}
	e.LabelRaw = stem + "_lab.u16"
	lb := make([]byte, 2*len(m.Data))
	for i, l := range m.Data {
		binary.LittleEndian.PutUint16(lb[2*i:], l)
	}
	return os.WriteFile(e.LabelRaw, lb, 0o644)
}
