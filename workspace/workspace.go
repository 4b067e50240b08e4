// Package workspace is medsa's GUI model without the GUI: the open document
// (a volume and its interaction.Session), its views and their shared
// crosshair, the saved and autosaved generations, and the jobs that run off
// the UI goroutine (open, segment, propagate, save, autosave, recovery). It
// talks to the model through the small Engine interface (*model.Engine
// satisfies it) and tells the GUI what happened through typed events. It does
// not import Fyne: app/ wires widgets to it, and the tests drive it headless
// against a fake engine.
//
// Threading: the methods are meant to be called from one goroutine (the UI's);
// jobs run in goroutines and hand their results back through Options.Post,
// which runs a function on that goroutine (fyne.Do in the app). Events are
// delivered there too. The state is nevertheless guarded, so a test may call
// from its own goroutine.
package workspace

import (
	"context"
	"errors"
	"sync"

	"github.com/medsa/medsa/model"
)

// Engine is what the workspace needs of the model; *model.Engine satisfies it.
type Engine interface {
	Manifest() *model.Manifest
	// SegmentEarly: model.Engine.SegmentEarly (early gets the full view's
	// answer first where a decode on a zoom crop follows).
	SegmentEarly(ctx context.Context, ref model.SliceRef, p model.Prompt, early func(*model.Result)) (*model.Result, error)
	PropagateStats(ctx context.Context, ref model.SliceRef, seed []uint8, to int, progress func(done, total int)) (map[int][]uint8, model.PropagateStats, error)
	PrefetchNeighbours(ref model.SliceRef, dir, n int)
	Ready(ref model.SliceRef) bool
	Pending() int
	DropVolume(volumeID string)
}

var _ Engine = (*model.Engine)(nil)

// Options configure a workspace.
type Options struct {
	RecoveryDir string // autosave folder ("" = no autosave or recovery)
	SavePath    string // the first save of a document goes here without asking
	// Post runs f on the goroutine that owns the GUI (fyne.Do); nil runs it at once.
	Post func(f func())
	// OnEvent receives every event, on Post's goroutine; nil drops them.
	OnEvent func(Event)
}

// Workspace holds at most one open document and the model engine.
type Workspace struct {
	opt Options

	mu     sync.Mutex
	eng    Engine
	engErr error
	doc    *Doc
	open   *openJob      // the open in progress, if any
	kick   chan struct{} // wakes the autosave loop
}

// New returns an empty workspace.
func New(opt Options) *Workspace { return &Workspace{opt: opt} }

// SetEngine installs the model (or why there is none); the open document
// records its name with each accepted mask from now on.
func (w *Workspace) SetEngine(e Engine, err error) {
	w.mu.Lock()
	w.eng, w.engErr = e, err
	d := w.doc
	w.mu.Unlock()
	if d != nil && e != nil {
		d.Sess.SetModelName(e.Manifest().ID())
	}
}

// ErrModelLoading is the engine's error while the model is still being opened.
var ErrModelLoading = errors.New("the model is still loading")

// Engine returns the model engine, or nil and why not.
func (w *Workspace) Engine() (Engine, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.eng == nil && w.engErr == nil {
		return nil, ErrModelLoading
	}
	return w.eng, w.engErr
}

// Doc is the open document (nil when none).
func (w *Workspace) Doc() *Doc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.doc
}

func (w *Workspace) post(f func()) {
	if w.opt.Post != nil {
		w.opt.Post(f)
		return
	}
	f()
}

// emit delivers ev; call it on Post's goroutine.
func (w *Workspace) emit(ev Event) {
	if w.opt.OnEvent != nil {
		w.opt.OnEvent(ev)
	}
}

// Close cancels the jobs of the open document.
func (w *Workspace) Close() {
	w.mu.Lock()
	d := w.doc
	oj := w.open
	w.open = nil
	w.mu.Unlock()
	if oj != nil {
		oj.cancel()
	}
	if d != nil {
		d.cancelJobs()
	}
}
