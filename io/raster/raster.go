// Package raster reads 2D images (PNG 8/16-bit grey/RGB/palette/alpha, JPEG, BMP,
// TIFF) into a one-slice volume.Volume.
//
// Geometry is what ITK, ITK-SNAP and 3D Slicer give a PNG: spacing 1, origin 0,
// identity direction in LPS, i.e. Affine = diag(-1, -1, 1, 1) in RAS+. Column x is
// i, row y is j. A NIfTI mask saved on this grid therefore overlays the PNG in
// those tools.
package raster

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // register decoders
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"

	"github.com/medsa/medsa/io/volume"
)

// MaxPixels bounds the image size a reader accepts (about 134 megapixels).
const MaxPixels = 1 << 27

// maxDeflateRatio bounds how far a PNG's deflate stream can expand.
const maxDeflateRatio = 1032

// Affine is the grid ITK gives a 2D image: LPS identity, in RAS+.
func Affine() volume.Affine {
	return volume.Affine{{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
}

// Read decodes a 2D image file.
func Read(path string) (*volume.Volume, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("read %s: is a folder", path)
	}
	v, err := decode(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	v.Source = path
	v.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return v, nil
}

// ReadBytes decodes an image held in memory; name is used in messages.
func ReadBytes(name string, data []byte) (*volume.Volume, error) {
	v, err := decode(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	v.Name = name
	return v, nil
}

// DecodeConfig checks the header and size claim without decoding the pixels.
func checkConfig(r io.ReadSeeker, size int64) (image.Config, string, error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return cfg, "", errors.New("not a PNG, JPEG, BMP or TIFF image")
		}
		return cfg, format, fmt.Errorf("%s header: %w", format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, format, fmt.Errorf("%s claims %dx%d pixels", format, cfg.Width, cfg.Height)
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	if px > MaxPixels {
		return cfg, format, fmt.Errorf("%s claims %dx%d pixels, more than the %d this tool opens", format, cfg.Width, cfg.Height, MaxPixels)
	}
	// A compressed PNG/TIFF row holds at least one bit per pixel before deflate;
	// anything claiming more than deflate can expand to is a lie (or a bomb).
	if (format == "png" || format == "tiff") && px/8 > size*maxDeflateRatio+1<<16 {
		return cfg, format, fmt.Errorf("%s claims %dx%d pixels, more than a %d-byte file can hold", format, cfg.Width, cfg.Height, size)
	}
	_, err = r.Seek(0, io.SeekStart)
	return cfg, format, err
}

func decode(r io.ReadSeeker, size int64) (*volume.Volume, error) {
	if size == 0 {
		return nil, errors.New("empty file")
	}
	_, format, err := checkConfig(r, size)
	if err != nil {
		return nil, err
	}
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	return FromImage(img, format)
}

// FromImage converts a decoded image: grey images (and colour images whose every
// pixel is grey) become one channel, others three (alpha is dropped).
func FromImage(img image.Image, format string) (*volume.Volume, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, errors.New("image has no pixels")
	}
	if int64(w)*int64(h) > MaxPixels {
		return nil, fmt.Errorf("%dx%d pixels is more than the %d this tool opens", w, h, MaxPixels)
	}
	v := &volume.Volume{Size: [3]int{w, h, 1}, Affine: Affine()}
	n := w * h
	deep := false // 16-bit samples
	switch m := img.(type) {
	case *image.Gray:
		v.Channels, v.DataType = 1, "uint8"
		v.Data = make([]float32, n)
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, p := range row {
				v.Data[x+w*y] = float32(p)
			}
		}
	case *image.Gray16:
		v.Channels, v.DataType, deep = 1, "uint16", true
		v.Data = make([]float32, n)
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+2*w]
			for x := 0; x < w; x++ {
				v.Data[x+w*y] = float32(uint16(row[2*x])<<8 | uint16(row[2*x+1]))
			}
		}
	case *image.RGBA64, *image.NRGBA64:
		deep = true
		v.DataType = "uint16"
		rgb := make([]float32, 3*n)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				o := 3 * (x + w*y)
				rgb[o], rgb[o+1], rgb[o+2] = float32(c.R), float32(c.G), float32(c.B)
			}
		}
		setRGB(v, rgb)
	default:
		// 8-bit colour: NRGBA keeps straight (non-premultiplied) colour for alpha images.
		var nr *image.NRGBA
		if m, ok := img.(*image.NRGBA); ok {
			nr = m
		} else {
			nr = image.NewNRGBA(image.Rect(0, 0, w, h))
			draw.Draw(nr, nr.Bounds(), img, b.Min, draw.Src)
		}
		v.DataType = "uint8"
		rgb := make([]float32, 3*n)
		for y := 0; y < h; y++ {
			row := nr.Pix[y*nr.Stride : y*nr.Stride+4*w]
			for x := 0; x < w; x++ {
				o := 3 * (x + w*y)
				rgb[o], rgb[o+1], rgb[o+2] = float32(row[4*x]), float32(row[4*x+1]), float32(row[4*x+2])
			}
		}
		setRGB(v, rgb)
	}
	switch {
	case v.Channels == 3:
		v.Modality = "RGB"
		if deep {
			v.Window = [2]float64{32767.5, 65535}
		} else {
			v.Window = [2]float64{127.5, 255}
		}
	case deep:
		v.Modality = "OT"
		v.Window = volume.PercentileWindow(v.Data, 1, 0.5, 99.5)
	default:
		v.Modality = "OT"
		v.Window = [2]float64{127.5, 255}
	}
	if format != "" {
		v.Notes = append(v.Notes, fmt.Sprintf("%s image: spacing 1 mm, origin 0 (as ITK reads it)", strings.ToUpper(format)))
	}
	return v, v.Validate()
}

// setRGB stores interleaved RGB, or one channel when every pixel is grey
// (R = G = B), as for grey images saved in a colour format.
func setRGB(v *volume.Volume, rgb []float32) {
	for i := 0; i < len(rgb); i += 3 {
		if rgb[i] != rgb[i+1] || rgb[i] != rgb[i+2] {
			v.Channels, v.Data = 3, rgb
			return
		}
	}
	grey := make([]float32, len(rgb)/3)
	for i := range grey {
		grey[i] = rgb[3*i]
	}
	v.Channels, v.Data = 1, grey
	v.Notes = append(v.Notes, "colour image with only grey pixels: read as grey")
}
