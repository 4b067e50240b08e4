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
	_ "image/jpeg" // register decoders
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	_ "golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

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
	// Stat before opening: opening a named pipe would block until a writer comes.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("read %s: is a folder", path)
	}
	if !st.Mode().IsRegular() {
		what := "not a regular file"
		if st.Mode()&os.ModeNamedPipe != 0 {
			what = "a named pipe (FIFO), not a regular file"
		}
		return nil, fmt.Errorf("read %s: %s", path, what)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
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

// DecodedBytes estimates the memory Go's decoder holds for an image of cfg (its
// pixel buffer), so a caller can check the memory budget before decoding.
func DecodedBytes(cfg image.Config) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	switch cfg.ColorModel {
	case color.GrayModel, color.AlphaModel:
		return px
	case color.Gray16Model, color.Alpha16Model:
		return 2 * px
	case color.YCbCrModel: // JPEG: 4:4:4 at most
		return 3 * px
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel:
		return 4 * px
	case color.RGBA64Model, color.NRGBA64Model:
		return 8 * px
	}
	if _, ok := cfg.ColorModel.(color.Palette); ok {
		return px
	}
	return 8 * px
}

// pngMinBits is the fewest bits a PNG stores per pixel (before deflate) for each
// colour model Go's decoder reports: 1-bit grey and palettes, GA8, RGB8, GA16, RGB16.
func pngMinBits(m color.Model) int64 {
	switch m {
	case color.Gray16Model, color.NRGBAModel:
		return 16
	case color.RGBAModel:
		return 24
	case color.NRGBA64Model:
		return 32
	case color.RGBA64Model:
		return 48
	}
	return 1
}

// isGreyModel: the decoder's image holds one channel, so the volume does too.
func isGreyModel(m color.Model) bool {
	return m == color.GrayModel || m == color.Gray16Model
}

// CheckConfig checks a decoded header's claim before any pixel is decoded: a sane
// size, no more pixels than a file of fileSize bytes can hold, and memory for
// Go's decoded image plus extra bytes per pixel (what the caller converts it into)
// within the budget (volume.CheckMemory).
func CheckConfig(cfg image.Config, format string, fileSize, extraPerPixel int64) error {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("%s claims %dx%d pixels", format, cfg.Width, cfg.Height)
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	if px > MaxPixels {
		return fmt.Errorf("%s claims %dx%d pixels, more than the %d this tool opens", format, cfg.Width, cfg.Height, MaxPixels)
	}
	// A compressed PNG/TIFF holds at least one bit per pixel (a PNG of a given
	// colour type more, and a filter byte per row) before deflate; anything claiming
	// more than deflate can expand to is a lie (or a bomb).
	raw := px / 8
	if format == "png" {
		raw = px*pngMinBits(cfg.ColorModel)/8 + int64(cfg.Height)
	}
	if (format == "png" || format == "tiff") && raw > fileSize*maxDeflateRatio+1<<16 {
		return fmt.Errorf("%s claims %dx%d pixels (%s before compression), more than a %d-byte file can hold", format, cfg.Width, cfg.Height, volume.FormatBytes(raw), fileSize)
	}
	// BMP rows are stored uncompressed (at least one bit a pixel); a JPEG codes each
	// 8x8 block of a component in at least one bit (a DC difference), so no JPEG
	// holds more than 64 pixels a bit: 1024 a byte leaves room for any real one.
	if format == "bmp" && px/8 > fileSize || format == "jpeg" && px > 1024*fileSize+1<<16 {
		return fmt.Errorf("%s claims %dx%d pixels, more than a %d-byte file can hold", format, cfg.Width, cfg.Height, fileSize)
	}
	return volume.CheckMemory(fmt.Sprintf("this %dx%d %s image", cfg.Width, cfg.Height, format), DecodedBytes(cfg)+px*extraPerPixel)
}

// isTIFF reports whether r starts with a TIFF byte-order mark (and rewinds it).
func isTIFF(r io.ReadSeeker) bool {
	var m [4]byte
	n, _ := io.ReadFull(r, m[:])
	r.Seek(0, io.SeekStart)
	return n == 4 && (string(m[:]) == "II*\x00" || string(m[:]) == "MM\x00*")
}

// decodeConfig is image.DecodeConfig, except that a TIFF is handed to its decoder
// as the io.ReaderAt it is: through image.DecodeConfig's buffered reader, the TIFF
// decoder buffers everything up to any offset a header names (a 160-byte file
// pointing at 4 GB allocated that much).
func decodeConfig(r io.ReadSeeker) (image.Config, string, error) {
	if isTIFF(r) {
		cfg, err := tiff.DecodeConfig(r)
		return cfg, "tiff", err
	}
	return image.DecodeConfig(r)
}

// checkConfig reads the header and checks its claim without decoding the pixels.
func checkConfig(r io.ReadSeeker, size int64) (image.Config, string, error) {
	cfg, format, err := decodeConfig(r)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return cfg, "", errors.New("not a PNG, JPEG, BMP or TIFF image")
		}
		return cfg, format, fmt.Errorf("%s header: %w", format, err)
	}
	// The volume: one float32 channel, or three for colour.
	out := int64(12)
	if isGreyModel(cfg.ColorModel) {
		out = 4
	}
	if err := CheckConfig(cfg, format, size, out); err != nil {
		return cfg, format, err
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
	var img image.Image
	if format == "tiff" {
		img, err = tiff.Decode(r) // as a ReaderAt (see decodeConfig)
	} else {
		img, _, err = image.Decode(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	return FromImage(img, format)
}

// FromImage converts a decoded image: grey images (and colour images whose every
// pixel is grey) become one channel, others three. Alpha is dropped, with a note
// when some pixel is not opaque; colours are kept straight (not premultiplied).
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
			o := m.PixOffset(b.Min.X, b.Min.Y+y)
			row := m.Pix[o : o+w]
			for x, p := range row {
				v.Data[x+w*y] = float32(p)
			}
		}
	case *image.Gray16:
		v.Channels, v.DataType, deep = 1, "uint16", true
		v.Data = make([]float32, n)
		for y := 0; y < h; y++ {
			o := m.PixOffset(b.Min.X, b.Min.Y+y)
			row := m.Pix[o : o+2*w]
			for x := 0; x < w; x++ {
				v.Data[x+w*y] = float32(uint16(row[2*x])<<8 | uint16(row[2*x+1]))
			}
		}
	default:
		at, opaque, d := pixels(img)
		deep = d
		v.DataType = "uint8"
		if deep {
			v.DataType = "uint16"
		}
		// One pass to learn whether the image is grey and opaque, then allocate
		// only the volume it needs (no RGB copy of a grey image).
		grey, transparent := true, 0
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r, g, bl, a := at(x, y)
				if r != g || r != bl {
					grey = false
				}
				if a != opaque {
					transparent++
				}
			}
		}
		if grey {
			v.Channels, v.Data = 1, make([]float32, n)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					r, _, _, _ := at(x, y)
					v.Data[x+w*y] = float32(r)
				}
			}
			v.Notes = append(v.Notes, "colour image with only grey pixels: read as grey")
		} else {
			v.Channels, v.Data = 3, make([]float32, 3*n)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					r, g, bl, _ := at(x, y)
					o := 3 * (x + w*y)
					v.Data[o], v.Data[o+1], v.Data[o+2] = float32(r), float32(g), float32(bl)
				}
			}
		}
		if transparent > 0 {
			v.Notes = append(v.Notes, fmt.Sprintf("alpha channel dropped: %d of %d pixels (%.1f%%) are not opaque; their colours are read as if opaque", transparent, n, 100*float64(transparent)/float64(n)))
		}
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

// pixels returns a reader of straight (non-premultiplied) colour at (x, y) from
// the image's origin, the value of an opaque alpha (255 or 65535) and whether the
// samples are 16-bit. The common decoder types read their buffers directly:
// img.At boxes a colour per pixel, which cost seconds and gigabytes on big images.
func pixels(img image.Image) (at func(x, y int) (r, g, b, a uint32), opaque uint32, deep bool) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.NRGBA:
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			p := m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y):]
			return uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
		}, 255, false
	case *image.RGBA:
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			p := m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y):]
			return unpremul(uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3]), 255)
		}, 255, false
	case *image.NRGBA64:
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			p := m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y):]
			return uint32(p[0])<<8 | uint32(p[1]), uint32(p[2])<<8 | uint32(p[3]), uint32(p[4])<<8 | uint32(p[5]), uint32(p[6])<<8 | uint32(p[7])
		}, 65535, true
	case *image.RGBA64:
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			p := m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y):]
			return unpremul(uint32(p[0])<<8|uint32(p[1]), uint32(p[2])<<8|uint32(p[3]), uint32(p[4])<<8|uint32(p[5]), uint32(p[6])<<8|uint32(p[7]), 65535)
		}, 65535, true
	case *image.Paletted:
		var pal [256][4]uint32
		for i, c := range m.Palette {
			nc := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[i] = [4]uint32{uint32(nc.R), uint32(nc.G), uint32(nc.B), uint32(nc.A)}
		}
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			c := pal[m.Pix[m.PixOffset(b.Min.X+x, b.Min.Y+y)]]
			return c[0], c[1], c[2], c[3]
		}, 255, false
	case *image.YCbCr:
		return func(x, y int) (uint32, uint32, uint32, uint32) {
			px, py := b.Min.X+x, b.Min.Y+y
			yy, ci := m.Y[m.YOffset(px, py)], m.COffset(px, py)
			r, g, bl := color.YCbCrToRGB(yy, m.Cb[ci], m.Cr[ci])
			return uint32(r), uint32(g), uint32(bl), 255
		}, 255, false
	}
	return func(x, y int) (uint32, uint32, uint32, uint32) {
		c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
		return uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A)
	}, 255, false
}

// unpremul undoes alpha premultiplication (as color.NRGBAModel does).
func unpremul(r, g, b, a, opaque uint32) (uint32, uint32, uint32, uint32) {
	switch a {
	case opaque:
		return r, g, b, a
	case 0:
		return 0, 0, 0, 0
	}
	return min(r*opaque/a, opaque), min(g*opaque/a, opaque), min(b*opaque/a, opaque), a
}
