// Package load opens any supported image by its content: a DICOM folder or file,
// NIfTI-1/2 (.nii, .nii.gz, Analyze .hdr/.img), NRRD (.nrrd, .nhdr), MetaImage
// (.mha, .mhd), or a 2D raster (PNG, JPEG, BMP, TIFF).
package load

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/io/internal/ctxio"
	"github.com/medsa/medsa/io/metaimage"
	"github.com/medsa/medsa/io/nifti"
	"github.com/medsa/medsa/io/nrrd"
	"github.com/medsa/medsa/io/volume"
)

// Options choose among several images at one path.
type Options struct {
	SeriesUID string // DICOM: the series to read when a folder holds several

	// Context cancels the open: a local read stops between DICOM files and
	// within about a megabyte of NIfTI, NRRD or MetaImage voxels, and a DICOMweb
	// series URL (http[s]://HOST/ROOT/studies/{study}/series/{series}), which is
	// retrieved into the local cache first, stops its transfer. The error then
	// wraps ctx.Err(). Progress follows a retrieval.
	Context  context.Context
	Progress func(done, total int)
}

// Format names what a path holds.
type Format string

const (
	DICOM   Format = "dicom"
	NIfTI   Format = "nifti"
	Analyze Format = "analyze"
	Raster  Format = "raster"
	NRRD    Format = "nrrd"
	Meta    Format = "metaimage"
	Unknown Format = ""
)

// Detect looks at a path's content (and, only for Analyze pairs, its name).
func Detect(path string) (Format, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Unknown, err
	}
	if st.IsDir() {
		return DICOM, nil
	}
	if err := CheckRegular(path, st); err != nil {
		return Unknown, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Unknown, err
	}
	defer f.Close()
	head := make([]byte, 1024)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(head))
		if err == nil {
			// Peek inside: the first bytes of the stream hold the NIfTI header.
			f.Seek(0, io.SeekStart)
			zr, err = gzip.NewReader(bufio.NewReader(f))
		}
		if err != nil {
			return Unknown, fmt.Errorf("%s: gzip: %w", path, err)
		}
		inner := make([]byte, 352)
		m, _ := io.ReadFull(zr, inner)
		if fm := sniff(inner[:m], path); fm == NIfTI {
			return NIfTI, nil
		}
		return Unknown, fmt.Errorf("%s: a gzip file that holds no NIfTI image", path)
	}
	if fm := sniff(head, path); fm != Unknown {
		return fm, nil
	}
	return Unknown, fmt.Errorf("%s: not a DICOM, NIfTI, Analyze, NRRD, MetaImage, PNG, JPEG, BMP or TIFF image", path)
}

// CheckRegular refuses what is neither a regular file nor a folder before anything
// opens it: opening a named pipe blocks until something writes to it (a hang), and
// a device or socket is no image.
func CheckRegular(path string, st os.FileInfo) error {
	m := st.Mode()
	if m.IsRegular() || m.IsDir() {
		return nil
	}
	what := "not a regular file"
	switch {
	case m&os.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		what = "a socket"
	case m&os.ModeDevice != 0:
		what = "a device"
	}
	return fmt.Errorf("%s is %s, not an image file: save the image to a file and open that", path, what)
}

func sniff(h []byte, path string) Format {
	if len(h) >= 132 && string(h[128:132]) == "DICM" {
		return DICOM
	}
	if bytes.HasPrefix(h, []byte("NRRD000")) {
		return NRRD
	}
	if isMetaImage(h, path) {
		return Meta
	}
	if len(h) >= 348 {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			switch bo.Uint32(h) {
			case 348:
				if m := string(h[344:347]); m == "n+1" || m == "ni1" {
					return NIfTI
				}
				if strings.EqualFold(filepath.Ext(path), ".hdr") {
					return Analyze
				}
			case 540:
				if len(h) >= 8 && (string(h[4:7]) == "n+2" || string(h[4:7]) == "ni2") {
					return NIfTI
				}
			}
		}
	}
	switch {
	case bytes.HasPrefix(h, []byte("\x89PNG\r\n\x1a\n")),
		bytes.HasPrefix(h, []byte{0xFF, 0xD8, 0xFF}),
		bytes.HasPrefix(h, []byte("BM")) && len(h) >= 26,
		bytes.HasPrefix(h, []byte("II*\x00")), bytes.HasPrefix(h, []byte("MM\x00*")):
		return Raster
	}
	if dicomNoPreamble(h) {
		return DICOM
	}
	return Unknown
}

// dicomNoPreamble recognises a data set without the 128-byte preamble: it starts
// with a group 0002 or 0008 element, explicit (a VR) or implicit (a sane length).
func dicomNoPreamble(h []byte) bool {
	if len(h) < 12 {
		return false
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		g := bo.Uint16(h)
		if g != 0x0002 && g != 0x0008 {
			continue
		}
		vr := string(h[4:6])
		if vr[0] >= 'A' && vr[0] <= 'Z' && vr[1] >= 'A' && vr[1] <= 'Z' {
			return true
		}
		if l := binary.LittleEndian.Uint32(h[4:]); bo == binary.LittleEndian && l < 1024 {
			return true
		}
	}
	return false
}

// Open reads the image at path.
func Open(path string, opt Options) (*volume.Volume, error) {
	path, err := resolve(path, opt)
	if err != nil {
		return nil, err
	}
	fm, err := Detect(path)
	if err != nil {
		return nil, err
	}
	ctx := ctxio.OrBackground(opt.Context)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	switch fm {
	case DICOM:
		v, _, err := dicom.ReadFilesSeriesContext(ctx, []string{path}, opt.SeriesUID)
		return v, err
	case NIfTI, Analyze:
		return nifti.ReadContext(ctx, path)
	case Raster: // one 2D image, bounded by raster.MaxPixels: not worth stopping midway
		return readRaster(path)
	case NRRD:
		return nrrd.ReadContext(ctx, path)
	case Meta:
		return metaimage.ReadContext(ctx, path)
	}
	return nil, fmt.Errorf("%s: unknown format", path)
}

// OpenSeries is Open that also lists the DICOM series found at path (nil for
// other formats), from the same scan.
func OpenSeries(path string, opt Options) (*volume.Volume, []dicom.Series, error) {
	path, err := resolve(path, opt)
	if err != nil {
		return nil, nil, err
	}
	fm, err := Detect(path)
	if err != nil {
		return nil, nil, err
	}
	if fm == DICOM {
		return dicom.ReadFilesSeriesContext(ctxio.OrBackground(opt.Context), []string{path}, opt.SeriesUID)
	}
	v, err := Open(path, opt)
	return v, nil, err
}

// ListSeries lists the DICOM series at path (nil for other formats).
func ListSeries(path string) ([]dicom.Series, error) {
	path, err := resolve(path, Options{})
	if err != nil {
		return nil, err
	}
	fm, err := Detect(path)
	if err != nil {
		return nil, err
	}
	if fm != DICOM {
		return nil, nil
	}
	return dicom.ListSeries(path)
}

// MultipleSeries returns the series list when err says a choice is needed.
func MultipleSeries(err error) ([]dicom.Series, bool) {
	var m *dicom.MultipleSeriesError
	if errors.As(err, &m) {
		return m.Series, true
	}
	return nil, false
}

// isMetaImage recognises a MetaImage header by its text: "Key = Value" lines
// with an NDims (or ObjectType) key. Without the .mha/.mhd extension the first
// line must already be one of MetaIO's leading keys.
func isMetaImage(h []byte, path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	hint := ext == ".mha" || ext == ".mhd"
	lines := strings.Split(string(h), "\n")
	if len(lines) > 1 {
		lines = lines[:len(lines)-1] // the last may be cut short
	}
	for i, l := range lines {
		k, _, ok := strings.Cut(l, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" || strings.ContainsAny(k, "\x00\r\t") {
			return false
		}
		if i == 0 && !hint && k != "objecttype" && k != "ndims" {
			return false
		}
		if k == "ndims" || (hint && k == "objecttype") {
			return true
		}
	}
	return false
}
