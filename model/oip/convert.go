package oip

import (
	"encoding/binary"
	"github.com/medsa/medsa/model/internal/f16"
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
		f[i] = f16.ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return f
}
