package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
)

func init() {
	commands["info"] = runInfo
	commands["convert"] = runConvert
}

// imageInfo is what `medsa info` prints.
type imageInfo struct {
	Path        string         `json:"path"`
	Size        [3]int         `json:"size"`
	Spacing     [3]float64     `json:"spacing"`
	Affine      volume.Affine  `json:"affine"`
	Orientation string         `json:"orientation"`
	Modality    string         `json:"modality"`
	Channels    int            `json:"channels"`
	DataType    string         `json:"datatype"`
	Window      [2]float64     `json:"window"`
	Notes       []string       `json:"notes"`
	Series      []dicom.Series `json:"series,omitempty"`
}

// parseImageArgs reads PATH [more positional] [--series UID] in any order, plus
// the flags extra defines.
func parseImageArgs(name string, args []string, positional int, extra ...func(*flag.FlagSet)) ([]string, load.Options, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	uid := fs.String("series", "", "DICOM SeriesInstanceUID to read when a folder holds several")
	for _, f := range extra {
		f(fs)
	}
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, load.Options{}, err
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	if len(pos) != positional {
		return nil, load.Options{}, fmt.Errorf("want %d path argument(s), got %d", positional, len(pos))
	}
	return pos, load.Options{SeriesUID: *uid}, nil
}

func runInfo(args []string) error {
	pos, opt, err := parseImageArgs("info", args, 1)
	if err != nil {
		return fmt.Errorf("%v (usage: medsa info PATH [--series UID])", err)
	}
	path := pos[0]
	v, series, err := load.OpenSeries(path, opt)
	if list, ok := load.MultipleSeries(err); ok {
		// Print the series so the caller can choose, and fail.
		out, _ := json.MarshalIndent(struct {
			Path   string         `json:"path"`
			Series []dicom.Series `json:"series"`
		}{path, list}, "", "  ")
		fmt.Println(string(out))
		return fmt.Errorf("%s holds %d series: choose one with --series UID", path, len(list))
	}
	if err != nil {
		return err
	}
	if len(series) < 2 {
		series = nil // listed only when the folder holds several
	}
	for r := range v.Affine {
		for c := range v.Affine[r] {
			v.Affine[r][c] += 0 // print -0 as 0
		}
	}
	info := imageInfo{Path: path, Size: v.Size, Spacing: v.Spacing(), Affine: v.Affine, Orientation: v.Affine.Orientation(),
		Modality: v.Modality, Channels: v.Channels, DataType: v.DataType, Window: v.Window, Notes: v.Notes, Series: series}
	if info.Notes == nil {
		info.Notes = []string{}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}

var errUsageConvert = errors.New("usage: medsa convert PATH OUT.nii[.gz]|OUT.nrrd|OUT.mha|OUT.mhd [--series UID] [--force]")
