package metaimage

import (
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the LOCAL MetaImage reader: it must never
// panic, and whatever it accepts must be a valid volume. Seeds: small headers in
// each form the reader handles (types, byte order, compression, ASCII, 2D/4D,
// channels, oblique).
func FuzzRead(f *testing.F) {
	h := "ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
	ok8 := string([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte(h + "ElementDataFile = LOCAL\n" + ok8))
	f.Add([]byte(h + "CompressedData = True\nElementDataFile = LOCAL\n" + string(zl([]byte(ok8)))))
	f.Add([]byte(strings.Replace(h, "MET_UCHAR", "MET_SHORT", 1) + "BinaryDataByteOrderMSB = True\nTransformMatrix = 0 1 0 1 0 0 0 0 1\nOffset = 1 2 3\nElementSpacing = 0.5 0.5 2\nElementDataFile = LOCAL\n" + strings.Repeat("\x00\x07", 8)))
	f.Add([]byte(h + "BinaryData = False\nElementDataFile = LOCAL\n1 2 3 4 5 6 7 8\n"))
	f.Add([]byte("NDims = 2\nDimSize = 2 2\nElementNumberOfChannels = 3\nElementType = MET_UCHAR_ARRAY\nElementDataFile = LOCAL\n" + strings.Repeat("\x10\x20\x30", 4)))
	f.Add([]byte("NDims = 4\nDimSize = 1 1 1 2\nElementType = MET_DOUBLE\nElementDataFile = LOCAL\n" + strings.Repeat("\x00\x00\x00\x00\x00\x00\xf0\x3f", 2)))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadBytes("fuzz.mha", data)
		if err != nil {
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("accepted an invalid volume: %v", err)
		}
	})
}
