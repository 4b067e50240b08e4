package nrrd

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the attached-NRRD reader: it must never
// panic, and whatever it accepts must be a valid volume. Seeds: small files in
// each encoding, type, space and axis layout the reader handles.
func FuzzRead(f *testing.F) {
	ok8 := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, enc := range []string{"raw", "gzip", "bzip2", "ascii", "hex"} {
		h := fmt.Sprintf(tinyHdr, enc)
		switch enc {
		case "raw":
			f.Add(append([]byte(h), ok8...))
		case "gzip":
			f.Add(append([]byte(h), gz(ok8)...))
		case "bzip2":
			// "BZh9" + an empty stream's end marker: a valid, empty bzip2 stream
			f.Add(append([]byte(h), 0x42, 0x5a, 0x68, 0x39, 0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 0, 0, 0, 0))
		case "ascii":
			f.Add([]byte(h + "1 2 3 4 5 6 7 8\n"))
		case "hex":
			f.Add([]byte(h + "0102030405060708\n"))
		}
	}
	f.Add([]byte("NRRD0004\ntype: short\ndimension: 4\nsizes: 3 2 2 1\nendian: big\nspace: LPS\nkinds: RGB-color domain domain domain\n" +
		"space directions: none (1,0,0) (0,1,0) (0,0,1)\nspace origin: (1,2,3)\nencoding: raw\n\n" + strings.Repeat("\x00\x01", 12)))
	f.Add([]byte("NRRD0004\ntype: float\ndimension: 4\nsizes: 2 2 1 2\nspace: RAS\nkinds: domain domain domain list\n" +
		"space directions: (1,0,0) (0,1,0) (0,0,1) none\nencoding: raw\nbyte skip: 2\n\nxx" + strings.Repeat("\x00\x00\x80\x3f", 8)))
	f.Add([]byte("NRRD0005\ntype: uint16\ndimension: 2\nsizes: 2 2\nspace dimension: 2\nspace directions: (0.8,0.6) (-0.6,0.8)\nline skip: 1\nencoding: raw\nkey:=value\n\n\n\x01\x00\x02\x00\x03\x00\x04\x00"))
	f.Add([]byte("NRRD0004\ntype: double\ndimension: 3\nsizes: 1 1 1\nspacings: 1 nan 2\naxis mins: 0 0 0\nencoding: raw\n\n\x00\x00\x00\x00\x00\x00\xf0\x3f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadBytes("fuzz.nrrd", data)
		if err != nil {
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("accepted an invalid volume: %v", err)
		}
	})
}
