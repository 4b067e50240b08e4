package workspace

import (
	"sync"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// Zoom and pan belong to one view and one plane: three views of a document,
// written from three goroutines (as three widgets could), each keep their
// own, and a plane switch leaves every plane's zoom and pan as it was.
func TestZoomPanPerViewAndPlane(t *testing.T) {
	w := New(Options{})
	d := w.OpenVolume(testVolume(), "ct")
	views, err := d.SetQuad(true)
	if err != nil || len(views) != 3 {
		t.Fatalf("quad: %d views, %v", len(views), err)
	}
	planes := []volume.Plane{volume.Axial, volume.Coronal, volume.Sagittal}
	for i, v := range views {
		for _, p := range planes {
			if z := v.ZoomPan(p); z != (ZoomPan{Fitted: true}) {
				t.Errorf("view %d %s: new view not fitted: %+v", i, p, z)
			}
		}
	}
	want := func(i int, p volume.Plane) ZoomPan {
		return ZoomPan{Zoom: float64(1 + i*10 + int(p)), PanX: float64(-i - 1), PanY: float64(int(p) + 5), Fitted: i == 1 && p == volume.Coronal}
	}
	var wg sync.WaitGroup
	for i, v := range views {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100; n++ {
				for _, p := range planes {
					v.SetZoomPan(p, want(i, p))
					v.SetPlane(planes[(n+int(p))%3])
					if got := v.ZoomPan(p); got != want(i, p) {
						t.Errorf("view %d %s: %+v want %+v", i, p, got, want(i, p))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for i, v := range views {
		for _, p := range planes {
			if got := v.ZoomPan(p); got != want(i, p) {
				t.Errorf("view %d %s: %+v want %+v", i, p, got, want(i, p))
			}
		}
	}
	// A plane switch keeps what each plane had; changing the shown plane's
	// zoom leaves the others' alone.
	ax := views[0]
	ax.SetPlane(volume.Coronal)
	ax.SetZoomPan(volume.Coronal, ZoomPan{Zoom: 7, PanX: 3})
	ax.SetPlane(volume.Axial)
	if got := ax.ZoomPan(volume.Axial); got != want(0, volume.Axial) {
		t.Errorf("axial after a switch: %+v want %+v", got, want(0, volume.Axial))
	}
	ax.SetPlane(volume.Coronal)
	if got := ax.ZoomPan(volume.Coronal); got != (ZoomPan{Zoom: 7, PanX: 3}) {
		t.Errorf("coronal back: %+v", got)
	}
	if got := views[1].ZoomPan(volume.Coronal); got != want(1, volume.Coronal) {
		t.Errorf("another view's coronal changed: %+v", got)
	}
}
