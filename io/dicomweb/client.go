// Package dicomweb talks to a PACS over DICOMweb: QIDO-RS to search, WADO-RS to
// retrieve a series into a verified local cache, STOW-RS to store new objects
// (DICOM-SEG). Credentials come from a servers file or the environment and never
// appear in errors or logs.
package dicomweb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Server is one configured DICOMweb root and how to authenticate to it.
type Server struct {
	URL      string `json:"url"`                // DICOMweb root, e.g. http://host:8042/dicom-web
	User     string `json:"user,omitempty"`     // HTTP basic
	Password string `json:"password,omitempty"` // HTTP basic
	Token    string `json:"token,omitempty"`    // bearer
	CAFile   string `json:"ca_file,omitempty"`  // extra root certificates (PEM)
}

// Config is the servers file: $MEDSA_DICOMWEB_CONFIG, else $XDG_CONFIG_HOME/medsa/dicomweb.json
// (~/.config/medsa/dicomweb.json).
type Config struct {
	Servers []Server `json:"servers"`
	path    string
}

// ConfigPath is where the servers file is looked for.
func ConfigPath() string {
	if p := os.Getenv("MEDSA_DICOMWEB_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "medsa", "dicomweb.json")
}

// LoadConfig reads the servers file at path; a missing file is an empty config. A file
// that others can read is refused: it holds passwords.
func LoadConfig(path string) (*Config, error) {
	c := &Config{path: path}
	if path == "" {
		return c, nil
	}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("servers file %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("servers file %s is readable by others (mode %04o): it holds credentials; run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("servers file %s: %w", path, err)
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("servers file %s: %w", path, err)
	}
	for i, s := range c.Servers {
		if _, err := url.Parse(s.URL); err != nil || s.URL == "" {
			return nil, fmt.Errorf("servers file %s: server %d: the url does not parse (not shown: it may hold credentials)", path, i+1)
		}
	}
	return c, nil
}

// Lookup returns the server whose URL is the longest prefix of u, with the environment's
// credentials (MEDSA_DICOMWEB_USER + MEDSA_DICOMWEB_PASSWORD, or MEDSA_DICOMWEB_TOKEN)
// taking precedence. Without a match, u itself is the root.
func (c *Config) Lookup(u string) Server {
	best := Server{URL: strings.TrimRight(u, "/")}
	n := -1
	for _, s := range c.Servers {
		root := strings.TrimRight(s.URL, "/")
		if (u == root || strings.HasPrefix(u, root+"/")) && len(root) > n {
			best, n = s, len(root)
			best.URL = root
		}
	}
	if t := os.Getenv("MEDSA_DICOMWEB_TOKEN"); t != "" {
		best.Token, best.User, best.Password = t, "", ""
	} else if usr := os.Getenv("MEDSA_DICOMWEB_USER"); usr != "" {
		best.User, best.Password, best.Token = usr, os.Getenv("MEDSA_DICOMWEB_PASSWORD"), ""
	}
	return best
}

// Client is a DICOMweb client for one server.
type Client struct {
	Root     string // DICOMweb root without the trailing slash
	srv      Server
	HTTP     *http.Client
	Retries  int           // attempts after the first on 5xx, resets and timeouts
	Backoff  time.Duration // first wait; doubles each retry
	Parallel int           // concurrent instance retrievals
}

// NewClient builds a client for a server (see Config.Lookup).
func NewClient(s Server) (*Client, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("DICOMweb root %q: want http[s]://host[:port]/path", redact(s.URL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("DICOMweb root %s: credentials in the URL are refused; put them in %s or MEDSA_DICOMWEB_USER/PASSWORD", redact(s.URL), ConfigPath())
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file for %s: %w", s.URL, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", s.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{Root: strings.TrimRight(s.URL, "/"), srv: s, HTTP: &http.Client{Transport: tr},
		Retries: 3, Backoff: 250 * time.Millisecond, Parallel: 4}, nil
}

// redact drops any user:password from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// HTTPError is a server's refusal, with what to do about it.
type HTTPError struct {
	Op     string // e.g. "search studies"
	URL    string // without credentials
	Status int
	Body   string // the start of the server's answer
}

func (e *HTTPError) Error() string {
	why := ""
	switch e.Status {
	case http.StatusUnauthorized:
		why = ": authentication failed; check the user/password or token for this server (servers file " + ConfigPath() + " or MEDSA_DICOMWEB_*)"
	case http.StatusForbidden:
		why = ": the server refuses this account access"
	case http.StatusNotFound:
		why = ": not on the server (wrong study/series UID or DICOMweb root?)"
	case http.StatusConflict:
		why = ": the server refused the object (conflict)"
	}
	body := ""
	if e.Body != "" {
		body = " (" + e.Body + ")"
	}
	return fmt.Sprintf("%s: %s: HTTP %d %s%s%s", e.Op, e.URL, e.Status, http.StatusText(e.Status), why, body)
}

// retryable reports failures worth another try: 5xx answers, resets, refused
// connections (a restarting server), timeouts.
func retryable(status int, transport error) bool {
	if transport != nil {
		if errors.Is(transport, context.Canceled) {
			return false
		}
		var ne net.Error
		return errors.Is(transport, syscall.ECONNRESET) || errors.Is(transport, syscall.ECONNREFUSED) ||
			errors.Is(transport, io.ErrUnexpectedEOF) || errors.Is(transport, io.EOF) || (errors.As(transport, &ne) && ne.Timeout())
	}
	return status >= 500 && status != http.StatusNotImplemented
}

// do sends a request built by mk (called again for each retry) and returns a 2xx response;
// the caller closes its body.
func (c *Client) do(ctx context.Context, op string, mk func() (*http.Request, error)) (*http.Response, error) {
	wait := c.Backoff
	for attempt := 0; ; attempt++ {
		req, err := mk()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		req = req.WithContext(ctx)
		switch {
		case c.srv.Token != "":
			req.Header.Set("Authorization", "Bearer "+c.srv.Token)
		case c.srv.User != "":
			req.SetBasicAuth(c.srv.User, c.srv.Password)
		}
		resp, terr := c.HTTP.Do(req)
		status := 0
		if terr == nil {
			if resp.StatusCode/100 == 2 {
				return resp, nil
			}
			status = resp.StatusCode
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			resp.Body.Close()
			err = &HTTPError{Op: op, URL: redact(req.URL.String()), Status: status, Body: strings.TrimSpace(string(b))}
		} else {
			terr = unwrapURLError(terr)
			err = fmt.Errorf("%s: %s: %w", op, redact(req.URL.String()), terr)
			if errors.Is(terr, syscall.ECONNREFUSED) {
				err = fmt.Errorf("%w (is the server running?)", err)
			}
		}
		if attempt >= c.Retries || ctx.Err() != nil || !retryable(status, terr) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// unwrapURLError drops *url.Error's repeated method and URL (we print the URL ourselves).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// get fetches path (relative to the root) with an Accept header.
func (c *Client) get(ctx context.Context, op, path string, q url.Values, accept string) (*http.Response, error) {
	u := c.Root + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.do(ctx, op, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err == nil {
			req.Header.Set("Accept", accept)
		}
		return req, err
	})
}
