package nifti

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Label maps are tens of millions of uint16s; these two loops are most of the
// work of saving one besides deflate, so they read four labels per 64-bit word.

// u16bytes views a []uint16 as its little-endian bytes (all supported targets are
// little endian; a big-endian build takes the portable path via isLittle).
func u16bytes(s []uint16) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 2*len(s))
}

var isLittle = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// fitsUint8 reports whether every label is <= 255, scanning pieces in parallel
// (it reads the whole map before anything can be written).
func fitsUint8(s []uint16) bool {
	const piece = 1 << 22
	if len(s) <= piece {
		return fitsUint8Serial(s)
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	var bad atomic.Bool
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !bad.Load() {
				start := int(next.Add(piece)) - piece
				if start >= len(s) {
					return
				}
				if !fitsUint8Serial(s[start:min(len(s), start+piece)]) {
					bad.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return !bad.Load()
}

func fitsUint8Serial(s []uint16) bool {
	if !isLittle {
		for _, l := range s {
			if l > 255 {
				return false
			}
		}
		return true
	}
	b := u16bytes(s)
	var acc uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		acc |= binary.LittleEndian.Uint64(b[i:]) | binary.LittleEndian.Uint64(b[i+8:]) |
			binary.LittleEndian.Uint64(b[i+16:]) | binary.LittleEndian.Uint64(b[i+24:])
	}
	if acc&0xff00ff00ff00ff00 != 0 {
		return false
	}
	for _, l := range s[i/2:] {
		if l > 255 {
			return false
		}
	}
	return true
}

// narrow stores the low byte of each label (all known to be <= 255).
func narrow(dst []byte, src []uint16) {
	dst = dst[:len(src)]
	i := 0
	if isLittle {
		b := u16bytes(src)
		for ; i+4 <= len(src); i += 4 {
			x := binary.LittleEndian.Uint64(b[2*i:])
			binary.LittleEndian.PutUint32(dst[i:], uint32(x&0xff)|uint32(x>>8&0xff00)|uint32(x>>16&0xff0000)|uint32(x>>24&0xff000000))
		}
	}
	for ; i < len(src); i++ {
		dst[i] = byte(src[i])
	}
}
