package raster

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"runtime"
	"strings"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// pngChunk appends one PNG chunk with its CRC.
func pngChunk(b *bytes.Buffer, typ string, data []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(data)))
	c := append([]byte(typ), data...)
	b.Write(c)
	binary.Write(b, binary.BigEndian, crc32.ChecksumIEEE(c))
}

// zeroPNG is a valid w x h PNG of the given bit depth and colour type (6 = RGBA)
// whose pixels are all zero: 16-bit RGBA compresses about 1000:1 (issue 14, 5c:
// 11585^2 in 1 MB). rows = false stops after IHDR.
func zeroPNG(w, h uint32, depth, ctype byte, rows bool) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = depth, ctype
	pngChunk(&b, "IHDR", ihdr)
	if !rows {
		return b.Bytes()
	}
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	row := make([]byte, 1+int(w)*int(depth)/8*map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}[ctype])
	for y := uint32(0); y < h; y++ {
		zw.Write(row)
	}
	zw.Close()
	pngChunk(&b, "IDAT", z.Bytes())
	pngChunk(&b, "IEND", nil)
	return b.Bytes()
}

func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A 16-bit RGBA PNG bomb: a successful load holds Go's decoded image and the
// volume, nothing else (it used to box a colour per pixel and keep an RGB copy
// of a grey image: 2.7x here); over the budget it is refused from the header.
func TestPNGBombMemory(t *testing.T) {
	const w, h = 1400, 1400
	data := zeroPNG(w, h, 16, 6, true)
	decoded, grey := uint64(8*w*h), uint64(4*w*h) // NRGBA64, and the all-zero image read as grey
	var v *volume.Volume
	var err error
	grew := allocDuring(func() { v, err = ReadBytes("zeros16.png", data) })
	if err != nil {
		t.Fatal(err)
	}
	if v.Channels != 1 || v.Size != [3]int{w, h, 1} {
		t.Fatalf("%v x%d", v.Size, v.Channels)
	}
	if limit := 1.15 * float64(decoded+grey); float64(grew) > limit {
		t.Errorf("a %d KB PNG: allocated %d MB, want <= %.0f MB (decoded image + volume)", len(data)>>10, grew>>20, limit/(1<<20))
	}
	v = nil

	defer volume.SetMemoryLimit(20e6, "test")()
	grew = allocDuring(func() { _, err = ReadBytes("zeros16.png", data) })
	if err == nil || !strings.Contains(err.Error(), "zeros16.png: this 1400x1400 png image needs 39 MB of memory; the limit is 20 MB") {
		t.Fatalf("over the budget: %v", err)
	}
	if grew > 2<<20 {
		t.Errorf("refused after allocating %d MB", grew>>20)
	}
}

// The file-size check counts the bits a PNG of that colour type stores per pixel.
func TestPNGClaimByColourType(t *testing.T) {
	for _, c := range []struct {
		name         string
		depth, ctype byte
		w            uint32
		want         string
	}{
		{"grey8 500", 8, 0, 500, "unexpected EOF"}, // 1 bit per pixel could fit: decoded, and fails
		{"rgba16 200", 16, 6, 200, "can hold"},     // 320 KB of rows from a 60-byte file
		{"rgb8 300", 8, 2, 300, "can hold"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadBytes(c.name+".png", zeroPNG(c.w, c.w, c.depth, c.ctype, false))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestAlphaNote(t *testing.T) {
	enc := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	opaque := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	seeThrough := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	rgba64 := image.NewRGBA64(image.Rect(0, 0, 4, 2))
	for i := 0; i < 8; i++ {
		c := color.NRGBA{uint8(30 * i), 200, 10, 255}
		opaque.SetNRGBA(i%4, i/4, c)
		c.A = 255 - uint8(i%2)*127
		seeThrough.SetNRGBA(i%4, i/4, c)
		rgba64.Set(i%4, i/4, c)
	}
	cases := []struct {
		name string
		img  image.Image
		note string // "" = no alpha note
	}{
		{"opaque", opaque, ""},
		{"transparent", seeThrough, "alpha channel dropped: 4 of 8 pixels (50.0%) are not opaque"},
		{"transparent 16-bit", rgba64, "alpha channel dropped: 4 of 8 pixels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := ReadBytes(c.name+".png", enc(c.img))
			if err != nil {
				t.Fatal(err)
			}
			notes := strings.Join(v.Notes, "; ")
			if c.note == "" && strings.Contains(notes, "alpha") || !strings.Contains(notes, c.note) {
				t.Errorf("notes %q, want %q", notes, c.note)
			}
			// Straight colour of pixel 3 (alpha 128): red 90, green 200 (at 8 or 16 bits).
			scale := float32(1)
			if v.DataType == "uint16" {
				scale = 257
			}
			if r, g := v.At(3, 0, 0, 0)/scale, v.At(3, 0, 0, 1)/scale; r < 89.5 || r > 90.5 || g < 199.5 || g > 200.5 {
				t.Errorf("pixel 3: %v %v, want 90 200", r, g)
			}
		})
	}
}

// Premultiplied and sub-images read as their straight colours.
func TestFromImageTypes(t *testing.T) {
	m := image.NewRGBA(image.Rect(0, 0, 3, 3))
	m.SetRGBA(2, 2, color.RGBA{50, 25, 0, 128}) // premultiplied: straight (99, 49, 0)
	sub := m.SubImage(image.Rect(1, 1, 3, 3))
	v, err := FromImage(sub, "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Size != [3]int{2, 2, 1} || v.At(1, 1, 0, 0) != 99 || v.At(1, 1, 0, 1) != 49 {
		t.Errorf("%v: %v", v.Size, v.Data)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.Gray{10}, color.RGBA{1, 2, 3, 255}})
	pal.SetColorIndex(1, 0, 1)
	if v, err = FromImage(pal, ""); err != nil || v.Channels != 3 || v.At(1, 0, 0, 2) != 3 || v.At(0, 0, 0, 0) != 10 {
		t.Errorf("paletted: %v %v", err, v)
	}
}

// Headers that name far more than the file holds are refused before the decoder
// allocates: a TIFF whose IFD offset points 4 GB away (found by FuzzReadBytes: read
// through image.DecodeConfig's buffered reader it allocated up to that offset,
// ~1 s and gigabytes for 8 bytes), a BMP and a JPEG claiming 8192^2 pixels.
func TestHeaderBombs(t *testing.T) {
	tiffFar := []byte("II*\x00\x00\x00\x00\xf0")
	bmpHdr := make([]byte, 54)
	copy(bmpHdr, "BM")
	binary.LittleEndian.PutUint32(bmpHdr[10:], 54)
	binary.LittleEndian.PutUint32(bmpHdr[14:], 40)
	binary.LittleEndian.PutUint32(bmpHdr[18:], 8192)
	binary.LittleEndian.PutUint32(bmpHdr[22:], 8192)
	binary.LittleEndian.PutUint16(bmpHdr[26:], 1)
	binary.LittleEndian.PutUint16(bmpHdr[28:], 24)
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	jpg := jb.Bytes()
	sof := bytes.Index(jpg, []byte{0xff, 0xc0})
	binary.BigEndian.PutUint16(jpg[sof+5:], 8192)
	binary.BigEndian.PutUint16(jpg[sof+7:], 8192)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"tiff far offset", tiffFar, "tiff header"},
		{"bmp 8192", bmpHdr, "more than a 54-byte file can hold"},
		{"jpeg 8192", jpg, "can hold"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			grew := allocDuring(func() { _, err = ReadBytes(c.name, c.data) })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
			if grew > 1<<20 {
				t.Errorf("allocated %d KB for a %d-byte file", grew>>10, len(c.data))
			}
		})
	}
}
