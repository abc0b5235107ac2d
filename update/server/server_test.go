package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/fileinstall"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

const enrollment = "fleet-secret"

type env struct {
	t    *testing.T
	keys *sign.KeyDir
	ring *verify.KeyRing
	srv  *server.Server
	http *httptest.Server
}

func newEnv(t *testing.T, mods ...func(*server.Config)) *env {
	t.Helper()
	keys, err := sign.NewKeyDir(nil, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.KeyRing()
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Keys: ring, Enrollment: enrollment, OperatorToken: "op-token", HeartbeatInterval: time.Minute}
	for _, m := range mods {
		m(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return &env{t: t, keys: keys, ring: ring, srv: srv, http: hs}
}

// pack writes a release directory for content, signed with keys.
func (e *env) pack(keys *sign.KeyDir, v string, content []byte, mods ...func(*verify.Manifest)) string {
	e.t.Helper()
	dir := e.t.TempDir()
	in := filepath.Join(dir, "fw.bin")
	if err := os.WriteFile(in, content, 0o644); err != nil {
		e.t.Fatal(err)
	}
	m := verify.Manifest{Component: "firmware", Version: v, Kind: verify.KindFirmware, Models: []string{"P300"}}
	for _, mod := range mods {
		mod(&m)
	}
	p, err := sign.Pack(context.Background(), sign.PackConfig{In: in, Out: filepath.Join(dir, "release"), Manifest: m,
		ChunkSize: verify.MinChunkSize, Key: keys.Signing, Certs: []verify.Envelope{keys.Cert}})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Dir
}

func (e *env) publish(dir string) {
	e.t.Helper()
	if _, err := e.srv.Publish(context.Background(), dir, server.PublishOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) client(serial, model string) (*httptransport.Client, string) {
	e.t.Helper()
	c, err := httptransport.New(httptransport.Config{BaseURL: e.http.URL, RetryMax: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := c.Register(context.Background(), &transport.RegisterRequest{Enrollment: enrollment, Serial: serial, Model: model,
		Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return c, resp.DeviceID
}

// terminal is an agent that installs by replacing a file.
func (e *env) terminal(c *httptransport.Client, checks ...verify.Check) (*update.Agent, string) {
	e.t.Helper()
	dir := e.t.TempDir()
	target := filepath.Join(dir, "firmware.bin")
	if err := os.WriteFile(target, []byte("factory firmware"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	a, err := update.New(update.Config{
		Source: c, Keys: e.ring, Installer: &fileinstall.Installer{Path: target}, StateDir: filepath.Join(dir, "state"),
		Device: update.Device{Model: "P300"}, Installed: map[string]string{"firmware": "1.0.0"}, Checks: checks,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return a, target
}

func content(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestEndToEndOverHTTP(t *testing.T) {
	e := newEnv(t)
	fw := content(100_000, 1)
	e.publish(e.pack(e.keys, "1.1.0", fw, func(m *verify.Manifest) { m.From = []string{"~1.0"} }))
	ctx := context.Background()

	t.Run("commits", func(t *testing.T) {
		c, id := e.client("SN-OK", "P300")
		a, target := e.terminal(c)
		res, err := a.Update(ctx)
		if err != nil || res.Outcome != transport.OutcomeCommitted {
			t.Fatalf("Update = %+v, %v", res, err)
		}
		if got, _ := os.ReadFile(target); !bytes.Equal(got, fw) {
			t.Error("installed file differs from the release")
		}
		// The commit's report alone tells the server what the terminal runs.
		if term := find(t, e.srv.Terminals(), id); len(term.Components) != 1 || term.Components[0].Version != "1.1.0" {
			t.Errorf("after the report the server lists %+v, want firmware 1.1.0", term.Components)
		}
		hb, _ := a.Heartbeat(ctx)
		hb.Seq = 1
		if _, err := c.Heartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
		term := find(t, e.srv.Terminals(), id)
		if term.LastResult == nil || term.LastResult.Outcome != transport.OutcomeCommitted || !term.Online ||
			len(term.Components) != 1 || term.Components[0].Version != "1.1.0" {
			t.Errorf("server sees %+v", term)
		}
		// Nothing more to offer.
		resp, err := c.Check(ctx, &transport.CheckRequest{Model: "P300", Components: term.Components})
		if err != nil || len(resp.Offers) != 0 || resp.Reason != transport.ReasonUpToDate || resp.RetryAfterSeconds == 0 {
			t.Errorf("Check after commit = %+v, %v", resp, err)
		}
	})

	t.Run("rolls back", func(t *testing.T) {
		c, id := e.client("SN-BAD", "P300")
		a, target := e.terminal(c, verify.Check{Name: "sign-in", Run: func(context.Context) error { return errors.New("refused") }})
		res, err := a.Update(ctx)
		if err != nil || res.Outcome != transport.OutcomeRolledBack || res.Reason != transport.ReasonSignIn {
			t.Fatalf("Update = %+v, %v", res, err)
		}
		if got, _ := os.ReadFile(target); string(got) != "factory firmware" {
			t.Errorf("file after rollback = %.20q", got)
		}
		term := find(t, e.srv.Terminals(), id)
		if term.LastResult == nil || term.LastResult.Reason != transport.ReasonSignIn || len(term.Reports) != 1 {
			t.Errorf("server sees %+v", term)
		}
	})

	t.Run("another model gets nothing", func(t *testing.T) {
		c, _ := e.client("SN-A920", "A920")
		resp, err := c.Check(ctx, &transport.CheckRequest{Model: "A920",
			Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
		if err != nil || len(resp.Offers) != 0 || resp.Reason != transport.ReasonNoRelease {
			t.Errorf("Check = %+v, %v", resp, err)
		}
	})

	t.Run("a check cannot claim another model", func(t *testing.T) {
		c, _ := e.client("SN-LIAR", "A920")
		resp, err := c.Check(ctx, &transport.CheckRequest{Model: "P300",
			Components: []transport.Component{{Name: "firmware", Version: "1.0.0"}}})
		if err != nil || len(resp.Offers) != 0 {
			t.Errorf("Check = %+v, %v; want no offer for a terminal registered as A920", resp, err)
		}
	})
}

func find(t *testing.T, ts []server.Terminal, id string) server.Terminal {
	t.Helper()
	for _, term := range ts {
		if term.DeviceID == id {
			return term
		}
	}
	t.Fatalf("terminal %s not listed", id)
	return server.Terminal{}
}

func TestPublishRefusesWhatTerminalsWould(t *testing.T) {
	e := newEnv(t)
	other, err := sign.NewKeyDir(nil, time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  func() string
		want error
	}{
		{"another root", func() string { return e.pack(other, "1.1.0", content(10_000, 2)) }, verify.ErrUnknownKey},
		{"tampered artifact", func() string {
			dir := e.pack(e.keys, "1.1.0", content(10_000, 3))
			p := filepath.Join(dir, "fw.bin")
			b, _ := os.ReadFile(p)
			b[5000] ^= 1
			os.WriteFile(p, b, 0o644)
			return dir
		}, verify.ErrDigestMismatch},
		{"missing manifest", func() string { return t.TempDir() }, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.srv.Publish(context.Background(), tt.dir(), server.PublishOptions{}); !errors.Is(err, tt.want) {
				t.Errorf("Publish = %v, want %v", err, tt.want)
			}
			if n := len(e.srv.Releases()); n != 0 {
				t.Errorf("%d releases published", n)
			}
		})
	}
}

func TestRegistration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := httptransport.New(httptransport.Config{BaseURL: e.http.URL, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Register(ctx, &transport.RegisterRequest{Enrollment: "wrong", Serial: "SN1", Model: "P300"})
	if !errors.Is(err, transport.ErrUnauthorized) {
		t.Fatalf("Register with a wrong credential = %v, want ErrUnauthorized", err)
	}
	c1, id1 := e.client("SN1", "P300")
	old := c1.Token()
	c2, id2 := e.client("SN1", "P300")
	if id1 != id2 {
		t.Errorf("re-registering SN1 gave %s, then %s; want the same device", id1, id2)
	}
	c1.SetToken(old)
	if _, err := c1.Heartbeat(ctx, &transport.HeartbeatRequest{Seq: 1}); !errors.Is(err, transport.ErrUnauthorized) {
		t.Errorf("old token after re-registration: %v, want ErrUnauthorized", err)
	}
	if _, err := c2.Heartbeat(ctx, &transport.HeartbeatRequest{Seq: 1}); err != nil {
		t.Errorf("new token: %v", err)
	}
}

func TestReportsAreRecordedOnce(t *testing.T) {
	e := newEnv(t)
	c, id := e.client("SN1", "P300")
	rep := &transport.ReportRequest{ID: "r-1", Release: "firmware@1.1.0", To: "1.1.0", Phase: "verifying",
		Outcome: transport.OutcomeRolledBack, Reason: transport.ReasonHealth, At: time.Now()}
	for i, wantDup := range []bool{false, true, true} {
		resp, err := c.Report(context.Background(), rep)
		if err != nil || resp.Duplicate != wantDup {
			t.Fatalf("report %d: %+v, %v; want duplicate=%v", i, resp, err, wantDup)
		}
	}
	if n := len(find(t, e.srv.Terminals(), id).Reports); n != 1 {
		t.Errorf("%d reports recorded, want 1", n)
	}
}

func TestOperatorAPI(t *testing.T) {
	e := newEnv(t)
	_, id := e.client("SN1", "P300")
	get := func(method, path, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, e.http.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}
	tests := []struct {
		name, method, path, token string
		status                    int
	}{
		{"no token", "GET", "/v1/operator/terminals", "", http.StatusUnauthorized},
		{"wrong token", "GET", "/v1/operator/terminals", "device-token", http.StatusUnauthorized},
		{"terminals", "GET", "/v1/operator/terminals", "op-token", http.StatusOK},
		{"releases", "GET", "/v1/operator/releases", "op-token", http.StatusOK},
		{"nudge unknown", "POST", "/v1/operator/terminals/t-999999/nudge", "op-token", http.StatusNotFound},
		{"nudge", "POST", "/v1/operator/terminals/" + id + "/nudge", "op-token", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(tt.method, tt.path, tt.token)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.status)
			}
			if tt.status != http.StatusOK {
				var eb transport.ErrorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
					t.Errorf("error body %s", body)
				}
			}
		})
	}
	_, body := get("GET", "/v1/operator/terminals", "op-token")
	var ts []server.Terminal
	if err := json.Unmarshal(body, &ts); err != nil || len(ts) != 1 || ts[0].DeviceID != id || ts[0].Model != "P300" {
		t.Errorf("terminals = %s (%v)", body, err)
	}

	t.Run("disabled without a token", func(t *testing.T) {
		e := newEnv(t, func(c *server.Config) { c.OperatorToken = "" })
		req, _ := http.NewRequest("GET", e.http.URL+"/v1/operator/terminals", nil)
		req.Header.Set("Authorization", "Bearer ")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
	})
}

// TestNudgeReachesTheAgent follows a nudge from the operator API through a
// heartbeat directive to an update check.
func TestNudgeReachesTheAgent(t *testing.T) {
	e := newEnv(t)
	c, id := e.client("SN1", "P300")
	a, _ := e.terminal(c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.srv.Nudge(id); err != nil {
		t.Fatal(err)
	}
	got := make(chan transport.Directive, 1)
	beats := heartbeat.Config{Sender: c, Status: a.Heartbeat, InitialDelay: -1, Jitter: -1,
		OnDirective: func(ctx context.Context, d transport.Directive) { got <- d; cancel() }}
	heartbeat.Run(ctx, beats)
	select {
	case d := <-got:
		if d != transport.DirectiveCheck {
			t.Errorf("directive %q", d)
		}
	default:
		t.Fatal("no directive delivered")
	}
	if strings.TrimSpace(find(t, e.srv.Terminals(), id).State) != "idle" {
		t.Errorf("state %q, want idle from the heartbeat", find(t, e.srv.Terminals(), id).State)
	}
}

func TestNewValidates(t *testing.T) {
	ring := newEnv(t).ring
	tests := []struct {
		name string
		cfg  server.Config
	}{
		{"no keys", server.Config{Enrollment: "x"}},
		{"no enrollment", server.Config{Keys: ring}},
		{"negative interval", server.Config{Keys: ring, Enrollment: "x", HeartbeatInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := server.New(tt.cfg); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestReRegistrationCannotChangeTheModel(t *testing.T) {
	e := newEnv(t)
	c, _ := e.client("SN1", "P300")
	other, err := httptransport.New(httptransport.Config{BaseURL: e.http.URL, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Register(context.Background(), &transport.RegisterRequest{Enrollment: enrollment, Serial: "SN1", Model: "P900"})
	if !errors.Is(err, transport.ErrConflict) {
		t.Fatalf("re-registering as another model = %v, want ErrConflict", err)
	}
	if _, err := c.Heartbeat(context.Background(), &transport.HeartbeatRequest{Seq: 1}); err != nil {
		t.Errorf("the real terminal lost its token: %v", err)
	}
}

// TestReportsCannotInventComponents: a commit report changes a terminal's
// recorded version only for a release this server published, and the IDs
// remembered for deduplication are bounded.
func TestReportsCannotInventComponents(t *testing.T) {
	e := newEnv(t)
	e.publish(e.pack(e.keys, "1.1.0", content(10_000, 4)))
	c, id := e.client("SN1", "P300")
	ctx := context.Background()
	for i := 0; i < 600; i++ {
		rel := fmt.Sprintf("junk%d@9.9.%d", i, i)
		if i == 599 {
			rel = "firmware@1.1.0"
		}
		rep := &transport.ReportRequest{ID: fmt.Sprintf("r-%d", i), Release: rel, To: "9.9.9", Phase: "committing",
			Outcome: transport.OutcomeCommitted, Reason: transport.ReasonOK, At: time.Now()}
		if _, err := c.Report(ctx, rep); err != nil {
			t.Fatal(err)
		}
	}
	term := find(t, e.srv.Terminals(), id)
	if len(term.Components) != 1 || term.Components[0].Name != "firmware" || term.Components[0].Version != "1.1.0" {
		t.Errorf("components %+v, want only firmware 1.1.0 from the published release", term.Components)
	}
	if len(term.Reports) > 32 {
		t.Errorf("%d reports kept, want at most 32", len(term.Reports))
	}
}

func TestRepublishServesOnlyPublishedArtifacts(t *testing.T) {
	e := newEnv(t)
	first := e.pack(e.keys, "1.1.0", content(10_000, 5))
	second := e.pack(e.keys, "1.1.0", content(10_000, 6))
	e.publish(first)
	if _, err := e.srv.Publish(context.Background(), second, server.PublishOptions{Channel: "stable"}); err != nil {
		t.Fatal(err)
	}
	rels := e.srv.Releases()
	if len(rels) != 1 {
		t.Fatalf("%d releases after republishing 1.1.0 on the same (default) channel, want 1", len(rels))
	}
	m1, _ := verify.ParseBundle(mustRead(t, filepath.Join(first, verify.ManifestFile)))
	pm, _ := verify.ParseManifest(m1.Manifest.Payload)
	if _, err := e.srv.Artifact(context.Background(), "t", string(pm.Artifact.Digest)); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("the replaced artifact is still served: %v", err)
	}
	a, err := e.srv.Artifact(context.Background(), "t", string(rels[0].Digest))
	if err != nil {
		t.Fatalf("the new artifact is not served: %v", err)
	}
	a.Content.(io.Closer).Close()
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
