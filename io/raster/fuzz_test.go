package raster

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// FuzzReadBytes feeds arbitrary bytes to the PNG/JPEG/BMP/TIFF path: it must never
// panic, and whatever it accepts must be a valid volume. Seeds: small images of
// each format and colour type built here, and the bomb headers of issue 14.
func FuzzReadBytes(f *testing.F) {
	grey := image.NewGray(image.Rect(0, 0, 5, 3))
	rgba := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	deep := image.NewNRGBA64(image.Rect(0, 0, 3, 2))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(17 * i)
	}
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(31 * i)
	}
	for i := range deep.Pix {
		deep.Pix[i] = uint8(7 * i)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 3, 3), color.Palette{color.Black, color.RGBA{200, 10, 10, 255}})
	pal.SetColorIndex(1, 1, 1)
	var b bytes.Buffer
	for _, img := range []image.Image{grey, rgba, deep, pal} {
		b.Reset()
		png.Encode(&b, img)
		f.Add(bytes.Clone(b.Bytes()))
		b.Reset()
		tiff.Encode(&b, img, &tiff.Options{Compression: tiff.Deflate})
		f.Add(bytes.Clone(b.Bytes()))
	}
	b.Reset()
	jpeg.Encode(&b, rgba, nil)
	f.Add(bytes.Clone(b.Bytes()))
	b.Reset()
	bmp.Encode(&b, rgba)
	f.Add(bytes.Clone(b.Bytes()))
	f.Add(zeroPNG(11585, 11585, 16, 6, false)) // the 1 MB bomb's header, without its rows
	f.Add(zeroPNG(64, 64, 16, 6, true))
	f.Add(pngBomb(100000, 100000))
	f.Add([]byte("II*\x00\x00\x00\x00\xf0")) // an IFD 4 GB away (see TestHeaderBombs)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadBytes("fuzz.img", data)
		if err != nil {
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("accepted an invalid volume: %v", err)
		}
	})
}
