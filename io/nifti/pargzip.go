package nifti

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/flate"
)

// gzipChunk is about the uncompressed size of one independently compressed piece.
var gzipChunk = 1 << 20 // a variable so tests can exercise many chunks cheaply

// gzSource describes the bytes of a gzip member: hdr, then total bytes that
// fill(dst, offset) produces (offset and len(dst) multiples of unit; fill is called
// from several goroutines). When labels is set (a uint8 label map), chunks are
// run-coded straight from it and fill is only the fallback.
type gzSource struct {
	hdr    []byte
	total  int
	unit   int
	fill   func(dst []byte, start int)
	labels []uint16
}

// writeGzipParallel writes one gzip member. Chunks are produced *and* compressed
// by GOMAXPROCS workers (each its own deflate segment, sync-flushed so the pieces
// concatenate into one valid stream, with its own CRC combined in order); the
// caller's goroutine writes them in order. Unlike a generic parallel gzip writer,
// the data never passes through an intermediate copy: turning a label map into
// bytes is as much work as compressing it, so it is parallel too.
func writeGzipParallel(w io.Writer, level int, src gzSource) error {
	chunk := gzipChunk / src.unit * src.unit // whole voxels per chunk
	workers := max(1, runtime.GOMAXPROCS(0))
	nchunks := max(1, (src.total+chunk-1)/chunk)
	type job struct {
		idx    int
		raw    []byte
		out    []byte
		crc    uint32
		rawLen int
		err    error
		ready  chan struct{}
	}
	inflight := 2 * workers
	free := make(chan *job, inflight)
	for i := 0; i < inflight; i++ {
		free <- &job{}
	}
	jobs := make(chan *job, inflight)
	order := make(chan *job, inflight)
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fw, _ := flate.NewWriter(io.Discard, level)
			var enc runEncoder
			for j := range jobs {
				start := j.idx * chunk
				n := max(0, min(chunk, src.total-start))
				last := j.idx == nchunks-1
				if src.labels != nil {
					enc.start(j.out[:0], last)
					if j.idx == 0 {
						enc.bytes(src.hdr)
					}
					if !enc.labels(src.labels[start : start+n]) {
						j.err = errWideLabel
						close(j.ready)
						continue
					}
					j.out, j.crc, j.rawLen = enc.finish(last), enc.crc, enc.n
					if len(j.out) <= j.rawLen/4+64 {
						close(j.ready)
						continue
					}
					// few runs: a real encoder does better
				}
				j.raw = j.raw[:0]
				if j.idx == 0 {
					j.raw = append(j.raw, src.hdr...)
				}
				off := len(j.raw)
				j.raw = slices.Grow(j.raw, n)[:off+n]
				if n > 0 {
					src.fill(j.raw[off:], start)
				}
				j.crc, j.rawLen = crc32.ChecksumIEEE(j.raw), len(j.raw)
				j.out = j.out[:0]
				fw.Reset(sliceWriter{&j.out})
				if _, err := fw.Write(j.raw); err != nil {
					j.err = err
				} else if last {
					j.err = fw.Close()
				} else {
					j.err = fw.Flush()
				}
				close(j.ready)
			}
		}()
	}
	go func() { // producer: hands out chunks in order, at most inflight at a time
		defer close(jobs)
		defer close(order)
		for i := 0; i < nchunks; i++ {
			var j *job
			select {
			case j = <-free:
			case <-stop:
				return
			}
			j.idx, j.err, j.ready = i, nil, make(chan struct{})
			order <- j
			jobs <- j
		}
	}()
	// gzip header: no name, no mtime (reproducible output), OS unknown.
	_, err := w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	if err != nil {
		stopOnce.Do(func() { close(stop) })
	}
	var crc uint32
	var shift crcShift // cached for the common chunk length
	shiftLen := int64(-1)
	for j := range order {
		<-j.ready
		if err == nil {
			err = j.err
		}
		if err == nil {
			if int64(j.rawLen) != shiftLen {
				shift, shiftLen = newCRCShift(int64(j.rawLen)), int64(j.rawLen)
			}
			crc = shift.apply(crc) ^ j.crc
			_, err = w.Write(j.out)
		}
		if err != nil {
			stopOnce.Do(func() { close(stop) })
		}
		free <- j
	}
	wg.Wait()
	if err != nil {
		return err
	}
	var tr [8]byte
	binary.LittleEndian.PutUint32(tr[:], crc)
	binary.LittleEndian.PutUint32(tr[4:], uint32(len(src.hdr)+src.total))
	_, err = w.Write(tr[:])
	return err
}

type sliceWriter struct{ b *[]byte }

func (s sliceWriter) Write(p []byte) (int, error) {
	*s.b = append(*s.b, p...)
	return len(p), nil
}
