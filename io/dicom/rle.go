package dicom

import (
	"encoding/binary"
	"fmt"
)

// decodeRLE decodes one RLE Lossless frame (DICOM PS3.5 annex G) into native
// little-endian bytes, samples interleaved per pixel (planar configuration 0).
// Segments come most significant byte first, one per byte of each sample.
func decodeRLE(data []byte, rows, cols, spp, bytesPerSample int) ([]byte, error) {
	if len(data) < 64 {
		return nil, fmt.Errorf("RLE: frame of %d bytes has no 64-byte header", len(data))
	}
	nseg := int(binary.LittleEndian.Uint32(data))
	want := spp * bytesPerSample
	if nseg != want {
		return nil, fmt.Errorf("RLE: %d segments, want %d (samples %d x bytes %d)", nseg, want, spp, bytesPerSample)
	}
	npx := rows * cols
	out := make([]byte, npx*want)
	seg := make([]byte, npx)
	for s := 0; s < nseg; s++ {
		start := int(binary.LittleEndian.Uint32(data[4+4*s:]))
		end := len(data)
		if s+1 < nseg {
			end = int(binary.LittleEndian.Uint32(data[4+4*(s+1):]))
		}
		if start < 64 || end > len(data) || start > end {
			return nil, fmt.Errorf("RLE: segment %d spans bytes %d..%d of %d", s+1, start, end, len(data))
		}
		n := unpackBits(data[start:end], seg)
		if n < npx {
			return nil, fmt.Errorf("RLE: segment %d decodes to %d bytes, want %d", s+1, n, npx)
		}
		sample, byteIdx := s/bytesPerSample, s%bytesPerSample
		// Little-endian output: the most significant segment goes last in each sample.
		off := sample*bytesPerSample + (bytesPerSample - 1 - byteIdx)
		for p := 0; p < npx; p++ {
			out[p*want+off] = seg[p]
		}
	}
	return out, nil
}

// unpackBits decodes a PackBits stream into dst, returning the bytes written
// (stopping when dst is full).
func unpackBits(src, dst []byte) int {
	o, i := 0, 0
	for i < len(src) && o < len(dst) {
		n := int(int8(src[i]))
		i++
		switch {
		case n >= 0:
			c := n + 1
			if i+c > len(src) {
				c = len(src) - i
			}
			o += copy(dst[o:], src[i:i+c])
			i += c
		case n > -128:
			if i >= len(src) {
				return o
			}
			b := src[i]
			i++
			for c := 1 - n; c > 0 && o < len(dst); c-- {
				dst[o] = b
				o++
			}
		}
	}
	return o
}
