package workspace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/model"
)

// staleClick: a pointer-down older than this is not the click being answered
// (the prompt came from elsewhere: undo, the model finishing loading).
const staleClick = 5 * time.Second

// Segment asks the model for the prompts of slice k in the background. down
// is when the pointer went down for them: the click→mask clock starts there
// (zero or stale: now). It returns that start, for the view's painted-frame
// clock, and false when nothing was asked (no prompts; SegmentFailed tells
// when there is no model). The answer becomes the preview (MaskInstalled)
// unless the prompts changed meanwhile: a stale answer is dropped.
func (w *Workspace) Segment(d *Doc, k interaction.SliceKey, down time.Time) (time.Time, bool) {
	d.CancelSegment()
	p, gen := d.Sess.Prompts(k)
	if p.Empty() {
		return time.Time{}, false
	}
	e, err := w.Engine()
	if e == nil {
		if !errors.Is(err, ErrModelLoading) {
			err = fmt.Errorf("no model: %w", err)
		}
		w.emit(SegmentFailed{Err: err})
		return time.Time{}, false
	}
	mp := model.Prompt{}
	for _, pt := range p.Points {
		mp.Points = append(mp.Points, model.Point{U: pt.U, V: pt.V, Positive: pt.Positive})
	}
	if p.Box != nil {
		mp.Box = &model.Box{U0: p.Box.U0, V0: p.Box.V0, U1: p.Box.U1, V1: p.Box.V1}
	}
	if f := d.Sess.MaskFeed(k); len(f) == e.Manifest().LowResMaskSize*e.Manifest().LowResMaskSize {
		mp.MaskIn = f
	}
	now := timeNow()
	t0 := down
	if t0.IsZero() || now.Sub(t0) > staleClick || t0.After(now) {
		t0 = now
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.mu.Lock()
	d.segCancel = cancel
	d.mu.Unlock()
	ref := d.ref(k)
	// install makes res the preview on the UI thread, unless stale.
	install := func(res *model.Result, engine time.Duration, early bool) {
		if ctx.Err() != nil {
			return // a newer prompt, or the document closed
		}
		c := &interaction.Candidates{Key: k, Gen: gen, W: res.W, H: res.H, Masks: res.Masks, Scores: res.Scores, Best: res.Best, LowRes: res.LowRes}
		if !d.Sess.SetCandidates(c) {
			return // the prompts changed while the model worked (or were accepted)
		}
		d.mu.Lock()
		d.lastResult = res
		d.mu.Unlock()
		w.emit(MaskInstalled{Key: k, Latency: timeNow().Sub(t0), Engine: engine, Result: res, Early: early})
	}
	go func() {
		// A zoomed answer shows the full view's answer first: a mask on
		// screen after one decode, replaced when the crop's is ready.
		early := func(r *model.Result) {
			engine := timeNow().Sub(t0)
			w.post(func() { install(r, engine, true) })
		}
		res, err := e.SegmentEarly(ctx, ref, mp, early)
		engine := timeNow().Sub(t0)
		w.post(func() {
			if err != nil {
				if ctx.Err() == nil {
					w.emit(SegmentFailed{Err: fmt.Errorf("segmentation failed: %w", err)})
				}
				return
			}
			install(res, engine, false)
		})
	}()
	return t0, true
}

// Accept writes the preview into the active label (one undo step) and
// schedules an autosave.
func (w *Workspace) Accept(d *Doc) error {
	if err := d.Sess.Accept(d.Active().Window()); err != nil {
		return err
	}
	w.KickAutosave()
	return nil
}

// Prefetch queues the active view's slice and its neighbours in the scroll
// direction for encoding.
func (w *Workspace) Prefetch(d *Doc, dir int) {
	if e, _ := w.Engine(); e != nil && d != nil {
		e.PrefetchNeighbours(d.ref(d.Active().Key()), dir, 4)
	}
}

// settleDelay: slices flown past at 30 frames a second are not worth encoding,
// and the encoder would take the CPU the scrolling needs.
const settleDelay = 150 * time.Millisecond

// PrefetchSettled prefetches once scrolling pauses.
func (w *Workspace) PrefetchSettled(d *Doc, dir int) {
	e, _ := w.Engine()
	if e == nil || d == nil {
		return
	}
	ref := d.ref(d.Active().Key())
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.prefetch != nil {
		d.prefetch.Stop()
	}
	d.prefetch = time.AfterFunc(settleDelay, func() { e.PrefetchNeighbours(ref, dir, 4) })
}
