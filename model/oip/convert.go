package oip

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// littleEndian is whether this machine stores floats as the wire does (then
// conversions are copies).
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Float32ToBytes is f as little-endian FP32 bytes.
func Float32ToBytes(f []float32) []byte {
	b := make([]byte, 4*len(f))
	if littleEndian && len(f) > 0 {
		copy(b, unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f)))
		return b
	}
	for i, x := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// BytesToFloat32 decodes little-endian FP32 bytes.
func BytesToFloat32(b []byte) []float32 {
	f := make([]float32, len(b)/4)
	if littleEndian && len(f) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f)), b)
		return f
	}
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f
}

// HalfBytesToFloat32 decodes little-endian IEEE 754 binary16 bytes.
func HalfBytesToFloat32(b []byte) []float32 {
	f := make([]float32, len(b)/2)
	for i := range f {
		f[i] = HalfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return f
}

// HalfToFloat32 converts one binary16 value (exact).
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToHalf converts to binary16, rounding to nearest even (tests and fakes).
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b >> 23) & 0xff)
	mant := b & 0x7fffff
	switch {
	case exp == 0xff:
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15:
		return sign | 0x7c00
	case exp-127 >= -14:
		h := uint32(sign) | uint32(exp-127+15)<<10 | mant>>13
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
			h++
		}
		return uint16(h)
	case exp-127 >= -25:
		mant |= 0x800000
		shift := uint32(-14 - (exp - 127) + 13)
		m := mant >> shift
		rest := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || (rest == half && m&1 == 1) {
			m++
		}
		return sign | uint16(m)
	}
	return sign
}
