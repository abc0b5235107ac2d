package httptransport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/verify"
)

// handlerEnv is the real handler over a fake server with one registered
// device and one published release.
type handlerEnv struct {
	srv   *transporttest.Server
	h     http.Handler
	token string
	rel   *transporttest.Release
}

func newHandlerEnv(t testing.TB, maxRequest int64) *handlerEnv {
	t.Helper()
	srv := transporttest.NewServer(transporttest.Config{})
	h, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: srv, MaxRequestSize: maxRequest})
	if err != nil {
		t.Fatal(err)
	}
	env := &handlerEnv{srv: srv, h: h}
	env.reregister(t)
	keys, err := transporttest.NewKeys(time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := keys.NewRelease(verify.Manifest{Component: "app", Version: "1.0.0"}, testBytes(10000))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{}); err != nil {
		t.Fatal(err)
	}
	env.rel = rel
	return env
}

func (e *handlerEnv) reregister(t testing.TB) {
	t.Helper()
	resp, err := e.srv.Client().Register(t.Context(), &transport.RegisterRequest{
		Enrollment: transporttest.DefaultEnrollment, Serial: "SN1", Model: "A920",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.token = resp.Token
}

func (e *handlerEnv) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// errorCode decodes an error body strictly and returns its code.
func errorCode(t *testing.T, w *httptest.ResponseRecorder) transport.Code {
	t.Helper()
	var body transport.ErrorBody
	if err := jsonwire.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	return body.Error.Code
}

func TestHandlerJSON(t *testing.T) {
	const limit = 1024
	env := newHandlerEnv(t, limit)
	register := `{"enrollment":"` + transporttest.DefaultEnrollment + `","serial":"SN2","model":"A920"}`
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		auth        string // Authorization header; "ok" means the device's token
		body        io.Reader
		wantStatus  int
		wantCode    transport.Code // for errors
	}{
		{"register", "POST", transport.PathRegister, "application/json", "", strings.NewReader(register), 200, ""},
		{"charset utf-8", "POST", transport.PathRegister, "application/json; charset=utf-8", "", strings.NewReader(register), 200, ""},
		{"heartbeat", "POST", transport.PathHeartbeat, "application/json", "ok", strings.NewReader(`{"seq":1}`), 200, ""},
		{"lower-case bearer", "POST", transport.PathHeartbeat, "application/json", "bearer", strings.NewReader(`{"seq":1}`), 200, ""},
		{"check", "POST", transport.PathCheck, "application/json", "ok", strings.NewReader(`{"model":"A920","components":[]}`), 200, ""},
		{"report", "POST", transport.PathReport, "application/json", "ok", strings.NewReader(`{"id":"r1","release":"","to":"","phase":"","outcome":"refused","reason":"ok","at":"2026-01-01T00:00:00Z"}`), 200, ""},
		{"oversize", "POST", transport.PathHeartbeat, "application/json", "ok", strings.NewReader(`{"seq":1,"state":"` + strings.Repeat("x", limit) + `"}`), 413, transport.CodeTooLarge},
		{"oversize, length unknown", "POST", transport.PathHeartbeat, "application/json", "ok", io.MultiReader(strings.NewReader(`{"seq":1,"state":"` + strings.Repeat("x", limit) + `"}`)), 413, transport.CodeTooLarge},
		{"unknown field", "POST", transport.PathHeartbeat, "application/json", "ok", strings.NewReader(`{"seq":1,"extra":2}`), 400, transport.CodeBadRequest},
		{"trailing data", "POST", transport.PathHeartbeat, "application/json", "ok", strings.NewReader(`{"seq":1}{"seq":2}`), 400, transport.CodeBadRequest},
		{"empty body", "POST", transport.PathHeartbeat, "application/json", "ok", strings.NewReader(``), 400, transport.CodeBadRequest},
		{"wrong type", "POST", transport.PathHeartbeat, "application/json", "ok", strings.NewReader(`{"seq":"one"}`), 400, transport.CodeBadRequest},
		{"invalid field", "POST", transport.PathHeartbeat, "application/json", "ok", strings.NewReader(`{"seq":1,"battery":{"percent":101}}`), 400, transport.CodeBadRequest},
		{"text/plain", "POST", transport.PathHeartbeat, "text/plain", "ok", strings.NewReader(`{"seq":1}`), 415, transport.CodeBadRequest},
		{"no content type", "POST", transport.PathHeartbeat, "", "ok", strings.NewReader(`{"seq":1}`), 415, transport.CodeBadRequest},
		{"latin-1", "POST", transport.PathHeartbeat, "application/json; charset=latin1", "ok", strings.NewReader(`{"seq":1}`), 415, transport.CodeBadRequest},
		{"no token", "POST", transport.PathHeartbeat, "application/json", "", strings.NewReader(`{"seq":1}`), 401, transport.CodeUnauthorized},
		{"bad token", "POST", transport.PathCheck, "application/json", "Bearer forged", strings.NewReader(`{"model":"A920","components":[]}`), 401, transport.CodeUnauthorized},
		{"basic auth", "POST", transport.PathReport, "application/json", "Basic dTpw", strings.NewReader(`{}`), 401, transport.CodeUnauthorized},
		{"wrong enrollment", "POST", transport.PathRegister, "application/json", "", strings.NewReader(`{"enrollment":"x","serial":"SN2","model":"A920"}`), 401, transport.CodeUnauthorized},
		{"GET on a POST path", "GET", transport.PathHeartbeat, "", "ok", nil, 405, transport.CodeBadRequest},
		{"POST on artifacts", "POST", transport.PathArtifacts + someDigest, "application/json", "ok", strings.NewReader(`{}`), 405, transport.CodeBadRequest},
		{"unknown path", "GET", "/v2/heartbeat", "", "", nil, 404, transport.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, tt.body)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			switch tt.auth {
			case "ok":
				r.Header.Set("Authorization", "Bearer "+env.token)
			case "bearer":
				r.Header.Set("Authorization", "bearer "+env.token)
			case "":
			default:
				r.Header.Set("Authorization", tt.auth)
			}
			w := env.serve(r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if tt.wantStatus == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge: %q", w.Header().Get("WWW-Authenticate"))
			}
			if tt.wantStatus == 405 && w.Header().Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			if tt.wantCode != "" {
				if got := errorCode(t, w); got != tt.wantCode {
					t.Fatalf("error code %s, want %s", got, tt.wantCode)
				}
			}
		})
	}
}

func TestHandlerArtifacts(t *testing.T) {
	env := newHandlerEnv(t, 0)
	data := env.rel.Artifact
	etag := `"` + env.rel.Digest() + `"`
	tests := []struct {
		name       string
		method     string
		digest     string
		header     map[string]string
		noToken    bool
		wantStatus int
		wantBody   []byte
		wantCode   transport.Code
	}{
		{"whole", "GET", env.rel.Digest(), nil, false, 200, data, ""},
		{"range", "GET", env.rel.Digest(), map[string]string{"Range": "bytes=100-199"}, false, 206, data[100:200], ""},
		{"open range", "GET", env.rel.Digest(), map[string]string{"Range": "bytes=9990-"}, false, 206, data[9990:], ""},
		{"If-Range current", "GET", env.rel.Digest(), map[string]string{"Range": "bytes=0-9", "If-Range": etag}, false, 206, data[:10], ""},
		{"If-Range stale", "GET", env.rel.Digest(), map[string]string{"Range": "bytes=0-9", "If-Range": `"sha256:old"`}, false, 200, data, ""},
		{"If-None-Match", "GET", env.rel.Digest(), map[string]string{"If-None-Match": etag}, false, 304, nil, ""},
		{"past the end", "GET", env.rel.Digest(), map[string]string{"Range": "bytes=10000-10010"}, false, 416, nil, ""},
		{"HEAD", "HEAD", env.rel.Digest(), nil, false, 200, nil, ""},
		{"unknown", "GET", someDigest, nil, false, 404, nil, transport.CodeNotFound},
		{"bad digest", "GET", "sha256:ABC", nil, false, 400, nil, transport.CodeBadRequest},
		{"no token", "GET", env.rel.Digest(), nil, true, 401, nil, transport.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, transport.PathArtifacts+tt.digest, nil)
			if !tt.noToken {
				r.Header.Set("Authorization", "Bearer "+env.token)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := env.serve(r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %.200s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantCode != "" {
				if got := errorCode(t, w); got != tt.wantCode {
					t.Fatalf("error code %s, want %s", got, tt.wantCode)
				}
				return
			}
			if tt.wantBody != nil && !bytes.Equal(w.Body.Bytes(), tt.wantBody) {
				t.Fatalf("body of %d bytes, want %d", w.Body.Len(), len(tt.wantBody))
			}
			if w.Code < 300 {
				if got := w.Header().Get("ETag"); got != etag {
					t.Errorf("ETag %q, want %q", got, etag)
				}
				if tt.method == "HEAD" && (w.Body.Len() != 0 || w.Header().Get("Content-Length") != "10000") {
					t.Errorf("HEAD: body %d bytes, Content-Length %q", w.Body.Len(), w.Header().Get("Content-Length"))
				}
			}
		})
	}
}

// stubService answers every call with its fields.
type stubService struct {
	err      error
	content  *transport.ArtifactContent
	nilReply bool
}

func (s *stubService) Register(context.Context, *transport.RegisterRequest) (*transport.RegisterResponse, error) {
	if s.err != nil || s.nilReply {
		return nil, s.err
	}
	return &transport.RegisterResponse{DeviceID: "d1", Token: "t1"}, nil
}

func (s *stubService) Authenticate(_ context.Context, tok string) (string, error) {
	if tok != "t1" {
		return "", transport.ErrUnauthorized
	}
	return "d1", nil
}

func (s *stubService) Heartbeat(context.Context, string, *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	if s.err != nil || s.nilReply {
		return nil, s.err
	}
	return &transport.HeartbeatResponse{IntervalSeconds: 60}, nil
}

func (s *stubService) Check(context.Context, string, *transport.CheckRequest) (*transport.CheckResponse, error) {
	return nil, s.err
}

func (s *stubService) Artifact(context.Context, string, string) (*transport.ArtifactContent, error) {
	return s.content, s.err
}

func (s *stubService) Report(context.Context, string, *transport.ReportRequest) (*transport.ReportResponse, error) {
	return nil, s.err
}

func TestHandlerErrors(t *testing.T) {
	tests := []struct {
		name           string
		svc            *stubService
		wantStatus     int
		wantCode       transport.Code
		wantRetryAfter string
		wantLogged     bool
	}{
		{"protocol error", &stubService{err: transport.Errorf(transport.CodeConflict, "busy")}, 409, transport.CodeConflict, "", false},
		{"sentinel", &stubService{err: transport.ErrForbidden}, 403, transport.CodeForbidden, "", false},
		{"retry after rounded up", &stubService{err: &transport.Error{Code: transport.CodeUnavailable, RetryAfter: 1500 * time.Millisecond}}, 503, transport.CodeUnavailable, "2", false},
		{"retry after whole", &stubService{err: &transport.Error{Code: transport.CodeRateLimited, RetryAfter: 30 * time.Second}}, 429, transport.CodeRateLimited, "30", false},
		{"status override", &stubService{err: &transport.Error{Status: 502, Code: transport.CodeUnavailable}}, 502, transport.CodeUnavailable, "", false},
		{"internal", &stubService{err: errors.New("db at 10.1.2.3: password expired")}, 500, transport.CodeInternal, "", true},
		{"sentinel wrapped with a DSN", &stubService{err: fmt.Errorf("query on postgres://user:password@10.1.2.3/db: %w", transport.ErrNotFound)},
			404, transport.CodeNotFound, "", false},
		{"internal *Error", &stubService{err: transport.Errorf(transport.CodeInternal, "db at 10.1.2.3 down")}, 500, transport.CodeInternal, "", true},
		{"unknown code", &stubService{err: &transport.Error{Status: 418, Code: "teapot", Message: "password is 10.1.2.3"}},
			500, transport.CodeInternal, "", true},
		{"nil reply", &stubService{nilReply: true}, 500, transport.CodeInternal, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h, err := httptransport.NewHandler(httptransport.HandlerConfig{
				Service: tt.svc,
				Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", transport.PathHeartbeat, strings.NewReader(`{"seq":1}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer t1")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := errorCode(t, w); got != tt.wantCode {
				t.Fatalf("code %s, want %s", got, tt.wantCode)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetryAfter)
			}
			if b := w.Body.String(); strings.Contains(b, "password") || strings.Contains(b, "10.1.2.3") || strings.Contains(b, "postgres") {
				t.Errorf("internal error text leaked: %s", w.Body)
			}
			if logged := strings.Contains(logs.String(), "level=ERROR"); logged != tt.wantLogged {
				t.Errorf("logged at error level: %v, want %v:\n%s", logged, tt.wantLogged, logs.String())
			}
		})
	}
}

// closingReader records that it was closed.
type closingReader struct {
	*bytes.Reader
	closed bool
}

func (c *closingReader) Close() error { c.closed = true; return nil }

func TestHandlerClosesContent(t *testing.T) {
	content := &closingReader{Reader: bytes.NewReader(testBytes(100))}
	h, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: &stubService{
		content: &transport.ArtifactContent{Content: content, Size: 100, ETag: "v1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", transport.PathArtifacts+someDigest, nil)
	r.Header.Set("Authorization", "Bearer t1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Body.Len() != 100 {
		t.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
	}
	if !content.closed {
		t.Error("content not closed")
	}
	if got := w.Header().Get("ETag"); got != `"v1"` {
		t.Errorf("ETag %q, want the Service's, quoted", got)
	}
}

func TestNewHandlerConfig(t *testing.T) {
	if _, err := httptransport.NewHandler(httptransport.HandlerConfig{}); !errors.Is(err, httptransport.ErrConfig) {
		t.Errorf("no Service: %v, want ErrConfig", err)
	}
	if _, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: &stubService{}, MaxRequestSize: -1}); !errors.Is(err, httptransport.ErrConfig) {
		t.Errorf("negative MaxRequestSize: %v, want ErrConfig", err)
	}
}

// FuzzHandler sends random bodies to every POST path: the answer must be a
// well-formed JSON answer with a 2xx or 4xx status, never a 5xx or a panic.
func FuzzHandler(f *testing.F) {
	seeds := []string{
		`{"enrollment":"` + transporttest.DefaultEnrollment + `","serial":"SN2","model":"A920"}`,
		`{"seq":1,"battery":{"percent":50},"components":[{"name":"app","version":"1.0.0"}]}`,
		`{"model":"A920","components":[{"name":"app","version":"0.9.0"}]}`,
		`{"id":"r1","outcome":"committed","reason":"ok","at":"2026-01-01T00:00:00Z"}`,
		`{"seq":1}{}`, `null`, `[]`, `{"seq":-1}`, `{"seq":1e400}`, `"\ud800"`, ``, `{`,
		`{"components":[` + strings.Repeat(`{"name":"a","version":"1.0.0"},`, 70) + `{"name":"a","version":"1.0.0"}]}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	env := newHandlerEnv(f, 4096)
	paths := []string{transport.PathRegister, transport.PathHeartbeat, transport.PathCheck, transport.PathReport}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		r := httptest.NewRequest("POST", paths[int(which)%len(paths)], bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if _, err := env.srv.Authenticate(t.Context(), env.token); err != nil {
			env.reregister(t) // a fuzzed register of the same serial rotated the token
		}
		r.Header.Set("Authorization", "Bearer "+env.token)
		w := env.serve(r)
		switch {
		case w.Code == 200:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("200 with invalid JSON %q", w.Body)
			}
		case w.Code == 400 || w.Code == 401 || w.Code == 413:
			var eb transport.ErrorBody
			if err := jsonwire.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("%d with error body %q: %v", w.Code, w.Body, err)
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
	})
}
