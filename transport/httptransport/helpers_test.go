package httptransport_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/transport/transporttest"
)

// memTransport is an http.RoundTripper that calls handlers directly, by
// host, in memory: no sockets and no goroutines, so inside a synctest
// bubble every wait is on the bubble's clock.
type memTransport struct {
	mu    sync.Mutex
	hosts map[string]http.Handler
	// fail, when set, may refuse a request as a dead connection would.
	fail func(*http.Request) error
	seen []seenRequest
}

// seenRequest is a request as it left the client.
type seenRequest struct {
	Host   string
	Path   string
	Header http.Header
	Time   time.Time
}

func newMemTransport(hosts map[string]http.Handler) *memTransport {
	return &memTransport{hosts: hosts}
}

func (m *memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.seen = append(m.seen, seenRequest{Host: req.URL.Host, Path: req.URL.Path, Header: req.Header.Clone(), Time: time.Now()})
	h, fail := m.hosts[req.URL.Host], m.fail
	m.mu.Unlock()
	if fail != nil {
		if err := fail(req); err != nil {
			return nil, err
		}
	}
	if h == nil {
		return nil, fmt.Errorf("dial tcp %s: connection refused", req.URL.Host)
	}
	sreq := req.Clone(ctx)
	sreq.Body = io.NopCloser(bytes.NewReader(body))
	sreq.ContentLength = int64(len(body))
	sreq.RequestURI = req.URL.RequestURI()
	sreq.Host = req.URL.Host
	sreq.RemoteAddr = "192.0.2.1:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, sreq)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
	} else if resp.ContentLength > int64(rec.Body.Len()) {
		// The handler wrote less than it announced: the connection is cut.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(rec.Body.Bytes()), errReader{io.ErrUnexpectedEOF}))
	}
	return resp, nil
}

func (m *memTransport) requests() []seenRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]seenRequest(nil), m.seen...)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// script answers the requests it gets with its steps in turn, repeating
// the last one, and records when each came.
type script struct {
	mu    sync.Mutex
	steps []http.HandlerFunc
	times []time.Time
}

func newScript(steps ...http.HandlerFunc) *script { return &script{steps: steps} }

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := len(s.times)
	s.times = append(s.times, time.Now())
	step := s.steps[min(i, len(s.steps)-1)]
	s.mu.Unlock()
	step(w, r)
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times)
}

// gaps returns the time between consecutive requests.
func (s *script) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(s.times); i++ {
		out = append(out, s.times[i].Sub(s.times[i-1]))
	}
	return out
}

// fail answers with a JSON error body; retryAfter, when not empty, is the
// Retry-After header.
func fail(status int, code transport.Code, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(transport.ErrorBody{Error: transport.ErrorDetail{Code: code, Message: "scripted"}})
	}
}

// bare answers with a status and no body.
func bare(status int, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
	}
}

// ok answers 200 with v as JSON.
func ok(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
}

var heartbeatOK = ok(transport.HeartbeatResponse{IntervalSeconds: 60})

const baseHost = "tms.test"

// newClient returns a client of BaseURL http://tms.test over rt, with
// token "tok" unless cfg says otherwise.
func newClient(t *testing.T, rt http.RoundTripper, cfg httptransport.Config) *httptransport.Client {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + baseHost
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: rt}
	}
	if cfg.Token == "" {
		cfg.Token = "tok"
	}
	c, err := httptransport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// scripted returns a client whose every request goes to s.
func scripted(t *testing.T, s http.Handler, cfg httptransport.Config) *httptransport.Client {
	return newClient(t, newMemTransport(map[string]http.Handler{baseHost: s}), cfg)
}

// faked returns a fake server behind the real handler and a registered
// client of it, over memory.
func faked(t *testing.T, cfg httptransport.Config) (*transporttest.Server, *httptransport.Client, *memTransport) {
	t.Helper()
	srv := transporttest.NewServer(transporttest.Config{})
	h, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: srv})
	if err != nil {
		t.Fatal(err)
	}
	rt := newMemTransport(map[string]http.Handler{baseHost: h})
	cfg.BaseURL = "http://" + baseHost
	cfg.HTTPClient = &http.Client{Transport: rt}
	c, err := httptransport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(t.Context(), &transport.RegisterRequest{
		Enrollment: transporttest.DefaultEnrollment, Serial: "SN1", Model: "A920",
	}); err != nil {
		t.Fatal(err)
	}
	return srv, c, rt
}

// asError returns err as a *transport.Error or fails t.
func asError(t *testing.T, err error) *transport.Error {
	t.Helper()
	var e *transport.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want a *transport.Error", err, err)
	}
	return e
}

// within fails t unless lo <= d <= hi.
func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Errorf("%s = %s, want between %s and %s", what, d, lo, hi)
	}
}
