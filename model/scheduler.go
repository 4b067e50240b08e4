package model

import (
	"context"
	"errors"
	"sync"
)

// job is one slice being encoded; others wanting the same embedding wait on done.
type job struct {
	key        CacheKey
	ref        SliceRef
	ctx        context.Context
	cancel     context.CancelFunc
	done       chan struct{}
	err        error
	background bool
	waiters    int  // foreground callers waiting on it: never cancelled as stale
	preempted  bool // cancelled so a foreground encode runs first: re-queued
}

// scheduler owns the background encoder: a priority queue replaced by each
// Prefetch, one worker (an encode already uses every CPU thread), in-flight
// jobs shared between the worker and foreground callers.
type scheduler struct {
	e        *Engine
	mu       sync.Mutex
	queue    []SliceRef // resolved refs, highest priority first
	inflight map[CacheKey]*job
	running  *job // the background job being encoded
	wake     chan struct{}
	wg       sync.WaitGroup
	encoded  int64 // background jobs completed (tests, stats)
}

func newScheduler(e *Engine) *scheduler {
	s := &scheduler{e: e, inflight: map[CacheKey]*job{}, wake: make(chan struct{}, 1)}
	s.wg.Add(1)
	go s.worker()
	return s
}

func (s *scheduler) stop() { s.wg.Wait() }

func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// claim returns the in-flight job for k (owner false: wait on it) or a new job
// the caller must run and finish (owner true). A foreground claim preempts a
// background encode of another slice.
func (s *scheduler) claim(ctx context.Context, k CacheKey, ref SliceRef, background bool) (*job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.inflight[k]; ok {
		if !background {
			j.waiters++
		}
		return j, false
	}
	// The job ends with the caller's context or with the engine.
	jctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.e.closeCtx, cancel)
	j := &job{key: k, ref: ref, ctx: jctx, done: make(chan struct{}), background: background,
		cancel: func() { stop(); cancel() }}
	s.inflight[k] = j
	if !background && s.running != nil && s.running.waiters == 0 {
		s.running.preempted = true
		s.running.cancel()
	}
	return j, true
}

// finish publishes a job's result and wakes its waiters.
func (s *scheduler) finish(j *job, err error) {
	s.mu.Lock()
	j.err = err
	if s.inflight[j.key] == j {
		delete(s.inflight, j.key)
	}
	if j.background && j.preempted && errors.Is(err, context.Canceled) && s.e.closeCtx.Err() == nil {
		s.queue = append([]SliceRef{j.ref}, s.queue...)
	}
	j.cancel()
	close(j.done)
	s.mu.Unlock()
	s.signal()
}

// Prefetch replaces the background queue with refs in priority order (the
// visible slice first, then its neighbours in the scroll direction). Cached
// slices are skipped; a running background encode no longer wanted is
// cancelled. It never blocks on inference.
func (e *Engine) Prefetch(refs []SliceRef) {
	if e.isClosed() {
		return
	}
	q := make([]SliceRef, 0, len(refs))
	want := map[CacheKey]bool{}
	for _, r := range refs {
		rr, err := e.resolve(r)
		if err != nil {
			continue
		}
		k := e.key(rr, false)
		if want[k] || e.cache.has(k) {
			continue
		}
		want[k] = true
		q = append(q, rr)
	}
	s := e.sched
	s.mu.Lock()
	s.queue = q
	if r := s.running; r != nil && !want[r.key] && r.waiters == 0 {
		r.cancel() // stale
	}
	s.mu.Unlock()
	s.signal()
}

// PrefetchNeighbours is Prefetch of ref, then ref±1, ±2, ... up to n slices
// away, the ones in the scroll direction (dir > 0: increasing index) first.
func (e *Engine) PrefetchNeighbours(ref SliceRef, dir, n int) {
	if ref.Vol == nil {
		return
	}
	total := ref.Vol.NumSlices(ref.Plane)
	if dir == 0 {
		dir = 1
	}
	refs := []SliceRef{ref}
	add := func(i int) {
		if i >= 0 && i < total {
			r := ref
			r.Index = i
			refs = append(refs, r)
		}
	}
	for d := 1; d <= n; d++ {
		add(ref.Index + dir*d)
	}
	for d := 1; d <= n/2; d++ {
		add(ref.Index - dir*d)
	}
	e.Prefetch(refs)
}

// Pending is the number of queued background encodes (not counting a running one).
func (e *Engine) Pending() int {
	e.sched.mu.Lock()
	defer e.sched.mu.Unlock()
	return len(e.sched.queue)
}

func (s *scheduler) worker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.e.closeCtx.Done():
			return
		case <-s.wake:
		}
		for {
			j := s.next()
			if j == nil {
				break
			}
			err := s.e.runJob(j)
			s.mu.Lock()
			s.running = nil
			if err == nil {
				s.encoded++
			}
			s.mu.Unlock()
			s.finish(j, err)
			if s.e.closeCtx.Err() != nil {
				return
			}
		}
	}
}

// next pops the first queued slice that is neither cached nor in flight.
func (s *scheduler) next() *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 {
		r := s.queue[0]
		s.queue = s.queue[1:]
		k := s.e.key(r, false)
		if _, busy := s.inflight[k]; busy || s.e.cache.has(k) {
			continue
		}
		ctx, cancel := context.WithCancel(s.e.closeCtx)
		j := &job{key: k, ref: r, ctx: ctx, cancel: cancel, done: make(chan struct{}), background: true}
		s.inflight[k] = j
		s.running = j
		return j
	}
	return nil
}
