package nifti

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// A deflate encoder for label maps. Masks are long runs of one value, so each run
// is coded as a literal followed by distance-1 matches, with deflate's fixed
// Huffman codes: no hashing, no tables to build, eight voxels compared per step.
// That is several times faster than a general encoder at level 1, with similar
// output size on masks. Chunks it does not shrink well fall back to flate.

type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (b *bitWriter) put(v uint64, n uint) {
	b.acc |= v << b.n
	b.n += n
	if b.n >= 32 {
		b.out = binary.LittleEndian.AppendUint32(b.out, uint32(b.acc))
		b.acc >>= 32
		b.n -= 32
	}
}

// align flushes the pending bits, padding to a byte boundary.
func (b *bitWriter) align() {
	for b.n > 0 {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
		b.n = b.n - min(b.n, 8)
	}
	b.acc = 0
}

type code struct {
	bits uint64
	n    uint
}

var (
	fixedLit [286]code // fixed Huffman code of each literal/length symbol, bit-reversed
	matchD1  [259]code // length L at distance 1: length code + extra bits + distance code 0
)

func init() {
	rev := func(c uint64, n uint) uint64 { return uint64(bits.Reverse16(uint16(c)) >> (16 - n)) }
	for s := 0; s < 286; s++ {
		switch {
		case s < 144:
			fixedLit[s] = code{rev(uint64(0x30+s), 8), 8}
		case s < 256:
			fixedLit[s] = code{rev(uint64(0x190+s-144), 9), 9}
		case s < 280:
			fixedLit[s] = code{rev(uint64(s-256), 7), 7}
		default:
			fixedLit[s] = code{rev(uint64(0xc0+s-280), 8), 8}
		}
	}
	// Length symbols 257..285: base lengths and extra bits (RFC 1951, 3.2.5).
	base := []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	extra := []uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	for l := 3; l <= 258; l++ {
		k := len(base) - 1
		for base[k] > l {
			k--
		}
		lc := fixedLit[257+k]
		c := code{lc.bits | uint64(l-base[k])<<lc.n, lc.n + extra[k]}
		// distance 1 is distance code 0: five zero bits
		matchD1[l] = code{c.bits, c.n + 5}
	}
}

// runEncoder writes one fixed-Huffman deflate block of run-coded bytes and keeps
// the CRC-32 of the bytes it encodes.
type runEncoder struct {
	b     bitWriter
	crc   uint32
	n     int // bytes encoded
	stage [32 << 10]byte
	sn    int // bytes staged for the CRC
}

var crcTable = crc32.MakeTable(crc32.IEEE)

// repeated[v] is 4 KiB of byte v, to stage long runs with copy.
var repeated = func() *[256][4096]byte {
	var r [256][4096]byte
	for v := range r {
		for i := range r[v] {
			r[v][i] = byte(v)
		}
	}
	return &r
}()

func (e *runEncoder) start(out []byte, final bool) {
	e.b = bitWriter{out: out}
	e.crc, e.n, e.sn = 0, 0, 0
	hdr := uint64(1) << 1 // BTYPE = 01 (fixed)
	if final {
		hdr |= 1
	}
	e.b.put(hdr, 3)
}

// run codes byte v repeated count (>= 1) times: a literal, then distance-1 matches.
func (e *runEncoder) run(v byte, count int) {
	e.n += count
	// Stage the bytes in a cache-resident buffer and CRC it 32 KiB at a time:
	// one fast (carry-less multiply) CRC call instead of one per run.
	for c := count; c > 0; {
		k := min(c, len(e.stage)-e.sn)
		dst := e.stage[e.sn : e.sn+k]
		if k < 16 {
			for i := range dst {
				dst[i] = v
			}
		} else if v == 0 {
			clear(dst)
		} else {
			for o := 0; o < k; o += 4096 {
				copy(dst[o:], repeated[v][:min(4096, k-o)])
			}
		}
		e.sn += k
		c -= k
		if e.sn == len(e.stage) {
			e.crc = crc32.Update(e.crc, crcTable, e.stage[:])
			e.sn = 0
		}
	}
	lit := fixedLit[v]
	e.b.put(lit.bits, lit.n)
	r := count - 1
	for r >= 258+3 {
		m := matchD1[258]
		e.b.put(m.bits, m.n)
		r -= 258
	}
	switch {
	case r > 258: // 259 or 260: split so both parts are >= 3
		m := matchD1[r-3]
		e.b.put(m.bits, m.n)
		m = matchD1[3]
		e.b.put(m.bits, m.n)
	case r >= 3:
		m := matchD1[r]
		e.b.put(m.bits, m.n)
	default:
		for ; r > 0; r-- {
			e.b.put(lit.bits, lit.n)
		}
	}
}

// bytes run-codes src.
func (e *runEncoder) bytes(src []byte) {
	n := len(src)
	for i := 0; i < n; {
		v := src[i]
		j := i + 1
		w := uint64(v) * 0x0101010101010101
		for j+8 <= n && binary.LittleEndian.Uint64(src[j:]) == w {
			j += 8
		}
		for j < n && src[j] == v {
			j++
		}
		e.run(v, j-i)
		i = j
	}
}

// labels run-codes src as bytes, reading the uint16 labels directly (four per
// 64-bit compare) so the byte stream is never materialised. It reports false,
// having stopped, at the first label above 255.
func (e *runEncoder) labels(src []uint16) bool {
	n := len(src)
	var raw []byte
	if isLittle {
		raw = u16bytes(src)
	}
	for i := 0; i < n; {
		v := src[i]
		j := i + 1
		if raw != nil {
			w := uint64(v) * 0x0001000100010001
			for j+16 <= n {
				q := raw[2*j : 2*j+32]
				if (binary.LittleEndian.Uint64(q)^w)|(binary.LittleEndian.Uint64(q[8:])^w)|
					(binary.LittleEndian.Uint64(q[16:])^w)|(binary.LittleEndian.Uint64(q[24:])^w) != 0 {
					break
				}
				j += 16
			}
			for j+4 <= n && binary.LittleEndian.Uint64(raw[2*j:]) == w {
				j += 4
			}
		}
		for j < n && src[j] == v {
			j++
		}
		if v > 255 {
			return false
		}
		e.run(byte(v), j-i)
		i = j
	}
	return true
}

// finish ends the block; a non-final block is followed by a sync flush (an empty
// stored block) so the next chunk starts byte-aligned.
func (e *runEncoder) finish(final bool) []byte {
	e.crc = crc32.Update(e.crc, crcTable, e.stage[:e.sn])
	e.sn = 0
	eob := fixedLit[256]
	e.b.put(eob.bits, eob.n)
	if !final {
		e.b.put(0, 3)
		e.b.align()
		e.b.out = append(e.b.out, 0, 0, 0xff, 0xff)
		return e.b.out
	}
	e.b.align()
	return e.b.out
}

// crcShift is the GF(2) operator that appends n zero bytes to a CRC-32 register;
// CRC(A+B) = shift_len(B)(CRC(A)) xor CRC(B) (zlib's crc32_combine).
type crcShift [32]uint32

func (m *crcShift) apply(vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= m[i]
		}
	}
	return sum
}

// then returns the operator "m, then a".
func (m *crcShift) then(a *crcShift) crcShift {
	var r crcShift
	for n := range r {
		r[n] = a.apply(m[n])
	}
	return r
}

func newCRCShift(n int64) crcShift {
	var bit crcShift // one zero bit
	bit[0] = 0xedb88320
	for k := 1; k < 32; k++ {
		bit[k] = 1 << (k - 1)
	}
	base := bit
	for k := 0; k < 3; k++ { // one zero byte
		base = base.then(&base)
	}
	var r crcShift // identity
	for k := range r {
		r[k] = 1 << k
	}
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			r = r.then(&base)
		}
		base = base.then(&base)
	}
	return r
}

// crc32Combine returns the CRC-32 of A+B from crc(A), crc(B) and len(B).
func crc32Combine(crc1, crc2 uint32, len2 int64) uint32 {
	op := newCRCShift(len2)
	return op.apply(crc1) ^ crc2
}
