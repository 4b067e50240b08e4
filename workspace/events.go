package workspace

import (
	"time"

	"github.com/medsa/medsa/interaction"
	"github.com/medsa/medsa/io/dicom"
	"github.com/medsa/medsa/model"
)

// Event is something the GUI may want to show. Each is a small struct; the
// GUI switches on the type.
type Event interface{ event() }

// OpenProgress: an open retrieved done of total parts (a PACS series: instances).
type OpenProgress struct{ Done, Total int }

// Opened: Doc is the new document (the old one was closed).
type Opened struct {
	Doc     *Doc
	Elapsed time.Duration
}

// OpenFailed: the open failed; Series lists the choices when the path holds
// several DICOM series (open again with one of their UIDs).
type OpenFailed struct {
	Path   string
	Series []dicom.Series
	Err    error
}

// OpenCancelled: the user cancelled an open; the document did not change.
type OpenCancelled struct{ Path string }

// MaskInstalled: the model's answer for Key is the preview now. Latency runs
// from the pointer going down to the answer installed (painting comes after).
// Early: a first answer on the full view, shown while the engine decodes on
// the zoom crop (encoding it first if needed); the final answer follows in
// another MaskInstalled.
type MaskInstalled struct {
	Key     interaction.SliceKey
	Latency time.Duration
	Engine  time.Duration // the engine's share
	Result  *model.Result
	Early   bool
}

// SegmentFailed: the model could not answer a prompt (or there is no model).
type SegmentFailed struct{ Err error }

// PropagateStarted: a propagation of Label from Key runs over slices Lo..Hi.
type PropagateStarted struct {
	Key    interaction.SliceKey
	Label  uint16
	Lo, Hi int
}

// PropagateProgress: done of total slices.
type PropagateProgress struct{ Done, Total int }

// PropagateDone: the propagation ended; Slices and Voxels were written (one
// undo step) unless Err is set. Cancelled keeps what was done before the cancel.
type PropagateDone struct {
	Slices, Voxels int
	Cancelled      bool
	Elapsed        time.Duration
	Err            error
}

// Saved: a save (or an export: not the document's mask) finished.
type Saved struct {
	Path    string
	Export  bool
	Elapsed time.Duration
	Err     error
}

// Autosaved: the recovery file was written.
type Autosaved struct {
	Path string
	Err  error
}

// MaskLoaded: a mask (or the recovery file) was read onto the document.
type MaskLoaded struct {
	Path      string
	Recovered bool
	Err       error
}

func (OpenProgress) event()      {}
func (Opened) event()            {}
func (OpenFailed) event()        {}
func (OpenCancelled) event()     {}
func (MaskInstalled) event()     {}
func (SegmentFailed) event()     {}
func (PropagateStarted) event()  {}
func (PropagateProgress) event() {}
func (PropagateDone) event()     {}
func (Saved) event()             {}
func (Autosaved) event()         {}
func (MaskLoaded) event()        {}
