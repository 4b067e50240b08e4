package dicom

// JPEG 2000 (Part 1 and, with OpenJPEG >= 2.5, High-Throughput Part 15) through
// Debian's libopenjp2 (OpenJPEG). The codestream's SIZ marker is parsed and held to
// the DICOM header in Go first, so OpenJPEG never sees a stream that would make it
// allocate more than the header (already checked against the memory budget) allows.

/*
#cgo pkg-config: libopenjp2
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <stdint.h>
#include <openjpeg.h>

typedef struct { const unsigned char *p; size_t n, pos; } medsa_mem;

static OPJ_SIZE_T medsa_read(void *buf, OPJ_SIZE_T n, void *u) {
	medsa_mem *m = u;
	if (m->pos >= m->n) return (OPJ_SIZE_T)-1;
	size_t k = m->n - m->pos;
	if (k > n) k = n;
	memcpy(buf, m->p + m->pos, k);
	m->pos += k;
	return k;
}
static OPJ_OFF_T medsa_skip(OPJ_OFF_T n, void *u) {
	medsa_mem *m = u;
	if (n < 0) {
		if ((OPJ_OFF_T)m->pos < -n) { n = -(OPJ_OFF_T)m->pos; }
	} else if ((OPJ_OFF_T)(m->n - m->pos) < n) {
		n = (OPJ_OFF_T)(m->n - m->pos);
	}
	m->pos += n;
	return n;
}
static OPJ_BOOL medsa_seek(OPJ_OFF_T n, void *u) {
	medsa_mem *m = u;
	if (n < 0 || (OPJ_UINT64)n > m->n) return OPJ_FALSE;
	m->pos = (size_t)n;
	return OPJ_TRUE;
}

typedef struct { char *buf; size_t len; } medsa_msg;

static void medsa_on_error(const char *msg, void *u) {
	medsa_msg *e = u;
	if (e->buf[0] != 0) return; // keep the first message: it names the cause
	snprintf(e->buf, e->len, "%s", msg);
	size_t l = strlen(e->buf);
	while (l > 0 && (e->buf[l-1] == '\n' || e->buf[l-1] == ' ')) e->buf[--l] = 0;
}
static void medsa_quiet(const char *msg, void *u) { (void)msg; (void)u; }

// medsa_j2k_decode decodes one codestream into out (pixel-interleaved int32 samples).
// It refuses any image whose geometry differs from want_* before decoding the tiles.
// Returns 0 on success; err holds the reason otherwise.
static int medsa_j2k_decode(const unsigned char *data, size_t len, unsigned want_w, unsigned want_h,
		unsigned want_c, int32_t *out, size_t out_len, int *sgnd, int *prec, char *err, size_t errlen) {
	medsa_mem m = { data, len, 0 };
	medsa_msg e = { err, errlen };
	err[0] = 0;
	int rc = 1;
	opj_image_t *img = NULL;
	opj_codec_t *codec = NULL;
	opj_stream_t *st = opj_stream_create(1 << 16, OPJ_TRUE);
	if (!st) { snprintf(err, errlen, "cannot create a stream"); return 1; }
	opj_stream_set_user_data(st, &m, NULL);
	opj_stream_set_user_data_length(st, len);
	opj_stream_set_read_function(st, medsa_read);
	opj_stream_set_skip_function(st, medsa_skip);
	opj_stream_set_seek_function(st, medsa_seek);
	codec = opj_create_decompress(OPJ_CODEC_J2K);
	if (!codec) { snprintf(err, errlen, "cannot create a decoder"); goto done; }
	opj_set_error_handler(codec, medsa_on_error, &e);
	opj_set_warning_handler(codec, medsa_quiet, NULL);
	opj_set_info_handler(codec, medsa_quiet, NULL);
	opj_dparameters_t par;
	opj_set_default_decoder_parameters(&par);
	if (!opj_setup_decoder(codec, &par)) { if (!err[0]) snprintf(err, errlen, "decoder setup failed"); goto done; }
	// Strict: a truncated stream is an error, not a partly grey image.
	if (!opj_decoder_set_strict_mode(codec, OPJ_TRUE)) { if (!err[0]) snprintf(err, errlen, "strict mode refused"); goto done; }
	if (!opj_read_header(st, codec, &img) || !img) { if (!err[0]) snprintf(err, errlen, "cannot read the main header"); goto done; }
	if (img->x1 - img->x0 != want_w || img->y1 - img->y0 != want_h || img->numcomps != want_c) {
		snprintf(err, errlen, "codestream is %ux%ux%u, header says %ux%ux%u",
			img->x1 - img->x0, img->y1 - img->y0, img->numcomps, want_w, want_h, want_c);
		goto done;
	}
	for (unsigned c = 0; c < img->numcomps; c++) {
		opj_image_comp_t *k = &img->comps[c];
		if (k->dx != 1 || k->dy != 1 || k->prec < 1 || k->prec > 31 || k->sgnd != img->comps[0].sgnd) {
			snprintf(err, errlen, "component %u: subsampling %ux%u, %u bits: not supported", c, k->dx, k->dy, k->prec);
			goto done;
		}
	}
	if ((size_t)want_w * want_h * want_c > out_len) { snprintf(err, errlen, "output buffer too small"); goto done; }
	if (!opj_decode(codec, st, img)) { if (!err[0]) snprintf(err, errlen, "decode failed"); goto done; }
	if (!opj_end_decompress(codec, st)) { if (!err[0]) snprintf(err, errlen, "end of codestream not reached"); goto done; }
	size_t npx = (size_t)want_w * want_h;
	for (unsigned c = 0; c < img->numcomps; c++) {
		opj_image_comp_t *k = &img->comps[c];
		if (!k->data || k->w != want_w || k->h != want_h) {
			snprintf(err, errlen, "component %u decoded as %ux%u", c, k->w, k->h);
			goto done;
		}
		for (size_t p = 0; p < npx; p++) out[p * want_c + c] = k->data[p];
	}
	*sgnd = (int)img->comps[0].sgnd;
	*prec = (int)img->comps[0].prec;
	rc = 0;
done:
	if (img) opj_image_destroy(img);
	if (codec) opj_destroy_codec(codec);
	opj_stream_destroy(st);
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

// j2kInfo is what a codestream's SIZ marker declares.
type j2kInfo struct {
	w, h, comps int
	prec        []int // bits per component
	signed      bool
	ht          bool // Rsiz says Part 15 (High-Throughput) capabilities
}

// j2kCodestream finds the codestream in b: b itself, or the contents of the jp2c
// box when an encoder wrapped it in a JP2 file (not conformant DICOM, but seen).
func j2kCodestream(b []byte) ([]byte, error) {
	if len(b) >= 12 && binary.BigEndian.Uint32(b) == 12 && string(b[4:8]) == "jP  " {
		for pos := 0; pos+8 <= len(b); {
			l := int64(binary.BigEndian.Uint32(b[pos:]))
			typ := string(b[pos+4 : pos+8])
			hdr := int64(8)
			switch l {
			case 0:
				l = int64(len(b) - pos)
			case 1:
				if pos+16 > len(b) {
					return nil, errors.New("JP2 box header truncated")
				}
				l, hdr = int64(binary.BigEndian.Uint64(b[pos+8:])), 16
			}
			if l < hdr || int64(pos)+l > int64(len(b)) {
				if typ == "jp2c" && l >= hdr {
					return b[pos+int(hdr):], nil // a truncated last box: SIZ/EOC checks decide
				}
				return nil, fmt.Errorf("JP2 box %q claims %d bytes, %d present", typ, l, len(b)-pos)
			}
			if typ == "jp2c" {
				return b[pos+int(hdr) : pos+int(l)], nil
			}
			pos += int(l)
		}
		return nil, errors.New("JP2 file without a codestream box")
	}
	return b, nil
}

// parseSIZ reads the SIZ marker that must follow SOC.
func parseSIZ(b []byte) (j2kInfo, error) {
	var in j2kInfo
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0x4F || b[2] != 0xFF || b[3] != 0x51 {
		return in, errors.New("not a JPEG 2000 codestream (no SOC/SIZ markers)")
	}
	if len(b) < 6+38 {
		return in, errors.New("JPEG 2000 SIZ marker truncated")
	}
	be := binary.BigEndian
	l := int(be.Uint16(b[4:]))
	rsiz := be.Uint16(b[6:])
	xs, ys, xo, yo := be.Uint32(b[8:]), be.Uint32(b[12:]), be.Uint32(b[16:]), be.Uint32(b[20:])
	xt, yt, xto, yto := be.Uint32(b[24:]), be.Uint32(b[28:]), be.Uint32(b[32:]), be.Uint32(b[36:])
	nc := int(be.Uint16(b[40:]))
	if nc < 1 || l != 38+3*nc || len(b) < 4+l {
		return in, fmt.Errorf("JPEG 2000 SIZ marker: %d components in %d bytes", nc, l)
	}
	if xo >= xs || yo >= ys || xt == 0 || yt == 0 || xto > xo || yto > yo || uint64(xto)+uint64(xt) <= uint64(xo) || uint64(yto)+uint64(yt) <= uint64(yo) {
		return in, fmt.Errorf("JPEG 2000 SIZ marker: image %dx%d at %d,%d with %dx%d tiles at %d,%d is inconsistent", xs, ys, xo, yo, xt, yt, xto, yto)
	}
	tiles := uint64((uint64(xs-xto)+uint64(xt)-1)/uint64(xt)) * uint64((uint64(ys-yto)+uint64(yt)-1)/uint64(yt))
	if tiles > 65535 {
		return in, fmt.Errorf("JPEG 2000 SIZ marker: %d tiles (at most 65535)", tiles)
	}
	in.w, in.h, in.comps, in.ht = int(xs-xo), int(ys-yo), nc, rsiz&0x4000 != 0
	for c := 0; c < nc; c++ {
		s, dx, dy := b[42+3*c], b[43+3*c], b[44+3*c]
		if dx != 1 || dy != 1 {
			return in, fmt.Errorf("JPEG 2000 component %d is subsampled %dx%d (not supported in DICOM)", c, dx, dy)
		}
		in.prec = append(in.prec, int(s&0x7F)+1)
		if c == 0 {
			in.signed = s&0x80 != 0
		}
	}
	return in, nil
}

// endsWithMarker reports whether b ends with marker FF m (EOC for JPEG 2000, EOI for
// JPEG-LS; the same code), allowing the few zero bytes of padding that DICOM's
// even-length fragments add.
func endsWithMarker(b []byte, m byte) bool {
	i := len(b)
	for i > 0 && b[i-1] == 0 && len(b)-i < 8 {
		i--
	}
	return i >= 2 && b[i-2] == 0xFF && b[i-1] == m
}

// decodeJ2K decodes one JPEG 2000 frame of the given format into interleaved samples
// (the codec's own values: signed when the codestream says so). Colour transforms
// (RCT/ICT) are undone by OpenJPEG, so YBR_RCT/YBR_ICT frames come back as RGB.
func decodeJ2K(b []byte, pf pixelFormat) (pix []int32, info j2kInfo, err error) {
	cs, err := j2kCodestream(b)
	if err != nil {
		return nil, info, err
	}
	info, err = parseSIZ(cs)
	if err != nil {
		return nil, info, err
	}
	if info.w != pf.cols || info.h != pf.rows || info.comps != pf.spp {
		return nil, info, fmt.Errorf("JPEG 2000 codestream is %dx%dx%d, header says %dx%dx%d", info.w, info.h, info.comps, pf.cols, pf.rows, pf.spp)
	}
	// DICOM's Rows and Columns are 16-bit: a larger frame is a lying header, not an allocation to try
	if pf.rows < 1 || pf.cols < 1 || pf.rows > 65535 || pf.cols > 65535 {
		return nil, info, fmt.Errorf("JPEG 2000 frame of %dx%d pixels: DICOM rows and columns are 1-65535", pf.cols, pf.rows)
	}
	for c, p := range info.prec {
		if p > pf.alloc || p > 31 {
			return nil, info, fmt.Errorf("JPEG 2000 component %d has %d bits; the header allocates %d", c, p, pf.alloc)
		}
	}
	if !endsWithMarker(cs, 0xD9) {
		return nil, info, fmt.Errorf("JPEG 2000 codestream of %d bytes has no end-of-codestream marker (truncated)", len(cs))
	}
	n := pf.rows * pf.cols * pf.spp
	pix = make([]int32, n)
	var errBuf [256]C.char
	var sgnd, prec C.int
	rc := C.medsa_j2k_decode((*C.uchar)(unsafe.Pointer(&cs[0])), C.size_t(len(cs)), C.uint(pf.cols), C.uint(pf.rows), C.uint(pf.spp),
		(*C.int32_t)(unsafe.Pointer(&pix[0])), C.size_t(n), &sgnd, &prec, &errBuf[0], C.size_t(len(errBuf)))
	if rc != 0 {
		return nil, info, fmt.Errorf("JPEG 2000: %s", C.GoString(&errBuf[0]))
	}
	info.signed = sgnd != 0
	return pix, info, nil
}
