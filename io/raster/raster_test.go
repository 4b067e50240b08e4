package raster

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	td "github.com/medsa/medsa/internal/testfiles"
)

// testdata returns the path of a fetched test image (see internal/testdata).
func testdata(t testing.TB, rel string) string {
	t.Helper()
	return td.Path(t, rel)
}

const (
	sk  = "python3-skimage/usr/lib/python3/dist-packages/skimage/data/"
	itk = "insighttoolkit5-examples/usr/share/doc/insighttoolkit5-examples/examples/Data/"
)

func TestReadRealImages(t *testing.T) {
	cases := []struct {
		file     string
		size     [2]int
		channels int
		dtype    string
		modality string
	}{
		{sk + "retina.jpg", [2]int{1411, 1411}, 3, "uint8", "RGB"},            // fundus photo, JPEG
		{sk + "camera.png", [2]int{512, 512}, 1, "uint8", "OT"},               // 8-bit grey PNG
		{sk + "astronaut.png", [2]int{512, 512}, 3, "uint8", "RGB"},           // RGB PNG
		{sk + "palette_color.png", [2]int{10, 10}, 3, "uint8", "RGB"},         // palette colour
		{sk + "palette_gray.png", [2]int{10, 10}, 1, "uint8", "OT"},           // palette of greys
		{sk + "chessboard_GRAY_U16.tif", [2]int{200, 200}, 1, "uint16", "OT"}, // 16-bit TIFF, little endian
		{sk + "chessboard_GRAY_U16B.tif", [2]int{200, 200}, 1, "uint16", "OT"},
		{sk + "microaneurysms.png", [2]int{102, 102}, 1, "uint8", "OT"},
		{itk + "VisibleWomanEyeSlice.png", [2]int{127, 162}, 3, "uint8", "RGB"},
		{itk + "BrainProtonDensitySlice.png", [2]int{181, 217}, 1, "uint8", "OT"},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			v, err := Read(testdata(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if v.Size != [3]int{c.size[0], c.size[1], 1} || v.Channels != c.channels {
				t.Errorf("size %v x%d, want %v x%d", v.Size, v.Channels, c.size, c.channels)
			}
			if v.DataType != c.dtype || v.Modality != c.modality {
				t.Errorf("datatype %s modality %s, want %s %s", v.DataType, v.Modality, c.dtype, c.modality)
			}
			if v.Affine != Affine() || v.Affine.Orientation() != "LPS" {
				t.Errorf("affine %v", v.Affine)
			}
			if v.Window[1] <= 0 {
				t.Errorf("window %v", v.Window)
			}
		})
	}
}

// Pixel values and layout: x -> i, y -> j, channels interleaved, 16-bit kept.
func TestPixelLayout(t *testing.T) {
	g := image.NewGray16(image.Rect(0, 0, 3, 2))
	g.SetGray16(2, 1, color.Gray16{Y: 40000})
	g.SetGray16(1, 0, color.Gray16{Y: 7})
	var b bytes.Buffer
	png.Encode(&b, g)
	v, err := ReadBytes("g16.png", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v.At(2, 1, 0, 0) != 40000 || v.At(1, 0, 0, 0) != 7 || v.DataType != "uint16" {
		t.Errorf("16-bit grey: %v %v %s", v.At(2, 1, 0, 0), v.At(1, 0, 0, 0), v.DataType)
	}
	// RGBA with transparency: colour kept straight (not premultiplied), alpha dropped.
	n := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	n.SetNRGBA(1, 1, color.NRGBA{200, 100, 50, 128})
	b.Reset()
	png.Encode(&b, n)
	v, err = ReadBytes("rgba.png", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v.Channels != 3 || v.At(1, 1, 0, 0) != 200 || v.At(1, 1, 0, 1) != 100 || v.At(1, 1, 0, 2) != 50 {
		t.Errorf("rgba: %d channels, %v", v.Channels, v.Data)
	}
	// BMP (no real BMP in the test data: re-encode a real photo).
	src, err := Read(testdata(t, sk+"astronaut.png"))
	if err != nil {
		t.Fatal(err)
	}
	rgba := image.NewRGBA(image.Rect(0, 0, src.Size[0], src.Size[1]))
	for y := 0; y < src.Size[1]; y++ {
		for x := 0; x < src.Size[0]; x++ {
			rgba.Set(x, y, color.RGBA{uint8(src.At(x, y, 0, 0)), uint8(src.At(x, y, 0, 1)), uint8(src.At(x, y, 0, 2)), 255})
		}
	}
	b.Reset()
	bmp.Encode(&b, rgba)
	v, err = ReadBytes("astronaut.bmp", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for i := range v.Data {
		if v.Data[i] != src.Data[i] {
			t.Fatalf("bmp value %d: %v want %v", i, v.Data[i], src.Data[i])
		}
	}
}

// pngBomb is a valid PNG signature and IHDR claiming w x h, then nothing.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 0 // 8-bit grey
	binary.Write(&b, binary.BigEndian, uint32(13))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestBadImages(t *testing.T) {
	real, err := os.ReadFile(testdata(t, sk+"camera.png"))
	if err != nil {
		t.Fatal(err)
	}
	jpg, err := os.ReadFile(testdata(t, sk+"retina.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"text", []byte("hello, not an image"), "not a PNG"},
		{"png bomb", pngBomb(100000, 100000), "more than"},
		{"png lying size", pngBomb(10000, 10000), "can hold"},
		{"truncated png", real[:len(real)/2], "png"},
		{"truncated jpeg", jpg[:len(jpg)/3], "jpeg"},
		{"header only", real[:40], "png"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadBytes(c.name+".img", c.data)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.name+".img") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q: want the name and %q", err, c.want)
			}
		})
	}
}

func BenchmarkReadFundusJPEG(b *testing.B) {
	p := testdata(b, sk+"retina.jpg")
	for b.Loop() {
		if _, err := Read(p); err != nil {
			b.Fatal(err)
		}
	}
}
