package model

import (
	"container/list"
	"github.com/medsa/medsa/model/internal/f16"
	"sync"

	"github.com/medsa/medsa/io/volume"
)

// DefaultCacheBytes bounds the embedding cache when Options.CacheBytes is 0.
const DefaultCacheBytes = 1 << 30

// CacheKey identifies one embedding: the image, the slice, the window it was
// encoded with, and the model (name@version, plus "/3d" for depth-encoder ones).
type CacheKey struct {
	VolumeID string
	Plane    volume.Plane
	Index    int
	Window   [2]float64
	Model    string
	Crop     [4]int // auto-zoom crop (u0, v0, u1, v1); zero = the whole slice
}

// CacheStats reports the embedding cache.
type CacheStats struct {
	Entries                 int
	Bytes, LimitBytes       int64
	Hits, Misses, Evictions int64
	Float16                 bool
}

type cacheEntry struct {
	key  CacheKey
	f32  []float32
	f16  []uint16
	geom Geometry
}

func (e *cacheEntry) bytes() int64 {
	// The slices plus a fixed overhead for the entry, key and list element.
	return int64(len(e.f32))*4 + int64(len(e.f16))*2 + 256 + int64(len(e.key.VolumeID))
}

// embedCache is a least-recently-used cache bounded in bytes. Values are
// immutable once stored: Get hands out the stored float32 slice (read-only).
type embedCache struct {
	mu      sync.Mutex
	limit   int64
	bytes   int64
	fp16    bool
	ll      *list.List // front = most recent
	m       map[CacheKey]*list.Element
	hits    int64
	misses  int64
	evicted int64
}

func newEmbedCache(limit int64, fp16 bool) *embedCache {
	if limit <= 0 {
		limit = DefaultCacheBytes
	}
	return &embedCache{limit: limit, fp16: fp16, ll: list.New(), m: map[CacheKey]*list.Element{}}
}

// get returns the embedding (a fresh float32 copy when stored as float16).
func (c *embedCache) get(k CacheKey) ([]float32, Geometry, bool) {
	c.mu.Lock()
	el, ok := c.m[k]
	if !ok {
		c.misses++
		c.mu.Unlock()
		return nil, Geometry{}, false
	}
	c.hits++
	c.ll.MoveToFront(el)
	e := el.Value.(*cacheEntry)
	c.mu.Unlock()
	if e.f16 != nil {
		return halfToFloats(e.f16), e.geom, true
	}
	return e.f32, e.geom, true
}

// has reports presence without counting a hit or touching the LRU order.
func (c *embedCache) has(k CacheKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[k]
	return ok
}

// put stores an embedding (taking ownership of emb) and evicts the least
// recently used entries until the bound holds. An entry larger than the whole
// bound is not stored.
func (c *embedCache) put(k CacheKey, emb []float32, g Geometry) {
	e := &cacheEntry{key: k, geom: g}
	if c.fp16 {
		e.f16 = floatsToHalf(emb)
	} else {
		e.f32 = emb
	}
	sz := e.bytes()
	c.mu.Lock()
	defer c.mu.Unlock()
	if sz > c.limit {
		return
	}
	if old, ok := c.m[k]; ok {
		c.bytes -= old.Value.(*cacheEntry).bytes()
		c.ll.Remove(old)
		delete(c.m, k)
	}
	for c.bytes+sz > c.limit && c.ll.Len() > 0 {
		back := c.ll.Back()
		be := back.Value.(*cacheEntry)
		c.ll.Remove(back)
		delete(c.m, be.key)
		c.bytes -= be.bytes()
		c.evicted++
	}
	c.m[k] = c.ll.PushFront(e)
	c.bytes += sz
}

// dropVolume removes every entry of one image (e.g. when it is closed).
func (c *embedCache) dropVolume(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.m {
		if k.VolumeID == id {
			c.bytes -= el.Value.(*cacheEntry).bytes()
			c.ll.Remove(el)
			delete(c.m, k)
		}
	}
}

func (c *embedCache) stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Entries: c.ll.Len(), Bytes: c.bytes, LimitBytes: c.limit,
		Hits: c.hits, Misses: c.misses, Evictions: c.evicted, Float16: c.fp16}
}

// floatsToHalf converts to IEEE 754 binary16, rounding to nearest even.
func floatsToHalf(f []float32) []uint16 {
	out := make([]uint16, len(f))
	for i, x := range f {
		out[i] = f16.FromFloat32(x)
	}
	return out
}

func halfToFloats(h []uint16) []float32 {
	out := make([]float32, len(h))
	for i, x := range h {
		out[i] = f16.ToFloat32(x)
	}
	return out
}
