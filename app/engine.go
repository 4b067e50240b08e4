package app

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/medsa/medsa/model"
	"github.com/medsa/medsa/workspace"
)

// openEngine loads the model (in the background, at start). The directory is
// found as the CLI finds it (model.FindModelDir: $MEDSA_MODEL_DIR, then
// assets/model near the binary or the working tree).
func (u *UI) openEngine() {
	var e *model.Engine
	dir, err := model.FindModelDir(u.opt.ModelDir)
	if err == nil {
		// Leave one core to the UI on small machines: scrolling and painting
		// stay smooth while the encoder works ahead in the background.
		threads := max(1, runtime.NumCPU()-1)
		e, err = model.Open(dir, model.Options{Device: u.opt.Device, Threads: threads})
	}
	if err != nil {
		err = fmt.Errorf("%w (put a model directory, manifest.json + ONNX files, in assets/model next to medsa, or set MEDSA_MODEL_DIR)", err)
	}
	u.engMu.Lock()
	u.eng = e
	u.engMu.Unlock()
	if e != nil {
		u.ws.SetEngine(e, nil)
		// A remote encoder's state (up, unreachable and encoding locally, refused) changes on its own.
		e.OnServerStatus(func(model.ServerStatus) { u.do(u.updateBadge) })
	} else {
		u.ws.SetEngine(nil, err)
	}
	u.do(func() {
		u.updateBadge()
		if err != nil {
			u.logf("model: %v", err)
			u.setMessage("model unavailable: prompts are off (brush still works)")
			return
		}
		u.logf("model %s on %s", e.Manifest().ID(), e.Provider())
		if d := u.doc; d != nil {
			u.ws.Prefetch(d.Doc, 1)
			// A prompt given while the model loaded is answered now.
			u.segment(d, d.view.Key(), time.Time{})
		}
	})
}

func (u *UI) updateBadge() {
	e, err := u.engine()
	switch {
	case e != nil:
		p := e.Provider()
		t := p.Name
		if p.FallbackReason != "" {
			t += " (fallback)"
		}
		t += " · " + e.Manifest().Name
		if st := e.ServerStatus(); st.URL != "" {
			t += " · " + st.Text
		}
		u.badge.SetText(t)
	case err != nil && !errors.Is(err, workspace.ErrModelLoading):
		u.badge.SetText("no model")
	default:
		u.badge.SetText("model loading…")
	}
}

func (u *UI) showProvider() {
	e, err := u.engine()
	var txt string
	switch {
	case e != nil:
		p := e.Provider()
		cs := e.CacheStats()
		m := e.Manifest()
		txt = fmt.Sprintf("Model: %s\nArchitecture: %s\nInput: %d px, %s\n\nDevice: %s\nRequested: %s\nThreads: %d\nONNX Runtime: %s\n",
			m.ID(), m.Architecture, m.InputSize, m.Resize, p.Name, p.Requested, p.Threads, p.Library)
		if p.FallbackReason != "" {
			txt += "\nCUDA is not used: " + p.FallbackReason + "\n"
		}
		if st := e.ServerStatus(); st.URL != "" {
			txt += "\nInference server: " + st.Text + "\n"
		}
		txt += fmt.Sprintf("\nEmbedding cache: %d slices, %.0f of %.0f MiB, %d hits, %d misses, %d evictions",
			cs.Entries, float64(cs.Bytes)/(1<<20), float64(cs.LimitBytes)/(1<<20), cs.Hits, cs.Misses, cs.Evictions)
	default:
		txt = err.Error()
	}
	l := widget.NewLabel(txt)
	l.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustom("Model and device", "Close", container.NewVScroll(l), u.W)
	d.Resize(fyne.NewSize(640, 420))
	d.Show()
}

// statusLoop shows background-encoding progress.
func (u *UI) statusLoop() {
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-u.quit:
			return
		case <-t.C:
		}
		e, _ := u.ws.Engine()
		if e == nil {
			continue
		}
		var d *doc
		var ref model.SliceRef
		u.doAndWait(func() {
			if d = u.doc; d != nil {
				ref = d.Ref(d.view.Key())
			}
		})
		if d == nil {
			continue
		}
		pending := e.Pending()
		ready := e.Ready(ref)
		var txt string
		busy := true
		switch {
		case !ready:
			txt = fmt.Sprintf("encoding slice… (%d queued)", pending)
		case pending > 0:
			txt = fmt.Sprintf("slice ready · encoding %d neighbours", pending)
		default:
			txt, busy = "slice ready", false
		}
		u.do(func() {
			// Only touch widgets that change: every change repaints the window
			// (no animated bar either: with software GL, a repaint every frame
			// would take the UI thread from clicks).
			imp := widget.SuccessImportance
			if busy {
				imp = widget.WarningImportance
			}
			if u.encStatus.Text != txt || u.encStatus.Importance != imp {
				u.encStatus.Importance = imp
				u.encStatus.SetText(txt)
			}
		})
	}
}
