package httptransport_test

import (
	"bytes"
	"context"
	"encoding/json"
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
		{"agent with a control byte", httptransport.Config{BaseURL: "https://tms.example.com", UserAgent: "pos\x01"}, true},
		{"agent with DEL", httptransport.Config{BaseURL: "https://tms.example.com", UserAgent: "pos\x7f"}, true},
		{"agent with tab and UTF-8", httptransport.Config{BaseURL: "https://tms.example.com", UserAgent: "pos\t终端/1"}, false},
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

// TestRetryAfterLeftToTheCaller: a Retry-After the client will not wait
// out, above MaxRetryAfter or past ctx's deadline, is returned at once as
// the *transport.Error with RetryAfter, not cut short nor turned into
// context.DeadlineExceeded.
func TestRetryAfterLeftToTheCaller(t *testing.T) {
	tests := []struct {
		name       string
		answer     http.HandlerFunc
		deadline   time.Duration // 0: none
		want       error
		retryAfter time.Duration
	}{
		{"shed above MaxRetryAfter", fail(503, transport.CodeUnavailable, "86400"), 0, transport.ErrUnavailable, 24 * time.Hour},
		{"429 above MaxRetryAfter", fail(429, transport.CodeRateLimited, "3600"), 0, transport.ErrRateLimited, time.Hour},
		{"500 above MaxRetryAfter", fail(500, transport.CodeInternal, "120"), 0, transport.ErrInternal, 2 * time.Minute},
		{"shed past the deadline", fail(503, transport.CodeUnavailable, "45"), 30 * time.Second, transport.ErrUnavailable, 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScript(tt.answer, heartbeatOK)
				c := scripted(t, s, httptransport.Config{MaxRetryAfter: time.Minute})
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				err := heartbeat(c, ctx)
				if !errors.Is(err, tt.want) || asError(t, err).RetryAfter != tt.retryAfter {
					t.Fatalf("Heartbeat = %v, want %v retrying after %s", err, tt.want, tt.retryAfter)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("returned after %s, want at once", d)
				}
				if s.count() != 1 {
					t.Errorf("%d attempts, want 1", s.count())
				}
			})
		})
	}
}

// TestRetryAfterWithinDeadline: a Retry-After that fits before the
// deadline is waited out.
func TestRetryAfterWithinDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(503, transport.CodeUnavailable, "10"), heartbeatOK)
		c := scripted(t, s, httptransport.Config{})
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if err := heartbeat(c, ctx); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		within(t, "wait", s.gaps()[0], 10*time.Second, 11*time.Second)
	})
}

func TestRetryAfterAtMaxRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(503, transport.CodeUnavailable, "60"), heartbeatOK)
		c := scripted(t, s, httptransport.Config{MaxRetryAfter: time.Minute})
		if err := heartbeat(c, t.Context()); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		within(t, "wait", s.gaps()[0], time.Minute, 66*time.Second)
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

// TestBackoffPastDeadline: a wait that would end after the deadline is
// not begun; the last answer is returned at once.
func TestBackoffPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(fail(500, transport.CodeInternal, ""))
		c := scripted(t, s, httptransport.Config{RetryMax: 100, RetryWaitMin: 10 * time.Second, RetryWaitMax: 10 * time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 35*time.Second)
		defer cancel()
		start := time.Now()
		err := heartbeat(c, ctx)
		if !errors.Is(err, transport.ErrInternal) {
			t.Fatalf("Heartbeat whose next wait passes its deadline: %v, want the last answer", err)
		}
		if s.count() != 4 {
			t.Fatalf("%d attempts, want 4 (at 0, 10, 20, 30s)", s.count())
		}
		if d := time.Since(start); d != 30*time.Second {
			t.Fatalf("returned after %s, want at the last attempt, 30s", d)
		}
	})
}

// TestDeadlineDuringAttempt: a deadline that passes during an attempt
// still ends the call with context.DeadlineExceeded.
func TestDeadlineDuringAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c, _ := faked(t, httptransport.Config{})
		srv.SetDelay(time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), 35*time.Second)
		defer cancel()
		if err := heartbeat(c, ctx); err != context.DeadlineExceeded {
			t.Fatalf("Heartbeat past its deadline: %v, want context.DeadlineExceeded", err)
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

// idleCounter is a vendor's transport, shared with other code in the
// process, that counts calls to CloseIdleConnections.
type idleCounter struct {
	http.RoundTripper
	mu     sync.Mutex
	closed int
}

func (c *idleCounter) CloseIdleConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed++
}

func (c *idleCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// TestSharedTransportIdleConnectionsKept: a call that gives up or is
// cancelled must not close the idle connections of the vendor's
// transport, which other clients share.
func TestSharedTransportIdleConnectionsKept(t *testing.T) {
	tests := []struct {
		name        string
		answer      http.HandlerFunc // nil: the base host refuses connections
		cfg         httptransport.Config
		cancelAfter time.Duration // 0: never
	}{
		{"retries exhausted", fail(500, transport.CodeInternal, ""), httptransport.Config{RetryMax: 2}, 0},
		{"sheds exhausted", fail(503, transport.CodeUnavailable, "1"), httptransport.Config{MaxShed: 2}, 0},
		{"connection errors exhausted", nil, httptransport.Config{RetryMax: 2}, 0},
		{"cancelled while waiting", fail(503, transport.CodeUnavailable, "60"), httptransport.Config{}, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hosts := map[string]http.Handler{}
				if tt.answer != nil {
					hosts[baseHost] = newScript(tt.answer)
				}
				shared := &idleCounter{RoundTripper: newMemTransport(hosts)}
				c := newClient(t, nil, httptransport.Config{
					HTTPClient: &http.Client{Transport: shared},
					RetryMax:   tt.cfg.RetryMax, MaxShed: tt.cfg.MaxShed,
				})
				ctx := t.Context()
				if tt.cancelAfter > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
					go func() {
						time.Sleep(tt.cancelAfter)
						cancel()
					}()
				}
				if err := heartbeat(c, ctx); err == nil {
					t.Fatal("Heartbeat succeeded")
				}
				if n := shared.count(); n != 0 {
					t.Fatalf("the shared transport's idle connections were closed %d times", n)
				}
			})
		})
	}
}

// TestRedirectToOtherSchemeNotRetried: a redirect to ftp:// can never be
// followed; it is refused at once.
func TestRedirectToOtherSchemeNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newMemTransport(map[string]http.Handler{
			baseHost:   http.RedirectHandler("ftp://cdn.test/x", http.StatusFound),
			"cdn.test": newScript(heartbeatOK),
		})
		c := newClient(t, rt, httptransport.Config{})
		if err := heartbeat(c, t.Context()); err == nil {
			t.Fatal("Heartbeat followed a redirect to ftp")
		}
		if reqs := rt.requests(); len(reqs) != 1 || reqs[0].Host != baseHost {
			t.Fatalf("requests %+v, want one to %s", reqs, baseHost)
		}
	})
}

// TestSmallResponsesLimited: register, heartbeat and report answers are
// bounded at 64 KiB; a check answer may be larger, up to MaxResponseSize.
func TestSmallResponsesLimited(t *testing.T) {
	pad := strings.Repeat(" ", 100<<10)
	padded := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := json.Marshal(v)
			w.Header().Set("Content-Type", "application/json")
			w.Write(append(b, pad...))
		}
	}
	tests := []struct {
		name    string
		answer  any
		call    func(*httptransport.Client) error
		tooBig  bool
		maxResp int64
	}{
		{"register", transport.RegisterResponse{DeviceID: "d1", Token: "t1"}, func(c *httptransport.Client) error {
			_, err := c.Register(t.Context(), &transport.RegisterRequest{Enrollment: "e", Serial: "s", Model: "m"})
			return err
		}, true, 0},
		{"heartbeat", transport.HeartbeatResponse{IntervalSeconds: 60}, func(c *httptransport.Client) error {
			return heartbeat(c, t.Context())
		}, true, 0},
		{"report", transport.ReportResponse{}, func(c *httptransport.Client) error {
			_, err := c.Report(t.Context(), &transport.ReportRequest{ID: "r1"})
			return err
		}, true, 0},
		{"check", transport.CheckResponse{Reason: transport.ReasonUpToDate}, func(c *httptransport.Client) error {
			_, err := c.Check(t.Context(), &transport.CheckRequest{Model: "A920"})
			return err
		}, false, 0},
		{"check above MaxResponseSize", transport.CheckResponse{Reason: transport.ReasonUpToDate}, func(c *httptransport.Client) error {
			_, err := c.Check(t.Context(), &transport.CheckRequest{Model: "A920"})
			return err
		}, true, 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := scripted(t, newScript(padded(tt.answer)), httptransport.Config{MaxResponseSize: tt.maxResp})
			err := tt.call(c)
			if tt.tooBig != errors.Is(err, httptransport.ErrBadResponse) || !tt.tooBig && err != nil {
				t.Fatalf("answer of %d KiB: %v, want refused: %v", (len(pad)>>10)+1, err, tt.tooBig)
			}
		})
	}
}
