package dicom

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A decoder for lossless JPEG (ITU T.81 process 14, Huffman, all predictors 1..7,
// point transform, restart intervals, interleaved components with 1x1 sampling):
// DICOM's transfer syntaxes 1.2.840.10008.1.2.4.57 and .70. Go's image/jpeg and
// suyashkumar/dicom decode only baseline JPEG.

type llHuff struct {
	fast    [1 << 9]uint16 // lookahead: (len << 8) | symbol, 0 = slow path
	maxcode [18]int32
	valptr  [17]int32
	mincode [17]int32
	vals    []byte
	ok      bool
}

func (h *llHuff) build(counts [16]byte, vals []byte) error {
	*h = llHuff{vals: vals, ok: true}
	code := int32(0)
	k := int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		if code+n > 1<<l { // checked before the fast table is filled: its codes would overrun it
			return errors.New("invalid Huffman table (over-subscribed)")
		}
		h.valptr[l] = k
		h.mincode[l] = code
		if n == 0 {
			h.maxcode[l] = -1
		} else {
			h.maxcode[l] = code + n - 1
			if l <= 9 {
				for c := int32(0); c < n; c++ {
					sym := vals[k+c]
					lo := (code + c) << (9 - l)
					hi := lo + (1 << (9 - l))
					for x := lo; x < hi; x++ {
						h.fast[x] = uint16(l)<<8 | uint16(sym)
					}
				}
			}
		}
		k += n
		code = (code + n) << 1
		if code > 1<<(l+1) {
			return errors.New("invalid Huffman table (over-subscribed)")
		}
	}
	h.maxcode[17] = 1 << 30
	return nil
}

type bitReader struct {
	data   []byte
	pos    int
	acc    uint64
	n      uint
	marker bool // hit a marker: feed zeros
	fake   int  // zero bytes fed after a marker or the end of the data
}

// overrun reports whether decoding used bits that the data does not hold: the stream
// was cut short (a truncated fragment) or is corrupt. An encoder pads the last byte,
// so a whole stream never needs a fed zero.
func (b *bitReader) overrun() bool { return b.fake*8 > int(b.n) }

func (b *bitReader) fill() {
	for b.n <= 56 {
		var c byte
		if !b.marker && b.pos < len(b.data) {
			c = b.data[b.pos]
			if c == 0xFF {
				if b.pos+1 < len(b.data) && b.data[b.pos+1] == 0x00 {
					b.pos += 2
				} else {
					b.marker = true
					c = 0
					b.fake++
				}
			} else {
				b.pos++
			}
		} else {
			b.fake++
		}
		b.acc |= uint64(c) << (56 - b.n)
		b.n += 8
	}
}

func (b *bitReader) peek(n uint) uint32 {
	if b.n < n {
		b.fill()
	}
	return uint32(b.acc >> (64 - n))
}

func (b *bitReader) skip(n uint) { b.acc <<= n; b.n -= n }

func (b *bitReader) bits(n uint) int32 {
	if n == 0 {
		return 0
	}
	v := int32(b.peek(n))
	b.skip(n)
	return v
}

func (b *bitReader) decode(h *llHuff) (int, error) {
	if b.n < 16 {
		b.fill()
	}
	if f := h.fast[b.acc>>(64-9)]; f != 0 {
		b.skip(uint(f >> 8))
		return int(f & 0xFF), nil
	}
	code := int32(0)
	for l := 1; l <= 16; l++ {
		code = code<<1 | int32(b.acc>>63)
		b.skip(1)
		if code <= h.maxcode[l] {
			return int(h.vals[h.valptr[l]+code-h.mincode[l]]), nil
		}
	}
	return 0, errors.New("bad Huffman code")
}

// restart skips to after the next RSTn marker.
func (b *bitReader) restart() error {
	if b.overrun() {
		return errors.New("restart interval ends before its data (truncated or corrupt stream)")
	}
	// Discard buffered bits; find the marker in the byte stream.
	b.acc, b.n, b.marker, b.fake = 0, 0, false, 0
	for b.pos+1 < len(b.data) {
		if b.data[b.pos] == 0xFF && b.data[b.pos+1] >= 0xD0 && b.data[b.pos+1] <= 0xD7 {
			b.pos += 2
			return nil
		}
		b.pos++
	}
	return errors.New("restart marker missing")
}

// llImage is a decoded lossless JPEG: samples interleaved per pixel.
type llImage struct {
	w, h, comps, precision int
	pix                    []uint16
}

// decodeJPEGLossless decodes one frame. maxPixels bounds the allocation.
func decodeJPEGLossless(data []byte, maxPixels int) (*llImage, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, errors.New("lossless JPEG: no SOI marker")
	}
	var tables [4]llHuff
	var img *llImage
	var compIDs []byte
	restartInterval := 0
	pos := 2
	for pos+4 <= len(data) {
		if data[pos] != 0xFF {
			pos++
			continue
		}
		m := data[pos+1]
		if m == 0xFF || m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 {
			pos++
			continue
		}
		if m == 0xD9 {
			break
		}
		seglen := int(binary.BigEndian.Uint16(data[pos+2:]))
		if seglen < 2 || pos+2+seglen > len(data) {
			return nil, fmt.Errorf("lossless JPEG: marker %02X segment length %d past the data", m, seglen)
		}
		seg := data[pos+4 : pos+2+seglen]
		pos += 2 + seglen
		switch m {
		case 0xC3, 0xC7:
			if len(seg) < 6 {
				return nil, errors.New("lossless JPEG: short SOF")
			}
			p, hgt, wid, nf := int(seg[0]), int(binary.BigEndian.Uint16(seg[1:])), int(binary.BigEndian.Uint16(seg[3:])), int(seg[5])
			if p < 2 || p > 16 || nf < 1 || nf > 4 || len(seg) < 6+3*nf || hgt == 0 || wid == 0 {
				return nil, fmt.Errorf("lossless JPEG: bad frame header (precision %d, %dx%d, %d components)", p, wid, hgt, nf)
			}
			if wid*hgt*nf > maxPixels {
				return nil, fmt.Errorf("lossless JPEG: %dx%dx%d samples exceed what the header allows (%d)", wid, hgt, nf, maxPixels)
			}
			for c := 0; c < nf; c++ {
				if seg[6+3*c+1] != 0x11 {
					return nil, errors.New("lossless JPEG: subsampled components are not supported")
				}
				compIDs = append(compIDs, seg[6+3*c])
			}
			img = &llImage{w: wid, h: hgt, comps: nf, precision: p, pix: make([]uint16, wid*hgt*nf)}
		case 0xC0, 0xC1, 0xC2:
			return nil, errors.New("lossless JPEG: frame is lossy DCT JPEG, not process 14")
		case 0xC4:
			for len(seg) > 0 {
				if len(seg) < 17 {
					return nil, errors.New("lossless JPEG: short Huffman table")
				}
				th := seg[0] & 0x0F
				if th > 3 {
					return nil, errors.New("lossless JPEG: bad Huffman table id")
				}
				var counts [16]byte
				copy(counts[:], seg[1:17])
				total := 0
				for _, c := range counts {
					total += int(c)
				}
				if len(seg) < 17+total || total > 256 {
					return nil, errors.New("lossless JPEG: short Huffman table values")
				}
				vals := append([]byte(nil), seg[17:17+total]...)
				if err := tables[th].build(counts, vals); err != nil {
					return nil, fmt.Errorf("lossless JPEG: %w", err)
				}
				seg = seg[17+total:]
			}
		case 0xDD:
			if len(seg) >= 2 {
				restartInterval = int(binary.BigEndian.Uint16(seg))
			}
		case 0xDA:
			if img == nil {
				return nil, errors.New("lossless JPEG: scan before frame header")
			}
			ns := int(seg[0])
			if ns != img.comps || len(seg) < 1+2*ns+3 {
				return nil, fmt.Errorf("lossless JPEG: scan with %d of %d components is not supported", ns, img.comps)
			}
			tbl := make([]*llHuff, ns)
			for c := 0; c < ns; c++ {
				td := seg[1+2*c+1] >> 4
				if td > 3 || !tables[td].ok {
					return nil, errors.New("lossless JPEG: scan uses an undefined Huffman table")
				}
				tbl[c] = &tables[td]
			}
			pred := int(seg[1+2*ns])
			pt := uint(seg[1+2*ns+2] & 0x0F)
			if pred < 1 || pred > 7 {
				return nil, fmt.Errorf("lossless JPEG: predictor %d", pred)
			}
			end, err := img.scan(data[pos:], tbl, pred, pt, restartInterval)
			if err != nil {
				return nil, err
			}
			pos += end
			return img, nil
		}
	}
	return nil, errors.New("lossless JPEG: no scan found")
}

func (img *llImage) scan(data []byte, tbl []*llHuff, pred int, pt uint, ri int) (int, error) {
	br := &bitReader{data: data}
	w, h, nc := img.w, img.h, img.comps
	mask := int32(1<<img.precision - 1)
	initial := int32(1) << (img.precision - int(pt) - 1)
	pix := img.pix
	count := 0
	reset := true // the row in progress follows the image start or a restart
	first := true // the next pixel is the first after the start or a restart
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if ri > 0 && count > 0 && count%ri == 0 {
				if err := br.restart(); err != nil {
					return 0, fmt.Errorf("lossless JPEG: %w", err)
				}
				reset, first = true, true
			}
			count++
			for c := 0; c < nc; c++ {
				s, err := br.decode(tbl[c])
				if err != nil {
					return 0, fmt.Errorf("lossless JPEG: row %d col %d: %w", y, x, err)
				}
				var diff int32
				switch {
				case s == 16:
					diff = 32768
				case s > 16:
					return 0, fmt.Errorf("lossless JPEG: difference category %d", s)
				case s > 0:
					diff = br.bits(uint(s))
					if diff < 1<<(s-1) {
						diff += -1<<s + 1
					}
				}
				i := (y*w+x)*nc + c
				var p int32
				switch {
				case first:
					p = initial
				case reset || y == 0:
					p = int32(pix[i-nc])
				case x == 0:
					p = int32(pix[i-w*nc])
				default:
					ra, rb, rc := int32(pix[i-nc]), int32(pix[i-w*nc]), int32(pix[i-w*nc-nc])
					switch pred {
					case 1:
						p = ra
					case 2:
						p = rb
					case 3:
						p = rc
					case 4:
						p = ra + rb - rc
					case 5:
						p = ra + ((rb - rc) >> 1)
					case 6:
						p = rb + ((ra - rc) >> 1)
					case 7:
						p = (ra + rb) >> 1
					}
				}
				pix[i] = uint16((p + diff) & mask)
			}
			first = false
			if reset && x == w-1 {
				reset = false
			}
		}
	}
	if br.overrun() {
		return 0, fmt.Errorf("lossless JPEG: the compressed data ends before the image does (%dx%d): truncated fragment?", w, h)
	}
	if pt > 0 {
		for i := range pix {
			pix[i] <<= pt
		}
	}
	return br.pos, nil
}
