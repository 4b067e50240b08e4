package dicom

// JPEG-LS (lossless and near-lossless) through Debian's libcharls (CharLS 2). The
// frame header is read first and held to the DICOM header; only then is the scan
// decoded, into a buffer sized from the DICOM header.

/*
#cgo pkg-config: charls
#include <stdint.h>
#include <stdio.h>
#include <charls/charls.h>

// medsa_jls_decode decodes one JPEG-LS stream into out. It refuses a frame whose
// size, components or bit depth differ from want_* before decoding the scan.
// On success *bits and *ilv hold the sample precision and interleave mode.
static int medsa_jls_decode(const void *data, size_t len, uint32_t want_w, uint32_t want_h, int32_t want_c,
		int32_t max_bits, void *out, size_t out_len, int32_t *bits, int32_t *ilv, char *err, size_t errlen) {
	err[0] = 0;
	charls_jpegls_decoder *d = charls_jpegls_decoder_create();
	if (!d) { snprintf(err, errlen, "cannot create a decoder"); return 1; }
	int rc = 1;
	charls_jpegls_errc e = charls_jpegls_decoder_set_source_buffer(d, data, len);
	if (e == 0) e = charls_jpegls_decoder_read_header(d);
	if (e != 0) { snprintf(err, errlen, "header: %s", charls_get_error_message(e)); goto done; }
	charls_frame_info fi;
	e = charls_jpegls_decoder_get_frame_info(d, &fi);
	if (e != 0) { snprintf(err, errlen, "frame info: %s", charls_get_error_message(e)); goto done; }
	if (fi.width != want_w || fi.height != want_h || fi.component_count != want_c) {
		snprintf(err, errlen, "frame is %ux%ux%d, header says %ux%ux%d", fi.width, fi.height, fi.component_count, want_w, want_h, want_c);
		goto done;
	}
	if (fi.bits_per_sample < 2 || fi.bits_per_sample > max_bits) {
		snprintf(err, errlen, "%d bits per sample; the header allocates %d", fi.bits_per_sample, max_bits);
		goto done;
	}
	charls_interleave_mode im;
	e = charls_jpegls_decoder_get_interleave_mode(d, &im);
	if (e != 0) { snprintf(err, errlen, "interleave mode: %s", charls_get_error_message(e)); goto done; }
	size_t need = 0;
	e = charls_jpegls_decoder_get_destination_size(d, 0, &need);
	if (e != 0) { snprintf(err, errlen, "destination size: %s", charls_get_error_message(e)); goto done; }
	if (need != out_len) { snprintf(err, errlen, "decoded size %zu bytes, expected %zu", need, out_len); goto done; }
	e = charls_jpegls_decoder_decode_to_buffer(d, out, out_len, 0);
	if (e != 0) { snprintf(err, errlen, "%s", charls_get_error_message(e)); goto done; }
	*bits = fi.bits_per_sample;
	*ilv = (int32_t)im;
	rc = 0;
done:
	charls_jpegls_decoder_destroy(d);
	return rc;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// decodeJPEGLS decodes one JPEG-LS frame into interleaved raw samples (the stored
// bit patterns: signed data is sign-extended by the caller from BitsStored).
func decodeJPEGLS(b []byte, pf pixelFormat) ([]int64, error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, errors.New("JPEG-LS: no start-of-image marker")
	}
	// CharLS spins for seconds on a stream cut short of its end-of-image marker; a
	// truncated frame is refused here instead (trailing zero padding allowed).
	if !endsWithMarker(b, 0xD9) {
		return nil, fmt.Errorf("JPEG-LS stream of %d bytes has no end-of-image marker (truncated)", len(b))
	}
	if pf.alloc != 8 && pf.alloc != 16 {
		return nil, fmt.Errorf("JPEG-LS with %d bits allocated (want 8 or 16)", pf.alloc)
	}
	bps := 1
	maxBits := 8
	if pf.alloc == 16 {
		bps, maxBits = 2, 16
	}
	npx := pf.rows * pf.cols
	// Codestreams of 9-16 bits decode to 2 bytes a sample, 2-8 bits to 1; a 16-bit
	// DICOM frame may hold an 8-bit stream, so the size is asked twice at most.
	for _, w := range []int{bps, 1} {
		out := make([]byte, npx*pf.spp*w)
		var errBuf [256]C.char
		var bits, ilv C.int32_t
		mb := maxBits
		if w == 1 {
			mb = 8
		}
		rc := C.medsa_jls_decode(unsafe.Pointer(&b[0]), C.size_t(len(b)), C.uint32_t(pf.cols), C.uint32_t(pf.rows), C.int32_t(pf.spp),
			C.int32_t(mb), unsafe.Pointer(&out[0]), C.size_t(len(out)), &bits, &ilv, &errBuf[0], C.size_t(len(errBuf)))
		if rc != 0 {
			msg := C.GoString(&errBuf[0])
			if w != 1 && bps == 2 && isSizeMismatch(msg) {
				continue // an 8-bit stream in 16-bit pixels: retry with 1-byte samples
			}
			return nil, fmt.Errorf("JPEG-LS: %s", msg)
		}
		s := make([]int64, npx*pf.spp)
		planar := ilv == C.CHARLS_INTERLEAVE_MODE_NONE && pf.spp > 1
		for p := 0; p < npx; p++ {
			for c := 0; c < pf.spp; c++ {
				o := p*pf.spp + c
				if planar {
					o = c*npx + p
				}
				var v int64
				if w == 1 {
					v = int64(out[o])
				} else {
					v = int64(binary.NativeEndian.Uint16(out[2*o:]))
				}
				s[p*pf.spp+c] = v
			}
		}
		return s, nil
	}
	return nil, errors.New("JPEG-LS: sample size does not fit the header")
}

func isSizeMismatch(msg string) bool {
	return len(msg) > 12 && msg[:12] == "decoded size"
}
