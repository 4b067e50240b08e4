// Package oip is a small client of the Open Inference Protocol (KServe v2)
// over gRPC (grpc:// and grpcs:// URLs; grpc.go) or HTTP/REST, the protocol Triton, KServe, MLServer and OpenVINO Model
// Server speak: server and model readiness, model metadata, Triton's model
// configuration extension, and inference with the binary tensor data
// extension (tensors as raw little-endian bytes after a JSON header whose
// length is in the Inference-Header-Content-Length header); over gRPC the
// tensors are raw_input_contents / raw_output_contents.
//
// The bearer token is sent in the Authorization header (gRPC: authorization
// metadata) and never appears in
// an error or a log line.
package oip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client.
type Config struct {
	// URL is the server's HTTP root, e.g. http://127.0.0.1:8000 or https://gpu.example.org,
	// or its gRPC endpoint, grpc://host:port (grpcs:// = with TLS).
	URL    string
	Token  string // bearer token; "" = none
	CAFile string // PEM file of extra root CAs (TLS), added to the system roots
	// DialTimeout bounds connecting (TCP + TLS); 0 = 3 s. Requests are bounded by their context.
	DialTimeout time.Duration
}

// Client talks to one server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	g     *grpcTransport // non-nil: gRPC
}

// ErrUnauthorized is wrapped by errors of requests the server refused for
// their credentials (HTTP 401 or 403).
var ErrUnauthorized = errors.New("unauthorized")

// ErrNotFound is wrapped by errors of requests for a model or endpoint the
// server does not have (HTTP 404).
var ErrNotFound = errors.New("not found")

// Error is a request the server answered with an error status.
type Error struct {
	Server string // the server's root URL
	Op     string // what was asked, e.g. "infer medsa-tiny-encoder"
	Status int    // HTTP status (gRPC: the HTTP status of the same meaning)
	GRPC   string // gRPC status code, e.g. "Unavailable"; "" over HTTP
	Msg    string // the server's message
}

func (e *Error) Error() string {
	s := fmt.Sprintf("server %s: %s: HTTP %d", e.Server, e.Op, e.Status)
	switch e.GRPC {
	case "":
	case "OK": // answered, but not ready
		s = fmt.Sprintf("server %s: %s", e.Server, e.Op)
	default:
		s = fmt.Sprintf("server %s: %s: gRPC %s", e.Server, e.Op, e.GRPC)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		s += " (the server refused the credentials: check the token, MEDSA_SERVER_TOKEN)"
	}
	return s
}

// Unwrap maps statuses onto ErrUnauthorized and ErrNotFound.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

// New checks the URL and builds the HTTP client (TLS with the system roots
// plus CAFile when given).
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: want http:// or https:// (the HTTP root) or grpc://host:port (%w)", cfg.URL, err)
	}
	switch u.Scheme {
	case "http", "https", "grpc", "grpcs":
	default:
		return nil, fmt.Errorf("server URL %q: want http:// or https:// (the server's HTTP root) or grpc:// or grpcs://host:port", cfg.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q has no host", cfg.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("server URL %s: credentials in the URL are not accepted; give a token in MEDSA_SERVER_TOKEN", u.Redacted())
	}
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = 3 * time.Second
	}
	if u.Scheme == "grpc" || u.Scheme == "grpcs" {
		if u.Port() == "" || strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("server URL %q: a gRPC endpoint is grpc://host:port (Triton's default port is 8001)", cfg.URL)
		}
		g, err := newGRPC(u.Host, u.Scheme == "grpcs", cfg.CAFile, dial)
		if err != nil {
			return nil, fmt.Errorf("server URL %s: %w", u, err)
		}
		return &Client{base: u, token: cfg.Token, g: g}, nil
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: dial,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	if u.Scheme == "https" {
		tc, err := tlsConfig(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return &Client{base: u, token: cfg.Token, hc: &http.Client{Transport: tr}}, nil
}

// URL is the server's root URL.
func (c *Client) URL() string { return c.base.String() }

// GRPC reports whether the client speaks gRPC (else HTTP/REST).
func (c *Client) GRPC() bool { return c.g != nil }

// Close releases idle connections (gRPC: closes the connection).
func (c *Client) Close() {
	if c.g != nil {
		_ = c.g.conn.Close()
		return
	}
	c.hc.CloseIdleConnections()
}

func (c *Client) endpoint(parts ...string) string {
	u := *c.base
	p := strings.TrimRight(u.Path, "/")
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	u.Path = p
	u.RawPath = ""
	return u.String()
}

// do sends one request; a non-2xx answer becomes an *Error with the server's message.
func (c *Client) do(ctx context.Context, op, method, endpoint string, hdr http.Header, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, rd)
	if err != nil {
		return nil, fmt.Errorf("server %s: %s: %w", c.base, op, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// url.Error names the method and URL, never the headers (the token).
		if ce := ctx.Err(); ce != nil {
			return nil, fmt.Errorf("server %s: %s: %w", c.base, op, ce)
		}
		return nil, fmt.Errorf("server %s: %s: %w", c.base, op, errors.Unwrap(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(string(b))
		var ej struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &ej) == nil && ej.Error != "" {
			msg = ej.Error
		}
		return nil, &Error{Server: c.base.String(), Op: op, Status: resp.StatusCode, Msg: msg}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, op string, v any, parts ...string) error {
	resp, err := c.do(ctx, op, http.MethodGet, c.endpoint(parts...), nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if v == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("server %s: %s: bad JSON answer: %w", c.base, op, err)
	}
	return nil
}

// ServerReady is GET /v2/health/ready (nil when ready).
func (c *Client) ServerReady(ctx context.Context) error {
	if c.g != nil {
		return c.grpcServerReady(ctx)
	}
	return c.getJSON(ctx, "server ready", nil, "v2", "health", "ready")
}

// ModelReady is GET /v2/models/NAME[/versions/V]/ready (nil when ready).
func (c *Client) ModelReady(ctx context.Context, name, version string) error {
	if c.g != nil {
		return c.grpcModelReady(ctx, name, version)
	}
	p := []string{"v2", "models", name}
	if version != "" {
		p = append(p, "versions", version)
	}
	return c.getJSON(ctx, "model "+name+" ready", nil, append(p, "ready")...)
}

// TensorMetadata describes one input or output of a model.
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the answer of GET /v2/models/NAME.
type ModelMetadata struct {
	Name       string           `json:"name"`
	Versions   []string         `json:"versions"`
	Platform   string           `json:"platform"`
	Inputs     []TensorMetadata `json:"inputs"`
	Outputs    []TensorMetadata `json:"outputs"`
	Parameters map[string]any   `json:"parameters,omitempty"` // not in the base protocol; some servers add it
}

// ModelMetadata is GET /v2/models/NAME.
func (c *Client) ModelMetadata(ctx context.Context, name string) (*ModelMetadata, error) {
	if c.g != nil {
		return c.grpcModelMetadata(ctx, name)
	}
	var m ModelMetadata
	if err := c.getJSON(ctx, "model "+name+" metadata", &m, "v2", "models", name); err != nil {
		return nil, err
	}
	return &m, nil
}

// ModelParameters returns the string parameters of the model's configuration
// (Triton's model configuration extension, GET /v2/models/NAME/config:
// parameters { key: ... value: { string_value: ... } }). Servers without the
// extension answer 404 (the error wraps ErrNotFound).
func (c *Client) ModelParameters(ctx context.Context, name string) (map[string]string, error) {
	if c.g != nil {
		return c.grpcModelParameters(ctx, name)
	}
	var cfg struct {
		Parameters map[string]struct {
			StringValue string `json:"string_value"`
		} `json:"parameters"`
	}
	if err := c.getJSON(ctx, "model "+name+" config", &cfg, "v2", "models", name, "config"); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(cfg.Parameters))
	for k, v := range cfg.Parameters {
		out[k] = v.StringValue
	}
	return out, nil
}

// Tensor is one input or output with its data as raw little-endian bytes.
type Tensor struct {
	Name     string
	Datatype string // "FP32", "FP16", ...
	Shape    []int64
	Data     []byte
}

// Elements is the product of Shape.
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Float32s decodes FP32 or FP16 data to float32.
func (t *Tensor) Float32s() ([]float32, error) {
	n := t.Elements()
	switch t.Datatype {
	case "FP32":
		if int64(len(t.Data)) != 4*n {
			return nil, fmt.Errorf("output %s: %d bytes for %d FP32 values", t.Name, len(t.Data), n)
		}
		return BytesToFloat32(t.Data), nil
	case "FP16":
		if int64(len(t.Data)) != 2*n {
			return nil, fmt.Errorf("output %s: %d bytes for %d FP16 values", t.Name, len(t.Data), n)
		}
		return HalfBytesToFloat32(t.Data), nil
	}
	return nil, fmt.Errorf("output %s: datatype %s, want FP32 or FP16", t.Name, t.Datatype)
}

// InferResult is an inference answer.
type InferResult struct {
	Outputs   []Tensor
	WireBytes int64 // bytes of the response body (header + tensors)
}

// Output returns the output called name.
func (r *InferResult) Output(name string) (*Tensor, error) {
	for i := range r.Outputs {
		if r.Outputs[i].Name == name {
			return &r.Outputs[i], nil
		}
	}
	return nil, fmt.Errorf("answer has no output %q", name)
}

type inferInput struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type inferOutputReq struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type inferRequest struct {
	Inputs  []inferInput     `json:"inputs"`
	Outputs []inferOutputReq `json:"outputs,omitempty"`
}

type inferOutput struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       []any          `json:"data,omitempty"`
}

type inferResponse struct {
	ModelName    string        `json:"model_name"`
	ModelVersion string        `json:"model_version"`
	Outputs      []inferOutput `json:"outputs"`
	Error        string        `json:"error"`
}

// EncodeInferRequest builds the body of a binary-extension request: the JSON
// header (its length is returned) followed by the inputs' bytes.
func EncodeInferRequest(inputs []Tensor, outputs []string) ([]byte, int, error) {
	req := inferRequest{}
	size := 0
	for _, in := range inputs {
		req.Inputs = append(req.Inputs, inferInput{Name: in.Name, Shape: in.Shape, Datatype: in.Datatype,
			Parameters: map[string]any{"binary_data_size": len(in.Data)}})
		size += len(in.Data)
	}
	for _, o := range outputs {
		req.Outputs = append(req.Outputs, inferOutputReq{Name: o, Parameters: map[string]any{"binary_data": true}})
	}
	hdr, err := json.Marshal(req)
	if err != nil {
		return nil, 0, err
	}
	body := make([]byte, 0, len(hdr)+size)
	body = append(body, hdr...)
	for _, in := range inputs {
		body = append(body, in.Data...)
	}
	return body, len(hdr), nil
}

// Infer is POST /v2/models/NAME[/versions/V]/infer with the binary tensor
// data extension for the inputs and the requested outputs.
func (c *Client) Infer(ctx context.Context, model, version string, inputs []Tensor, outputs []string) (*InferResult, error) {
	if c.g != nil {
		return c.grpcInfer(ctx, model, version, inputs, outputs)
	}
	op := "infer " + model
	body, hlen, err := EncodeInferRequest(inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("server %s: %s: %w", c.base, op, err)
	}
	p := []string{"v2", "models", model}
	if version != "" {
		p = append(p, "versions", version)
	}
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Inference-Header-Content-Length", strconv.Itoa(hlen))
	resp, err := c.do(ctx, op, http.MethodPost, c.endpoint(append(p, "infer")...), hdr, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		if ce := ctx.Err(); ce != nil {
			return nil, fmt.Errorf("server %s: %s: %w", c.base, op, ce)
		}
		return nil, fmt.Errorf("server %s: %s: read answer: %w", c.base, op, err)
	}
	res, err := DecodeInferResponse(raw, resp.Header.Get("Inference-Header-Content-Length"))
	if err != nil {
		return nil, fmt.Errorf("server %s: %s: %w", c.base, op, err)
	}
	return res, nil
}

// DecodeInferResponse parses an inference answer: a JSON header of hlen
// bytes ("" = the whole body is JSON) followed by the binary outputs in order.
func DecodeInferResponse(raw []byte, hlen string) (*InferResult, error) {
	n := len(raw)
	if hlen != "" {
		v, err := strconv.Atoi(hlen)
		if err != nil || v < 0 || v > len(raw) {
			return nil, fmt.Errorf("bad Inference-Header-Content-Length %q for a %d-byte answer", hlen, len(raw))
		}
		n = v
	}
	var r inferResponse
	if err := json.Unmarshal(raw[:n], &r); err != nil {
		return nil, fmt.Errorf("bad JSON header: %w", err)
	}
	if r.Error != "" {
		return nil, errors.New(r.Error)
	}
	res := &InferResult{WireBytes: int64(len(raw))}
	off := n
	for _, o := range r.Outputs {
		t := Tensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape}
		if sz, ok := o.Parameters["binary_data_size"]; ok {
			f, ok := sz.(float64)
			if !ok || f < 0 || off+int(f) > len(raw) {
				return nil, fmt.Errorf("output %s: binary_data_size %v past the end of the answer (%d bytes)", o.Name, sz, len(raw))
			}
			t.Data = raw[off : off+int(f)]
			off += int(f)
		} else if o.Data != nil {
			b, err := jsonData(o)
			if err != nil {
				return nil, err
			}
			t.Data = b
		}
		res.Outputs = append(res.Outputs, t)
	}
	return res, nil
}

// jsonData turns a JSON "data" array of FP32 values into bytes (servers that
// ignore the binary request).
func jsonData(o inferOutput) ([]byte, error) {
	if o.Datatype != "FP32" {
		return nil, fmt.Errorf("output %s: JSON data of type %s not supported (ask for binary data)", o.Name, o.Datatype)
	}
	f := make([]float32, 0, len(o.Data))
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case float64:
			f = append(f, float32(x))
		case []any:
			for _, y := range x {
				if err := walk(y); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("output %s: non-numeric JSON data", o.Name)
		}
		return nil
	}
	if err := walk(o.Data); err != nil {
		return nil, err
	}
	return Float32ToBytes(f), nil
}
