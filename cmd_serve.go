package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/medsa/medsa/model"
)

// serverFlags are the inference-server flags of segment and bench (docs/SERVER.md).
type serverFlags struct {
	url, caFile string
	timeout     time.Duration
}

const usageServerFlags = `  --server URL encodes on an Open Inference Protocol (KServe v2) server such as Triton (URL = its HTTP root,
  e.g. http://127.0.0.1:8000, or its gRPC endpoint, grpc://127.0.0.1:8001 or grpcs:// with TLS; default
  $MEDSA_SERVER; "off" = never); the decoder stays local. Token from
  $MEDSA_SERVER_TOKEN, extra CA from --server-ca or $MEDSA_SERVER_CA. An unreachable, slow or wrong server
  falls back to the local encoder, said on stderr with the reason.`

func addServerFlags(fs *flag.FlagSet) *serverFlags {
	s := &serverFlags{}
	fs.StringVar(&s.url, "server", "", "inference server URL (default $MEDSA_SERVER)")
	fs.StringVar(&s.caFile, "server-ca", "", "PEM file of extra root CAs for an https server")
	fs.DurationVar(&s.timeout, "server-timeout", 0, "give up on the server after this long per encode (default 10s)")
	return s
}

func (s *serverFlags) apply(o *model.Options) {
	o.Server, o.ServerCAFile, o.ServerTimeout = s.url, s.caFile, s.timeout
}

// reportServer prints where the encoder ran: on the server (stdout) or, after
// a fallback, the reason (stderr). Nothing without a server.
func reportServer(eng *model.Engine) {
	st := eng.ServerStatus()
	if st.URL == "" {
		return
	}
	if st.State == model.ServerUp && st.LocalFallbacks == 0 {
		fmt.Printf("encoder: %s; %d encodes, %d bytes received\n", st.Text, st.RemoteEncodes, st.WireBytes)
		return
	}
	fmt.Fprintf(os.Stderr, "medsa: %s (%d encodes on the server, %d locally)\n", st.Text, st.RemoteEncodes, st.LocalFallbacks)
}

// waitServer waits for the first connection attempt (bounded), so timings
// don't include it.
func waitServer(eng *model.Engine, d time.Duration) model.ServerStatus {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return eng.WaitServer(ctx)
}
