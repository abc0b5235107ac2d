package transporttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// Settings of the servers the suite makes.
const (
	suiteInterval = 90 * time.Second
	suiteJitter   = 15 * time.Second
	suiteModel    = "A920"
	suiteSerial   = "SN0001"
)

// TestClient is the conformance suite of [transport.Client]: it runs the
// protocol's contract against clients that newClient makes for a fresh
// [Server] in each subtest. newClient returns a client with no token that
// reaches srv however the implementation does (in memory, or over HTTP to
// httptransport.NewHandler(srv)); it may register cleanups on t. Clients
// must not retry the suite's injected failures (not_found, forbidden,
// bad_request, unauthorized, internal) nor wait out a shed answer (503
// with Retry-After), so set no retries if yours would.
//
// Relative artifact URLs ("v1/artifacts/<digest>" and
// "/v1/artifacts/<digest>") must reach srv's artifacts: a client of srv
// behind a base URL with a path prefix must keep the prefix (see
// transport.ResolveArtifactURL), as the in-memory client does with
// [BaseURL].
//
// The suite covers registration (success, a refused enrollment credential,
// invalid fields), calls made before registering, heartbeats (interval,
// jitter, directives delivered once), checks (nothing published, an offer
// carrying the published bundle, nothing when up to date), artifact ranges
// (whole, start, middle, end, to the end, past the end, invalid, unknown,
// truncated, corrupted, by relative URL), reports (recorded once, a repeat
// flagged duplicate), injected failures (with a code the protocol does not
// know among them), shed load, and cancelled contexts.
func TestClient(t *testing.T, newClient func(t *testing.T, srv *Server) transport.Client) {
	fx := newFixture(t)
	setup := func(t *testing.T) (*Server, transport.Client) {
		srv := NewServer(Config{HeartbeatInterval: suiteInterval, HeartbeatJitter: suiteJitter})
		return srv, newClient(t, srv)
	}
	registered := func(t *testing.T) (*Server, transport.Client, string) {
		srv, c := setup(t)
		resp, err := c.Register(t.Context(), registerRequest())
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		return srv, c, resp.DeviceID
	}
	published := func(t *testing.T) (*Server, transport.Client, string) {
		srv, c, id := registered(t)
		if err := srv.Publish(fx.rel.Bundle, fx.rel.Artifact, transport.Policy{}); err != nil {
			t.Fatal(err)
		}
		return srv, c, id
	}

	t.Run("Register", func(t *testing.T) {
		srv, c := setup(t)
		resp, err := c.Register(t.Context(), registerRequest())
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		if resp.DeviceID == "" || resp.Token == "" {
			t.Fatalf("Register = %+v, want a device ID and a token", resp)
		}
		devs := srv.Devices()
		if len(devs) != 1 || devs[0].ID != resp.DeviceID || devs[0].Serial != suiteSerial || devs[0].Model != suiteModel {
			t.Fatalf("Devices() = %+v, want the one registered as %s", devs, resp.DeviceID)
		}
		// The client keeps the token for later calls.
		if _, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: 1}); err != nil {
			t.Fatalf("Heartbeat after Register: %v", err)
		}
	})

	t.Run("RegisterWrongEnrollment", func(t *testing.T) {
		srv, c := setup(t)
		req := registerRequest()
		req.Enrollment = "not-the-credential"
		_, err := c.Register(t.Context(), req)
		wantCode(t, err, transport.ErrUnauthorized, transport.CodeUnauthorized)
		if devs := srv.Devices(); len(devs) != 0 {
			t.Errorf("Devices() = %+v after a refused registration", devs)
		}
	})

	t.Run("RegisterInvalid", func(t *testing.T) {
		tests := []struct {
			name   string
			modify func(*transport.RegisterRequest)
		}{
			{"no enrollment", func(r *transport.RegisterRequest) { r.Enrollment = "" }},
			{"no serial", func(r *transport.RegisterRequest) { r.Serial = "" }},
			{"model with a space", func(r *transport.RegisterRequest) { r.Model = "A 920" }},
			{"bad component version", func(r *transport.RegisterRequest) { r.Components[0].Version = "one" }},
			{"bad component name", func(r *transport.RegisterRequest) { r.Components[0].Name = "/etc" }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				srv, c := setup(t)
				req := registerRequest()
				tt.modify(req)
				_, err := c.Register(t.Context(), req)
				wantCode(t, err, transport.ErrBadRequest, transport.CodeBadRequest)
				if got := srv.Requests(); len(got) != 0 {
					t.Errorf("an invalid request reached the service: %+v", got)
				}
			})
		}
	})

	t.Run("Unregistered", func(t *testing.T) {
		srv, c := setup(t)
		if err := srv.Publish(fx.rel.Bundle, fx.rel.Artifact, transport.Policy{}); err != nil {
			t.Fatal(err)
		}
		for name, call := range calls(fx) {
			if name == CallRegister {
				continue
			}
			t.Run(name, func(t *testing.T) {
				wantCode(t, call(t.Context(), c), transport.ErrUnauthorized, transport.CodeUnauthorized)
			})
		}
	})

	t.Run("Heartbeat", func(t *testing.T) {
		srv, c, id := registered(t)
		req := &transport.HeartbeatRequest{
			Seq:        1,
			State:      "idle",
			Components: []transport.Component{{Name: "payment-app", Version: "2.3.0"}},
			Battery:    &transport.Battery{Percent: 80, OnMains: true},
			Network:    "wifi",
		}
		resp, err := c.Heartbeat(t.Context(), req)
		if err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		if resp.IntervalSeconds != int(suiteInterval/time.Second) || resp.JitterSeconds != int(suiteJitter/time.Second) {
			t.Errorf("Heartbeat interval %ds jitter %ds, want %s and %s",
				resp.IntervalSeconds, resp.JitterSeconds, suiteInterval, suiteJitter)
		}
		if resp.ServerTime.IsZero() {
			t.Errorf("Heartbeat carries no server time")
		}
		if len(resp.Directives) != 0 {
			t.Errorf("Heartbeat directives %v, want none", resp.Directives)
		}
		hbs := srv.Heartbeats(id)
		if len(hbs) != 1 || hbs[0].Seq != 1 || hbs[0].Battery == nil || *hbs[0].Battery != *req.Battery ||
			!slices.Equal(hbs[0].Components, req.Components) {
			t.Errorf("Heartbeats(%s) = %+v, want the one sent", id, hbs)
		}

		want := []transport.Directive{transport.DirectiveCheck, transport.DirectiveSignIn}
		srv.SetDirectives(id, want...)
		resp, err = c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: 2})
		if err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		if !slices.Equal(resp.Directives, want) {
			t.Errorf("Heartbeat directives %v, want %v", resp.Directives, want)
		}
		resp, err = c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: 3})
		if err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		if len(resp.Directives) != 0 {
			t.Errorf("directives delivered twice: %v", resp.Directives)
		}
	})

	t.Run("HeartbeatInvalid", func(t *testing.T) {
		_, c, _ := registered(t)
		_, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: 1, Battery: &transport.Battery{Percent: 101}})
		wantCode(t, err, transport.ErrBadRequest, transport.CodeBadRequest)
	})

	t.Run("CheckNothingPublished", func(t *testing.T) {
		_, c, _ := registered(t)
		resp, err := c.Check(t.Context(), checkRequest("1.0.0"))
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if len(resp.Offers) != 0 || resp.Reason == "" {
			t.Errorf("Check = %+v, want no offers and a reason", resp)
		}
	})

	t.Run("CheckOffer", func(t *testing.T) {
		srv, c, _ := registered(t)
		policy := transport.Policy{Blocking: true, Deadline: time.Date(2030, 6, 1, 2, 0, 0, 0, time.UTC)}
		if err := srv.Publish(fx.rel.Bundle, fx.rel.Artifact, policy); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Check(t.Context(), checkRequest("1.0.0"))
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if len(resp.Offers) != 1 {
			t.Fatalf("Check offers %d releases, want 1", len(resp.Offers))
		}
		o := resp.Offers[0]
		if !bytes.Equal(compact(t, o.Bundle), compact(t, fx.rel.Bundle)) {
			t.Errorf("offered bundle differs from the published one:\n%s\n%s", o.Bundle, fx.rel.Bundle)
		}
		if o.Policy.Blocking != policy.Blocking || !o.Policy.Deadline.Equal(policy.Deadline) {
			t.Errorf("offer policy %+v, want %+v", o.Policy, policy)
		}
		b, err := verify.ParseBundle(o.Bundle)
		if err != nil {
			t.Fatalf("offered bundle: %v", err)
		}
		ring, err := fx.keys.KeyRing()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ring.OpenBundle(b, time.Now()); err != nil {
			t.Errorf("offered bundle does not verify: %v", err)
		}

		// At that version already: nothing to offer.
		resp, err = c.Check(t.Context(), checkRequest(fx.rel.Manifest.Version))
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if len(resp.Offers) != 0 || resp.Reason != transport.ReasonUpToDate {
			t.Errorf("Check at the published version = %+v, want no offer, reason %s", resp, transport.ReasonUpToDate)
		}
	})

	t.Run("CheckInvalid", func(t *testing.T) {
		_, c, _ := registered(t)
		_, err := c.Check(t.Context(), &transport.CheckRequest{Model: ""})
		wantCode(t, err, transport.ErrBadRequest, transport.CodeBadRequest)
	})

	t.Run("OpenArtifact", func(t *testing.T) {
		size := int64(len(fx.rel.Artifact))
		tests := []struct {
			name           string
			offset, length int64
		}{
			{"whole", 0, -1},
			{"start", 0, 100},
			{"first chunk", 0, verify.MinChunkSize},
			{"middle", 5000, 3000},
			{"end", size - 100, 100},
			{"last byte", size - 1, 1},
			{"offset to the end", 4097, -1},
			{"all by length", 0, size},
		}
		srv, c, id := published(t)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := readArtifact(t.Context(), c, fx.rel.Digest(), tt.offset, tt.length)
				if err != nil {
					t.Fatalf("reading %d+%d: %v", tt.offset, tt.length, err)
				}
				want := fx.rel.Artifact[tt.offset:]
				if tt.length >= 0 {
					want = want[:tt.length]
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("read %d bytes at %d, want %d (equal prefix %d)", len(got), tt.offset, len(want), commonPrefix(got, want))
				}
				reqs := srv.Requests()
				last := reqs[len(reqs)-1]
				if last.Call != CallArtifact || last.DeviceID != id || last.Offset != tt.offset || last.Length != int64(len(want)) {
					t.Errorf("request log %+v, want artifact call by %s for %d bytes at %d", last, id, len(want), tt.offset)
				}
			})
		}
		t.Run("zero length", func(t *testing.T) {
			got, err := readArtifact(t.Context(), c, fx.rel.Digest(), 10, 0)
			if err != nil || len(got) != 0 {
				t.Fatalf("reading 0 bytes: %q, %v", got, err)
			}
		})
	})

	t.Run("OpenArtifactPastEnd", func(t *testing.T) {
		size := int64(len(fx.rel.Artifact))
		tests := []struct {
			name           string
			offset, length int64
		}{
			{"beyond the end", size + 10, 10},
			{"at the end", size, 1},
			{"at the end to the end", size, -1},
			{"straddling the end", size - 10, 100},
		}
		_, c, _ := published(t)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := readArtifact(t.Context(), c, fx.rel.Digest(), tt.offset, tt.length)
				wantCode(t, err, transport.ErrRange, transport.CodeRange)
			})
		}
	})

	t.Run("OpenArtifactRelativeURL", func(t *testing.T) {
		_, c, _ := published(t)
		path := transport.PathArtifacts + fx.rel.Digest()
		for _, ref := range []string{path, path[1:]} {
			t.Run(ref[:12], func(t *testing.T) {
				got, err := readRange(t.Context(), c, transport.ArtifactRequest{URL: ref, Offset: 4097, Length: 1000})
				if err != nil {
					t.Fatalf("reading by URL %q: %v", ref, err)
				}
				if !bytes.Equal(got, fx.rel.Artifact[4097:5097]) {
					t.Fatalf("read %d bytes by URL %q, not the artifact's", len(got), ref)
				}
			})
		}
	})

	t.Run("OpenArtifactInvalidRange", func(t *testing.T) {
		tests := []struct {
			name           string
			offset, length int64
		}{
			{"negative offset", -1, 10},
			{"length below -1", 0, -2},
			{"end past the largest int64", 5, math.MaxInt64},
			{"largest offset, one byte", math.MaxInt64, 1},
		}
		srv, c, _ := published(t)
		before := len(srv.Requests())
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := readArtifact(t.Context(), c, fx.rel.Digest(), tt.offset, tt.length)
				wantCode(t, err, transport.ErrBadRequest, transport.CodeBadRequest)
			})
		}
		if after := len(srv.Requests()); after != before {
			t.Errorf("%d invalid ranges reached the server", after-before)
		}
	})

	t.Run("OpenArtifactUnknown", func(t *testing.T) {
		_, c, _ := published(t)
		_, err := readArtifact(t.Context(), c, string(verify.DigestBytes([]byte("nothing"))), 0, -1)
		wantCode(t, err, transport.ErrNotFound, transport.CodeNotFound)
	})

	t.Run("OpenArtifactTruncated", func(t *testing.T) {
		const cut = 6000
		tests := []struct {
			name           string
			offset, length int64
			wantErr        error
		}{
			{"whole", 0, -1, io.ErrUnexpectedEOF},
			{"across the cut", 5000, 2000, io.ErrUnexpectedEOF},
			{"after the cut", 7000, 100, io.ErrUnexpectedEOF},
			{"to the end", 100, -1, io.ErrUnexpectedEOF},
			{"before the cut", 0, cut, nil},
		}
		srv, c, _ := published(t)
		if err := srv.TruncateArtifact(fx.rel.Digest(), cut); err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := readArtifact(t.Context(), c, fx.rel.Digest(), tt.offset, tt.length)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("reading %d+%d of an artifact cut at %d: %v, want %v", tt.offset, tt.length, cut, err, tt.wantErr)
				}
				if end := tt.offset + int64(len(got)); len(got) > 0 && (end > cut || !bytes.Equal(got, fx.rel.Artifact[tt.offset:end])) {
					t.Fatalf("read %d bytes at %d that are not the artifact's", len(got), tt.offset)
				}
			})
		}
	})

	t.Run("OpenArtifactCorrupted", func(t *testing.T) {
		const at = 4200
		srv, c, _ := published(t)
		if err := srv.CorruptArtifact(fx.rel.Digest(), at); err != nil {
			t.Fatal(err)
		}
		got, err := readArtifact(t.Context(), c, fx.rel.Digest(), 0, -1)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		if len(got) != len(fx.rel.Artifact) || bytes.Equal(got, fx.rel.Artifact) {
			t.Fatalf("corrupted artifact read back as %d bytes, equal: %v", len(got), bytes.Equal(got, fx.rel.Artifact))
		}
		if i := commonPrefix(got, fx.rel.Artifact); i != at || !bytes.Equal(got[at+1:], fx.rel.Artifact[at+1:]) {
			t.Fatalf("corrupted artifact differs at %d, want only at %d", i, at)
		}
	})

	t.Run("Report", func(t *testing.T) {
		srv, c, _ := registered(t)
		req := &transport.ReportRequest{
			ID: "rep-1", Release: fx.rel.Manifest.ID(), From: "1.0.0", To: fx.rel.Manifest.Version,
			Phase: "verify", Outcome: transport.OutcomeCommitted, Reason: transport.ReasonOK,
			At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		}
		resp, err := c.Report(t.Context(), req)
		if err != nil {
			t.Fatalf("Report: %v", err)
		}
		if resp.Duplicate {
			t.Errorf("first report flagged duplicate")
		}
		resp, err = c.Report(t.Context(), req)
		if err != nil {
			t.Fatalf("Report again: %v", err)
		}
		if !resp.Duplicate {
			t.Errorf("repeated report not flagged duplicate")
		}
		got := srv.Reports()
		if len(got) != 1 || got[0].ID != req.ID || got[0].Outcome != req.Outcome || !got[0].At.Equal(req.At) {
			t.Errorf("Reports() = %+v, want the one report once", got)
		}
		_, err = c.Report(t.Context(), &transport.ReportRequest{ID: "rep-2"})
		wantCode(t, err, transport.ErrBadRequest, transport.CodeBadRequest)
	})

	t.Run("InjectedFailures", func(t *testing.T) {
		tests := []struct {
			name    string
			inject  func(*Server)
			call    string // the call that fails
			code    transport.Code
			wantErr error
		}{
			{"any not found", func(s *Server) { s.FailNext(1, transport.CodeNotFound) }, CallHeartbeat, transport.CodeNotFound, transport.ErrNotFound},
			{"any forbidden", func(s *Server) { s.FailNext(1, transport.CodeForbidden) }, CallHeartbeat, transport.CodeForbidden, transport.ErrForbidden},
			{"check forbidden", func(s *Server) { s.FailNextCall(CallCheck, 1, transport.CodeForbidden) }, CallCheck, transport.CodeForbidden, transport.ErrForbidden},
			{"report not found", func(s *Server) { s.FailNextCall(CallReport, 1, transport.CodeNotFound) }, CallReport, transport.CodeNotFound, transport.ErrNotFound},
			{"artifact forbidden", func(s *Server) { s.FailNextCall(CallArtifact, 1, transport.CodeForbidden) }, CallArtifact, transport.CodeForbidden, transport.ErrForbidden},
			{"register not found", func(s *Server) { s.FailNextCall(CallRegister, 1, transport.CodeNotFound) }, CallRegister, transport.CodeNotFound, transport.ErrNotFound},
		}
		order := []string{CallRegister, CallHeartbeat, CallCheck, CallArtifact, CallReport}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				srv, c, _ := published(t)
				tt.inject(srv)
				fns := calls(fx)
				wantCode(t, fns[tt.call](t.Context(), c), tt.wantErr, tt.code)
				reqs := srv.Requests()
				if last := reqs[len(reqs)-1]; last.Call != tt.call || last.Code != tt.code {
					t.Errorf("request log %+v, want %s failed with %s", last, tt.call, tt.code)
				}
				// Every call succeeds once the failure is spent.
				for _, name := range order {
					if err := fns[name](t.Context(), c); err != nil {
						t.Errorf("%s after the injected failure: %v", name, err)
					}
				}
			})
		}
	})

	t.Run("UnknownCode", func(t *testing.T) {
		srv, c, _ := registered(t)
		srv.FailNextCall(CallHeartbeat, 1, "teapot")
		_, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: 1})
		wantCode(t, err, transport.ErrInternal, transport.CodeInternal)
		var e *transport.Error
		errors.As(err, &e)
		if e.HTTPStatus() != 500 || e.Message != "internal error" {
			t.Errorf("a code the protocol does not know reached the client as %d %q, want 500 \"internal error\"",
				e.HTTPStatus(), e.Message)
		}
		if _, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: 2}); err != nil {
			t.Fatalf("Heartbeat after the failure: %v", err)
		}
	})

	t.Run("Shed", func(t *testing.T) {
		srv, c, _ := registered(t)
		srv.Shed(1, 2*time.Second)
		_, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: 1})
		wantCode(t, err, transport.ErrUnavailable, transport.CodeUnavailable)
		var e *transport.Error
		errors.As(err, &e)
		if e.HTTPStatus() != 503 || e.RetryAfter != 2*time.Second {
			t.Errorf("shed answer reached the client as %d retrying after %s, want 503 after 2s", e.HTTPStatus(), e.RetryAfter)
		}
		if _, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: 2}); err != nil {
			t.Fatalf("Heartbeat after the shed: %v", err)
		}
	})

	t.Run("CancelledBefore", func(t *testing.T) {
		srv, c, _ := published(t)
		before := len(srv.Requests())
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for name, call := range calls(fx) {
			t.Run(name, func(t *testing.T) {
				if err := call(ctx, c); !errors.Is(err, context.Canceled) {
					t.Fatalf("%s with a cancelled context: %v, want context.Canceled", name, err)
				}
			})
		}
		if after := len(srv.Requests()); after != before {
			t.Errorf("%d calls with a cancelled context reached the server", after-before)
		}
	})

	t.Run("CancelledDuring", func(t *testing.T) {
		for name, call := range calls(fx) {
			t.Run(name, func(t *testing.T) {
				srv, c, _ := published(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				srv.SetDelay(time.Hour)
				srv.mu.Lock()
				srv.onDelay = cancel // cancel once the call is waiting inside the server
				srv.mu.Unlock()
				if err := call(ctx, c); !errors.Is(err, context.Canceled) {
					t.Fatalf("%s cancelled while the server delays: %v, want context.Canceled", name, err)
				}
			})
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		srv, c, id := published(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Go(func() {
				if _, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{Seq: uint64(i + 1)}); err != nil {
					errs <- err
				}
				if _, err := readArtifact(t.Context(), c, fx.rel.Digest(), int64(i)*1000, 1000); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := len(srv.Heartbeats(id)); got != n {
			t.Errorf("%d heartbeats recorded, want %d", got, n)
		}
	})
}

type fixture struct {
	keys *Keys
	rel  *Release
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	keys, err := NewKeys(time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	artifact := make([]byte, 3*verify.MinChunkSize+1000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range artifact {
		artifact[i] = byte(r.Uint32())
	}
	rel, err := keys.NewRelease(verify.Manifest{
		Component: "payment-app",
		Version:   "2.4.0",
		Kind:      verify.KindApplication,
		Models:    []string{suiteModel},
	}, artifact)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{keys: keys, rel: rel}
}

func registerRequest() *transport.RegisterRequest {
	return &transport.RegisterRequest{
		Enrollment:       DefaultEnrollment,
		Serial:           suiteSerial,
		Model:            suiteModel,
		HardwareRevision: "r2",
		Components: []transport.Component{
			{Name: "firmware", Version: "5.1.0"},
			{Name: "payment-app", Version: "2.3.0"},
		},
	}
}

func checkRequest(appVersion string) *transport.CheckRequest {
	return &transport.CheckRequest{
		Model:            suiteModel,
		HardwareRevision: "r2",
		Components: []transport.Component{
			{Name: "firmware", Version: "5.1.0"},
			{Name: "payment-app", Version: appVersion},
		},
	}
}

// calls returns one valid call of each kind, by call kind.
func calls(fx *fixture) map[string]func(context.Context, transport.Client) error {
	return map[string]func(context.Context, transport.Client) error{
		CallRegister: func(ctx context.Context, c transport.Client) error {
			_, err := c.Register(ctx, registerRequest())
			return err
		},
		CallHeartbeat: func(ctx context.Context, c transport.Client) error {
			_, err := c.Heartbeat(ctx, &transport.HeartbeatRequest{Seq: 1})
			return err
		},
		CallCheck: func(ctx context.Context, c transport.Client) error {
			_, err := c.Check(ctx, checkRequest("1.0.0"))
			return err
		},
		CallArtifact: func(ctx context.Context, c transport.Client) error {
			_, err := readArtifact(ctx, c, fx.rel.Digest(), 10, 100)
			return err
		},
		CallReport: func(ctx context.Context, c transport.Client) error {
			_, err := c.Report(ctx, &transport.ReportRequest{ID: "r1", Outcome: transport.OutcomeRefused, Reason: transport.ReasonDownload})
			return err
		},
	}
}

// readArtifact opens and reads a range in 1 MiB pieces, as the downloader does.
func readArtifact(ctx context.Context, c transport.Client, digest string, offset, length int64) ([]byte, error) {
	return readRange(ctx, c, transport.ArtifactRequest{Digest: digest, Offset: offset, Length: length})
}

// readRange opens and reads req in 1 MiB pieces.
func readRange(ctx context.Context, c transport.Client, req transport.ArtifactRequest) ([]byte, error) {
	rc, err := c.OpenArtifact(ctx, req)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := rc.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// wantCode fails t unless err matches sentinel and is a *transport.Error
// with code.
func wantCode(t *testing.T, err error, sentinel error, code transport.Code) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v, want %v", err, sentinel)
	}
	var e *transport.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error %v (%T), want a *transport.Error with code %s", err, err, code)
	}
}

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compacting %q: %v", b, err)
	}
	return buf.Bytes()
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
