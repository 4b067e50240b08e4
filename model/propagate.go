package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// PropagateStats reports one propagation.
type PropagateStats struct {
	Slices    int     // slices segmented
	StoppedAt int     // the last slice index reached
	Reason    string  // "range end", "mask vanished", "cancelled"
	EncodeMS  float64 // total encoder time
	DecodeMS  float64 // total decoder + postprocess time
}

// Propagate segments slices from ref.Index towards `to` (inclusive; either
// direction) starting from the seed mask (W*H, Slice frame) on ref's slice.
// Each next slice gets the previous mask's bounding box, an interior positive
// point (the deepest point by distance transform) and the previous low-res
// logits. It stops when the mask vanishes, at `to`, or when ctx is cancelled
// (returning what it has and ctx's error). progress may be nil. The seed slice
// is not part of the result. With an encoder3d in the manifest, slices are
// encoded in overlapping depth chunks.
func (e *Engine) Propagate(ctx context.Context, ref SliceRef, seed []uint8, to int,
	progress func(done, total int)) (map[int][]uint8, error) {
	out, _, err := e.PropagateStats(ctx, ref, seed, to, progress)
	return out, err
}

// PropagateStats is Propagate that also says why it stopped and what it cost.
func (e *Engine) PropagateStats(ctx context.Context, ref SliceRef, seed []uint8, to int,
	progress func(done, total int)) (map[int][]uint8, PropagateStats, error) {
	var st PropagateStats
	r, err := e.resolve(ref)
	if err != nil {
		return nil, st, err
	}
	n := r.Vol.NumSlices(r.Plane)
	if to < 0 || to >= n {
		return nil, st, fmt.Errorf("model: propagate to %s slice %d outside 0..%d", r.Plane, to, n-1)
	}
	w, h := sliceSize(r.Vol, r.Plane)
	if len(seed) != w*h {
		return nil, st, fmt.Errorf("model: seed mask has %d pixels, want %dx%d", len(seed), w, h)
	}
	out := map[int][]uint8{}
	st.StoppedAt = r.Index
	dir := 1
	if to < r.Index {
		dir = -1
	}
	total := (to - r.Index) * dir
	if total == 0 {
		st.Reason = "range end"
		return out, st, nil
	}
	prev := seed
	var prevLow []float32
	use3D := e.use3D
	for i, done := r.Index+dir, 0; ; i += dir {
		if err := ctx.Err(); err != nil {
			st.Reason = "cancelled"
			return out, st, err
		}
		p, ok := propagationPrompt(prev, w, h)
		if !ok {
			st.Reason = "mask vanished"
			return out, st, nil
		}
		p.MaskIn = prevLow
		cur := r
		cur.Index = i
		t0 := time.Now()
		var emb []float32
		var g Geometry
		if use3D {
			emb, g, err = e.embedding3D(ctx, cur, dir)
		} else {
			emb, g, err = e.embedding(ctx, cur)
		}
		if err != nil {
			if ctx.Err() != nil {
				st.Reason = "cancelled"
			}
			return out, st, err
		}
		st.EncodeMS += ms(time.Since(t0))
		res, err := e.decode(ctx, emb, g, p)
		if err != nil {
			if ctx.Err() != nil {
				st.Reason = "cancelled"
			}
			return out, st, err
		}
		st.DecodeMS += res.DecodeMS + res.PostMS
		// Follow the candidate the model rates best among the non-empty ones.
		b := res.Best
		if res.Areas[b] == 0 {
			for c := range res.Areas {
				if res.Areas[c] > 0 && (res.Areas[b] == 0 || res.Scores[c] > res.Scores[b]) {
					b = c
				}
			}
		}
		done++
		st.Slices = done
		st.StoppedAt = i
		if progress != nil {
			progress(done, total)
		}
		if res.Areas[b] == 0 {
			st.Reason = "mask vanished"
			return out, st, nil
		}
		out[i] = res.Masks[b]
		prev, prevLow = res.Masks[b], res.LowRes[b]
		if i == to {
			st.Reason = "range end"
			return out, st, nil
		}
	}
}

// propagationPrompt derives the next slice's prompt from a mask: its bounding
// box and its deepest interior point (the maximum of the distance transform).
func propagationPrompt(mask []uint8, w, h int) (Prompt, bool) {
	u0, v0, u1, v1 := w, h, -1, -1
	for v := 0; v < h; v++ {
		row := mask[v*w : (v+1)*w]
		for u, m := range row {
			if m != 0 {
				u0, u1 = min(u0, u), max(u1, u)
				v0, v1 = min(v0, v), max(v1, v)
			}
		}
	}
	if u1 < 0 {
		return Prompt{}, false
	}
	pu, pv := DeepestPoint(mask, w, h)
	return Prompt{
		Points: []Point{{U: float64(pu), V: float64(pv), Positive: true}},
		Box:    &Box{U0: float64(u0), V0: float64(v0), U1: float64(u1), V1: float64(v1)},
	}, true
}

// DeepestPoint returns the mask pixel farthest from the background (and from
// the slice border), by an exact Euclidean distance transform. (-1, -1) for an
// empty mask.
func DeepestPoint(mask []uint8, w, h int) (int, int) {
	d := distanceTransform(mask, w, h)
	best, bu, bv := -1.0, -1, -1
	for i, x := range d {
		if mask[i] != 0 && x > best {
			best, bu, bv = x, i%w, i/w
		}
	}
	return bu, bv
}

// distanceTransform returns the squared Euclidean distance of each pixel to the
// nearest background pixel, the outside of the slice counting as background
// (Felzenszwalb & Huttenlocher's separable algorithm).
func distanceTransform(mask []uint8, w, h int) []float64 {
	// Pad by one pixel of background so the border counts.
	pw, ph := w+2, h+2
	inf := math.Inf(1)
	f := make([]float64, pw*ph)
	for v := 0; v < ph; v++ {
		for u := 0; u < pw; u++ {
			if u > 0 && v > 0 && u <= w && v <= h && mask[(v-1)*w+u-1] != 0 {
				f[v*pw+u] = inf
			}
		}
	}
	n := max(pw, ph)
	buf := make([]float64, n)
	out := make([]float64, n)
	z := make([]float64, n+1)
	k := make([]int, n)
	for u := 0; u < pw; u++ { // columns
		for v := 0; v < ph; v++ {
			buf[v] = f[v*pw+u]
		}
		dt1(buf[:ph], out[:ph], z, k)
		for v := 0; v < ph; v++ {
			f[v*pw+u] = out[v]
		}
	}
	for v := 0; v < ph; v++ { // rows
		dt1(f[v*pw:(v+1)*pw], out[:pw], z, k)
		copy(f[v*pw:(v+1)*pw], out[:pw])
	}
	res := make([]float64, w*h)
	for v := 0; v < h; v++ {
		copy(res[v*w:(v+1)*w], f[(v+1)*pw+1:(v+1)*pw+1+w])
	}
	return res
}

// dt1 is the 1D squared distance transform of sampled function f.
func dt1(f, d, z []float64, v []int) {
	n := len(f)
	kk := 0
	// Find the first finite sample; an all-infinite column stays infinite.
	first := -1
	for q := 0; q < n; q++ {
		if !math.IsInf(f[q], 1) {
			first = q
			break
		}
	}
	if first < 0 {
		copy(d, f)
		return
	}
	v[0] = first
	z[0], z[1] = math.Inf(-1), math.Inf(1)
	for q := first + 1; q < n; q++ {
		if math.IsInf(f[q], 1) {
			continue
		}
		fq := f[q] + float64(q*q)
		s := (fq - (f[v[kk]] + float64(v[kk]*v[kk]))) / float64(2*q-2*v[kk])
		for s <= z[kk] {
			kk--
			s = (fq - (f[v[kk]] + float64(v[kk]*v[kk]))) / float64(2*q-2*v[kk])
		}
		kk++
		v[kk] = q
		z[kk], z[kk+1] = s, math.Inf(1)
	}
	kk = 0
	for q := 0; q < n; q++ {
		for z[kk+1] < float64(q) {
			kk++
		}
		dq := float64(q - v[kk])
		d[q] = dq*dq + f[v[kk]]
	}
}

// chunkOverlap is how many slices at each end of a depth chunk are not kept
// (except at the volume's ends): the encoder3d sees context on both sides of
// every slice it is trusted for. One slice per 8: a chunk costs ~2.4x eight 2D
// encodes (bundled model, 2 cores), so each discarded slice is expensive.
func (e *Engine) chunkOverlap() int {
	if D := e.man.DepthChunk; D >= 3 {
		return (D + 7) / 8
	}
	return 0
}

// embedding3D returns ref's depth-encoder embedding, encoding the chunk around
// it (reaching ahead in direction dir) when it isn't cached.
func (e *Engine) embedding3D(ctx context.Context, ref SliceRef, dir int) ([]float32, Geometry, error) {
	k := e.key(ref, true)
	if emb, g, ok := e.cache.get(k); ok {
		return emb, g, nil
	}
	D := e.man.DepthChunk
	o := e.chunkOverlap()
	n := ref.Vol.NumSlices(ref.Plane)
	start := ref.Index - o
	if dir < 0 {
		start = ref.Index - D + 1 + o
	}
	start = max(0, min(start, n-D))
	if err := e.encodeChunk(ctx, ref, start); err != nil {
		return nil, Geometry{}, err
	}
	if emb, g, ok := e.cache.get(k); ok {
		return emb, g, nil
	}
	return nil, Geometry{}, errors.New("model: depth chunk did not cover the slice (cache bound too small for one chunk?)")
}

// encodeChunk encodes slices start..start+D-1 (repeating the last slice when
// the volume is shorter) with encoder3d and caches the trusted ones.
func (e *Engine) encodeChunk(ctx context.Context, ref SliceRef, start int) error {
	D := e.man.DepthChunk
	S := e.man.InputSize
	n := ref.Vol.NumSlices(ref.Plane)
	in := make([]float32, D*3*S*S)
	var g Geometry
	for d := 0; d < D; d++ {
		idx := min(start+d, n-1)
		s, err := sliceView(ref.Vol, ref.Plane, idx)
		if err != nil {
			return fmt.Errorf("model: %w", err)
		}
		if g, err = e.man.Preprocess(s, ref.Window, in[d*3*S*S:(d+1)*3*S*S]); err != nil {
			return fmt.Errorf("model: %s slice %d: %w", ref.Plane, idx, err)
		}
	}
	emb, err := e.runEncoder(ctx, in, D, false)
	if err != nil {
		return fmt.Errorf("model: encode depth chunk %d..%d: %w", start, start+D-1, err)
	}
	per := e.man.EmbeddingLen()
	o := e.chunkOverlap()
	for d := 0; d < D; d++ {
		idx := start + d
		if idx >= n {
			break
		}
		// Keep the chunk's interior, and its ends only at the volume's ends.
		if (d < o && idx != 0 && start > 0) || (d >= D-o && start+D < n) {
			if idx != ref.Index {
				continue
			}
		}
		r := ref
		r.Index = idx
		e.cache.put(e.key(r, true), append([]float32(nil), emb[d*per:(d+1)*per]...), g)
	}
	return nil
}
