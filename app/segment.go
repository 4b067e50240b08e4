package app

import (
	"fmt"
	"time"

	"github.com/medsa/medsa/interaction"
)

// segment asks the workspace for the model's answer to the prompts of slice
// k; down is when the pointer went down for them (the click→mask clock).
func (u *UI) segment(d *doc, k interaction.SliceKey, down time.Time) {
	if t0, ok := u.ws.Segment(d.Doc, k, down); ok {
		d.view.MarkPending(t0)
	}
}

// maskPainted shows the click->mask time once the mask is on screen.
func (u *UI) maskPainted(d *doc, lat time.Duration) {
	txt := fmt.Sprintf("click→mask %d ms", lat.Milliseconds())
	if r := d.LastResult(); r != nil {
		if r.EncodeMS > 0 {
			txt += fmt.Sprintf(" (incl. encoding %.0f ms)", r.EncodeMS)
		} else {
			txt += fmt.Sprintf(" (decode %.0f ms)", r.DecodeMS+r.PostMS)
		}
	}
	u.latency.SetText(txt)
	u.logf("%s on screen", txt)
	// The wall-clock time of the frame (a few ms late: this runs just after
	// it), for scripts that time from the X event they sent (bench.d/gui.sh).
	u.state.event("painted_at_ms", float64(time.Now().UnixMicro())/1000)
	u.state.event("painted", msf(lat))
}

func (u *UI) updateCandStatus() {
	d := u.doc
	if d == nil {
		return
	}
	_, mask, sel, n, score := d.Sess.Preview()
	if mask == nil {
		u.candStatus.SetText("")
		return
	}
	u.candStatus.SetText(fmt.Sprintf("candidate %d/%d · score %.2f · Enter accepts, Tab cycles", sel+1, n, score))
}
