package interaction

import (
	"sync"
	"testing"

	"github.com/medsa/medsa/io/volume"
)

// TestConcurrentPromptEditsAtomic: AddPoint and SetBox read and replace the
// prompts under one hold of the lock, so edits from two goroutines are never
// lost (each used to read, unlock, then write what it had read).
func TestConcurrentPromptEditsAtomic(t *testing.T) {
	s := NewSession(testVol(64, 64, 2, [3]float64{1, 1, 1}))
	k := SliceKey{volume.Axial, 1}
	const n = 300
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := s.AddPoint(k, float64(i%64), float64(g), true); err != nil {
					t.Error(err)
				}
				if i%50 == 0 {
					s.SetBox(k, 1, 1, 10+float64(g), 10)
				}
			}
		}()
	}
	wg.Wait()
	p, _ := s.Prompts(k)
	if len(p.Points) != 2*n || p.Box == nil {
		t.Errorf("%d points (want %d), box %v", len(p.Points), 2*n, p.Box)
	}
}
