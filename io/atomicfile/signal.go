package atomicfile

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// HandleSignals makes SIGINT, SIGTERM and SIGHUP remove the temporary files of
// saves in progress (RemoveTemps), then end the process by the same signal, so the
// caller sees the conventional status (128 + the signal's number from a shell).
// A signal the process was started with ignored (SIGHUP under nohup, SIGINT in a
// shell's background job) stays ignored: catching it would turn nohup's hangup
// into a death. It returns a function that stops the handling.
func HandleSignals() (stop func()) {
	ch := make(chan os.Signal, 1)
	var sigs []os.Signal
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	if len(sigs) == 0 {
		return func() {}
	}
	signal.Notify(ch, sigs...)
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			// A commit stuck in a hung file system must not make the process
			// unkillable: clean up for at most a few seconds.
			cleaned := make(chan struct{})
			go func() { RemoveTemps(); close(cleaned) }()
			select {
			case <-cleaned:
			case <-time.After(5 * time.Second):
			}
			signal.Reset(sigs...)
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Signal(sig) // the default action now: die of it
			}
			time.Sleep(time.Second) // where re-raising is not possible
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		case <-quit:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}
