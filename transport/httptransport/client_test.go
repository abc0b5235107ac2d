package httptransport_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/transport/transporttest"
)

func heartbeat(c transport.Client, ctx context.Context) error {
	_, err := c.Heartbeat(ctx, &transport.HeartbeatRequest{Seq: 1})
	return err
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     httptransport.Config
		wantErr bool
	}{
		{"minimal", httptransport.Config{BaseURL: "https://tms.example.com"}, false},
		{"path prefix", httptransport.Config{BaseURL: "https://tms.example.com/upkeep/"}, false},
		{"all set", httptransport.Config{
			BaseURL: "http://127.0.0.1:8080", HTTPClient: &http.Client{}, Token: "abc", Logger: slog.New(slog.DiscardHandler),
			RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Second, MaxShed: 3,
			MaxRetryAfter: time.Minute, MaxResponseSize: 1024, UserAgent: "pos/1.0",
		}, false},
		{"no retries", httptransport.Config{BaseURL: "https://tms.example.com", RetryMax: -1, MaxShed: -1}, false},
		{"empty", httptransport.Config{}, true},
		{"relative", httptransport.Config{BaseURL: "/v1"}, true},
		{"ftp", httptransport.Config{BaseURL: "ftp://tms.example.com"}, true},
		{"no host", httptransport.Config{BaseURL: "https://"}, true},
		{"credentials", httptransport.Config{BaseURL: "https://u:p@tms.example.com"}, true},
		{"query", httptransport.Config{BaseURL: "https://tms.example.com/?a=b"}, true},
		{"token with space", httptransport.Config{BaseURL: "https://tms.example.com", Token: "a b"}, true},
		{"token too long", httptransport.Config{BaseURL: "https://tms.example.com", Token: strings.Repeat("a", transport.MaxToken+1)}, true},
		{"max below min", httptransport.Config{BaseURL: "https://tms.example.com", RetryWaitMin: time.Minute, RetryWaitMax: time.Second}, true},
		{"negative wait", httptransport.Config{BaseURL: "https://tms.example.com", RetryWaitMin: -1}, true},
		{"negative size", httptransport.Config{BaseURL: "https://tms.example.com", MaxResponseSize: -1}, true},
		{"agent with newline", httptransport.Config{BaseURL: "https://tms.example.com", UserAgent: "a\r\nX: y"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := httptransport.New(tt.cfg)
			if tt.wantErr {
				if !errors.Is(err, httptransport.ErrConfig) {
					t.Fatalf("New = %v, %v; want ErrConfig", c, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func TestRetryOn500ThenSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(500, transport.CodeInternal, ""), fail(502, transport.CodeUnavailable, ""), heartbeatOK)
		c := scripted(t, s, httptransport.Config{})
		if err := heartbeat(c, t.Context()); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		if s.count() != 3 {
			t.Fatalf("%d attempts, want 3", s.count())
		}
		gaps := s.gaps()
		within(t, "first wait", gaps[0], time.Second, 2*time.Second)
		within(t, "second wait", gaps[1], time.Second, 4*time.Second)
	})
}

func TestConnectionErrorRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(heartbeatOK)
		rt := newMemTransport(map[string]http.Handler{baseHost: s})
		failures := 2
		rt.fail = func(*http.Request) error {
			if failures > 0 {
				failures--
				return errors.New("connection reset by peer")
			}
			return nil
		}
		c := newClient(t, rt, httptransport.Config{})
		if err := heartbeat(c, t.Context()); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		if n := len(rt.requests()); n != 3 {
			t.Fatalf("%d attempts, want 3", n)
		}
	})
}

func TestShedObeysRetryAfterAndIsNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One failed attempt allowed, three sheds: sheds must not use it up.
		srv, c, _ := faked(t, httptransport.Config{RetryMax: -1})
		srv.Shed(3, 5*time.Second)
		start := time.Now()
		if err := heartbeat(c, t.Context()); err != nil {
			t.Fatalf("Heartbeat through three sheds: %v", err)
		}
		var times []time.Time
		for _, r := range srv.Requests() {
			if r.Call == transporttest.CallHeartbeat {
				times = append(times, r.Time)
			}
		}
		if len(times) != 4 {
			t.Fatalf("%d heartbeat attempts, want 4", len(times))
		}
		for i := 1; i < len(times); i++ {
			// The wait equals Retry-After, plus at most half a second of jitter.
			within(t, "wait after a shed", times[i].Sub(times[i-1]), 5*time.Second, 5500*time.Millisecond)
		}
		within(t, "total", time.Since(start), 15*time.Second, 16500*time.Millisecond)
	})
}

func TestMaxShed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c, _ := faked(t, httptransport.Config{MaxShed: 2})
		srv.Shed(10, 1500*time.Millisecond)
		err := heartbeat(c, t.Context())
		e := asError(t, err)
		if !errors.Is(err, transport.ErrUnavailable) || e.Status != 503 || e.RetryAfter != 2*time.Second {
			t.Fatalf("after MaxShed sheds: %+v, want 503 unavailable, retry after 2s", e)
		}
		if n := len(srv.Requests()); n != 1+3 { // register + three attempts
			t.Fatalf("%d requests, want 4", n)
		}
	})
}

func TestRetryAfterOn429(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter func() string
		lo, hi     time.Duration
	}{
		{"seconds", func() string { return "7" }, 7 * time.Second, 7700 * time.Millisecond},
		{"http date", func() string { return time.Now().Add(7 * time.Second).UTC().Format(http.TimeFormat) }, 6 * time.Second, 7700 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				limited := func(w http.ResponseWriter, r *http.Request) {
					fail(429, transport.CodeRateLimited, tt.retryAfter())(w, r)
				}
				s := newScript(limited, limited, heartbeatOK)
				c := scripted(t, s, httptransport.Config{RetryMax: -1}) // sheds need no retry budget
				if err := heartbeat(c, t.Context()); err != nil {
					t.Fatalf("Heartbeat: %v", err)
				}
				for _, g := range s.gaps() {
					within(t, "wait after 429", g, tt.lo, tt.hi)
				}
			})
		})
	}
}

func TestRetryAfterOnAnyStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(400, transport.CodeBadRequest, "3"), fail(500, transport.CodeInternal, "20"), heartbeatOK)
		c := scripted(t, s, httptransport.Config{RetryWaitMin: time.Millisecond, RetryWaitMax: 10 * time.Millisecond})
		if err := heartbeat(c, t.Context()); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		gaps := s.gaps()
		if len(gaps) != 2 {
			t.Fatalf("%d attempts, want 3", len(gaps)+1)
		}
		within(t, "wait after 400 with Retry-After: 3", gaps[0], 3*time.Second, 3300*time.Millisecond)
		within(t, "wait after 500 with Retry-After: 20", gaps[1], 20*time.Second, 22*time.Second)
	})
}

func TestRetryAfterCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(503, transport.CodeUnavailable, "86400"), heartbeatOK)
		c := scripted(t, s, httptransport.Config{MaxRetryAfter: time.Minute})
		if err := heartbeat(c, t.Context()); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		within(t, "capped wait", s.gaps()[0], time.Minute, 66*time.Second)
	})
}

func TestRetryMaxExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(500, transport.CodeInternal, ""), fail(500, transport.CodeInternal, ""),
			fail(503, transport.CodeUnavailable, ""))
		c := scripted(t, s, httptransport.Config{RetryMax: 2})
		err := heartbeat(c, t.Context())
		e := asError(t, err)
		if s.count() != 3 {
			t.Fatalf("%d attempts, want 3", s.count())
		}
		// The last answer is the one returned.
		if e.Status != 503 || e.Code != transport.CodeUnavailable || !errors.Is(err, transport.ErrUnavailable) {
			t.Fatalf("error %+v, want the last answer, 503 unavailable", e)
		}
	})
}

func TestConnectionErrorsExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newMemTransport(nil) // every host refuses
		c := newClient(t, rt, httptransport.Config{RetryMax: 3})
		err := heartbeat(c, t.Context())
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Heartbeat to nowhere: %v", err)
		}
		var e *transport.Error
		if errors.As(err, &e) {
			t.Fatalf("a connection error became a protocol error: %v", e)
		}
		if n := len(rt.requests()); n != 4 {
			t.Fatalf("%d attempts, want 4", n)
		}
	})
}

func TestNoRetryOn4xx(t *testing.T) {
	tests := []struct {
		status int
		code   transport.Code
		want   error
	}{
		{400, transport.CodeBadRequest, transport.ErrBadRequest},
		{401, transport.CodeUnauthorized, transport.ErrUnauthorized},
		{403, transport.CodeForbidden, transport.ErrForbidden},
		{404, transport.CodeNotFound, transport.ErrNotFound},
		{409, transport.CodeConflict, transport.ErrConflict},
		{413, transport.CodeTooLarge, transport.ErrTooLarge},
		{501, transport.CodeInternal, transport.ErrInternal},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScript(fail(tt.status, tt.code, ""), heartbeatOK)
				c := scripted(t, s, httptransport.Config{})
				err := heartbeat(c, t.Context())
				if !errors.Is(err, tt.want) || asError(t, err).Status != tt.status {
					t.Fatalf("error %v, want %v with status %d", err, tt.want, tt.status)
				}
				if s.count() != 1 {
					t.Fatalf("%d attempts, want 1", s.count())
				}
			})
		})
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(503, transport.CodeUnavailable, "60"))
		c := scripted(t, s, httptransport.Config{})
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			time.Sleep(10 * time.Second)
			cancel()
		}()
		start := time.Now()
		err := heartbeat(c, ctx)
		if err != context.Canceled {
			t.Fatalf("Heartbeat cancelled while waiting: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("returned %s after the start, want at the cancellation, 10s", d)
		}
		if s.count() != 1 {
			t.Fatalf("%d attempts, want 1", s.count())
		}
	})
}

func TestDeadlineDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(500, transport.CodeInternal, ""))
		c := scripted(t, s, httptransport.Config{RetryMax: 100, RetryWaitMin: 10 * time.Second, RetryWaitMax: 10 * time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 35*time.Second)
		defer cancel()
		err := heartbeat(c, ctx)
		if err != context.DeadlineExceeded {
			t.Fatalf("Heartbeat past its deadline: %v, want context.DeadlineExceeded", err)
		}
		if s.count() != 4 {
			t.Fatalf("%d attempts, want 4 (at 0, 10, 20, 30s)", s.count())
		}
	})
}

func TestNoRetryAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s := newScript(func(w http.ResponseWriter, r *http.Request) {
			cancel() // the context ends while the server answers
			fail(503, transport.CodeUnavailable, "1")(w, r)
		})
		c := scripted(t, s, httptransport.Config{})
		if err := heartbeat(c, ctx); err != context.Canceled {
			t.Fatalf("Heartbeat: %v, want context.Canceled", err)
		}
		if s.count() != 1 {
			t.Fatalf("%d attempts, want 1", s.count())
		}
	})
}

func TestResponseRefused(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"oversize", `{"interval_seconds":60}` + strings.Repeat(" ", 2000)},
		{"unknown field", `{"interval_seconds":60,"surprise":true}`},
		{"trailing data", `{"interval_seconds":60} {}`},
		{"not JSON", `<html>maintenance</html>`},
		{"empty", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(tt.body))
			})
			c := scripted(t, s, httptransport.Config{MaxResponseSize: 1024})
			if err := heartbeat(c, t.Context()); !errors.Is(err, httptransport.ErrBadResponse) {
				t.Fatalf("Heartbeat: %v, want ErrBadResponse", err)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		h          http.HandlerFunc
		want       error
		wantCode   transport.Code
		wantStatus int
		retryAfter time.Duration
	}{
		{"bodiless 502", bare(502, ""), transport.ErrUnavailable, transport.CodeUnavailable, 502, 0},
		{"bodiless 404", bare(404, ""), transport.ErrNotFound, transport.CodeNotFound, 404, 0},
		{"JSON conflict", fail(409, transport.CodeConflict, ""), transport.ErrConflict, transport.CodeConflict, 409, 0},
		{"unknown code", fail(418, "teapot", ""), transport.ErrBadRequest, transport.CodeBadRequest, 418, 0},
		{"HTML 403", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(403)
			w.Write([]byte("<h1>Forbidden</h1>"))
		}, transport.ErrForbidden, transport.CodeForbidden, 403, 0},
		{"retry after kept", fail(503, transport.CodeUnavailable, "42"), transport.ErrUnavailable, transport.CodeUnavailable, 503, 42 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := scripted(t, newScript(tt.h), httptransport.Config{RetryMax: -1, MaxShed: -1})
			err := heartbeat(c, t.Context())
			e := asError(t, err)
			if !errors.Is(err, tt.want) || e.Code != tt.wantCode || e.Status != tt.wantStatus || e.RetryAfter != tt.retryAfter {
				t.Fatalf("error %+v, want %v (%s, %d, retry after %s)", e, tt.want, tt.wantCode, tt.wantStatus, tt.retryAfter)
			}
		})
	}
}

func TestVendorHTTPClient(t *testing.T) {
	s := newScript(heartbeatOK)
	rt := newMemTransport(map[string]http.Handler{baseHost: s})
	vendor := &http.Client{Transport: rt, Timeout: time.Minute}
	c := newClient(t, nil, httptransport.Config{HTTPClient: vendor, UserAgent: "acme-pos/7.1"})
	if err := heartbeat(c, t.Context()); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	reqs := rt.requests()
	if len(reqs) != 1 {
		t.Fatalf("the vendor's transport saw %d requests, want 1", len(reqs))
	}
	h := reqs[0].Header
	if h.Get("User-Agent") != "acme-pos/7.1" || h.Get("Authorization") != "Bearer tok" || h.Get("Content-Type") != "application/json" {
		t.Errorf("request headers %v", h)
	}
	if vendor.CheckRedirect != nil {
		t.Errorf("the vendor's client was modified")
	}
}

func TestPathPrefix(t *testing.T) {
	s := newScript(heartbeatOK)
	rt := newMemTransport(map[string]http.Handler{baseHost: s})
	c := newClient(t, rt, httptransport.Config{BaseURL: "http://" + baseHost + "/upkeep/"})
	if err := heartbeat(c, t.Context()); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if p := rt.requests()[0].Path; p != "/upkeep"+transport.PathHeartbeat {
		t.Fatalf("path %s, want /upkeep%s", p, transport.PathHeartbeat)
	}
}

func TestRegisterStoresToken(t *testing.T) {
	srv := transporttest.NewServer(transporttest.Config{})
	h, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: srv})
	if err != nil {
		t.Fatal(err)
	}
	rt := newMemTransport(map[string]http.Handler{baseHost: h})
	c, err := httptransport.New(httptransport.Config{BaseURL: "http://" + baseHost, HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Token() != "" {
		t.Fatalf("a new client has token %q", c.Token())
	}
	if err := heartbeat(c, t.Context()); !errors.Is(err, transport.ErrUnauthorized) {
		t.Fatalf("Heartbeat before Register: %v", err)
	}
	resp, err := c.Register(t.Context(), &transport.RegisterRequest{Enrollment: transporttest.DefaultEnrollment, Serial: "SN1", Model: "A920"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Token() != resp.Token {
		t.Fatalf("Token() = %q, want the registered %q", c.Token(), resp.Token)
	}
	if err := heartbeat(c, t.Context()); err != nil {
		t.Fatalf("Heartbeat after Register: %v", err)
	}
	// A token restored from storage works in a new client.
	c2, err := httptransport.New(httptransport.Config{BaseURL: "http://" + baseHost, HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	c2.SetToken(resp.Token)
	if err := heartbeat(c2, t.Context()); err != nil {
		t.Fatalf("Heartbeat with SetToken: %v", err)
	}
	if got := rt.requests()[0].Header.Get("Authorization"); got != "" {
		t.Errorf("a client without a token sent Authorization %q", got)
	}
}

func TestRegisterBadToken(t *testing.T) {
	c := scripted(t, newScript(ok(transport.RegisterResponse{DeviceID: "d1", Token: "has space"})), httptransport.Config{})
	_, err := c.Register(t.Context(), &transport.RegisterRequest{Enrollment: "e", Serial: "s", Model: "m"})
	if !errors.Is(err, httptransport.ErrBadResponse) {
		t.Fatalf("Register: %v, want ErrBadResponse", err)
	}
	if c.Token() != "tok" {
		t.Fatalf("the bad token replaced the old one: %q", c.Token())
	}
}

func TestTokenConcurrent(t *testing.T) {
	s := newScript(heartbeatOK)
	c := scripted(t, s, httptransport.Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			c.SetToken(strings.Repeat("t", i+1))
			_ = c.Token()
			_ = heartbeat(c, t.Context())
		})
	}
	wg.Wait()
	if s.count() != 8 {
		t.Fatalf("%d requests, want 8", s.count())
	}
}

func TestRetryLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s := newScript(fail(500, transport.CodeInternal, ""), heartbeatOK)
		c := scripted(t, s, httptransport.Config{Logger: log})
		if err := heartbeat(c, t.Context()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "retrying request") {
			t.Fatalf("no retry in the log:\n%s", buf.String())
		}
		if strings.Contains(buf.String(), "Bearer") || strings.Contains(buf.String(), "tok") && strings.Contains(buf.String(), "Authorization") {
			t.Fatalf("the token reached the log:\n%s", buf.String())
		}
	})
}
