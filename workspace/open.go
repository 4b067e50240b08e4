package workspace

import (
	"context"
	"time"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/load"
	"github.com/medsa/medsa/io/volume"
)

// loadOpen reads an image (tests replace it to watch the context it gets).
var loadOpen = load.Open

type openJob struct {
	path   string
	cancel func()
	ended  bool // cancelled, or its result applied (guarded by Workspace.mu)
}

// Open reads path (a file, a folder, a PACS series URL; seriesUID picks one
// series of a folder) in the background; the result replaces the document
// (Opened), or OpenFailed / OpenCancelled tell why not. Progress comes as
// OpenProgress for a PACS retrieval. The returned cancel stops the open at
// once: a PACS retrieval stops its transfer, a local read stops between DICOM
// files or within a megabyte of voxels (load.Options.Context), and whatever it
// returns is dropped. A second Open cancels the first.
func (w *Workspace) Open(path, seriesUID string) (cancel func()) {
	ctx, stop := context.WithCancel(context.Background())
	job := &openJob{path: path}
	job.cancel = func() {
		w.mu.Lock()
		if job.ended {
			w.mu.Unlock()
			return
		}
		job.ended = true
		if w.open == job {
			w.open = nil
		}
		w.mu.Unlock()
		stop()
		w.post(func() { w.emit(OpenCancelled{Path: path}) })
	}
	w.mu.Lock()
	prev := w.open
	w.open = job
	w.mu.Unlock()
	if prev != nil {
		prev.cancel()
	}
	opt := load.Options{SeriesUID: seriesUID, Context: ctx,
		Progress: func(done, total int) { w.post(func() { w.emit(OpenProgress{Done: done, Total: total}) }) }}
	go func() {
		t0 := timeNow()
		vol, err := loadOpen(path, opt)
		if err == nil {
			err = vol.Validate()
		}
		el := time.Since(t0)
		w.post(func() {
			// Claim the result unless a cancel came first (it told already).
			w.mu.Lock()
			mine := !job.ended
			job.ended = true
			if w.open == job {
				w.open = nil
			}
			w.mu.Unlock()
			stop()
			if !mine {
				return
			}
			if err != nil {
				series, _ := load.MultipleSeries(err)
				w.emit(OpenFailed{Path: path, Series: series, Err: err})
				return
			}
			w.emit(Opened{Doc: w.OpenVolume(vol, path), Elapsed: el})
		})
	}()
	return job.cancel
}

// OpenVolume makes an already loaded volume the document (Open's last step;
// tests). The old document's jobs are cancelled and its embeddings dropped.
func (w *Workspace) OpenVolume(vol *volume.Volume, path string) *Doc {
	d := newDoc(vol, path, w.opt.SavePath)
	w.mu.Lock()
	old, e := w.doc, w.eng
	w.doc = d
	w.mu.Unlock()
	if old != nil {
		old.cancelJobs()
		if e != nil {
			e.DropVolume(old.VolID)
		}
	}
	if e != nil {
		d.Sess.SetModelName(e.Manifest().ID())
	}
	// Label-table edits are rare and unsaved until autosaved: write them soon.
	d.Sess.Observe(func(c interaction.Change) {
		if c&interaction.ChangeLabelTable != 0 {
			w.KickAutosave()
		}
	})
	return d
}
