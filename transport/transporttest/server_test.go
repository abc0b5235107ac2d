package transporttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

func TestInMemoryClient(t *testing.T) {
	TestClient(t, func(t *testing.T, srv *Server) transport.Client { return srv.Client() })
}

func newRelease(t *testing.T, keys *Keys, m verify.Manifest, size int) *Release {
	t.Helper()
	content := bytes.Repeat([]byte(m.Component+"@"+m.Version+" "), size/8+1)[:size]
	rel, err := keys.NewRelease(m, content)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func newKeys(t *testing.T) *Keys {
	t.Helper()
	keys, err := NewKeys(time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func register(t *testing.T, c transport.Client, serial string) *transport.RegisterResponse {
	t.Helper()
	resp, err := c.Register(t.Context(), &transport.RegisterRequest{Enrollment: DefaultEnrollment, Serial: serial, Model: "A920", HardwareRevision: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestReleaseVerifies(t *testing.T) {
	keys := newKeys(t)
	rel := newRelease(t, keys, verify.Manifest{Component: "fw", Version: "5.0.0", Kind: verify.KindFirmware, Models: []string{"A920"}}, 10000)
	ring, err := keys.KeyRing()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ring.Open(rel.Bundle, time.Now())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if m.ID() != "fw@5.0.0" || m.Artifact.Size != 10000 || len(m.Artifact.Chunks) != 3 || m.Artifact.Name != "fw-5.0.0.bin" {
		t.Fatalf("manifest %+v", m)
	}
	if err := verify.VerifyChunks(t.Context(), bytes.NewReader(rel.Artifact), &m.Artifact, nil); err != nil {
		t.Fatalf("artifact does not match its manifest: %v", err)
	}
	other := newKeys(t)
	otherRing, err := other.KeyRing()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherRing.Open(rel.Bundle, time.Now()); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Open with another root: %v, want ErrUnknownKey", err)
	}
}

func TestExpiredKeys(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys, err := NewKeys(now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rel := newRelease(t, keys, verify.Manifest{Component: "app", Version: "1.0.0"}, 100)
	ring, err := keys.KeyRing()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Open(rel.Bundle, now); !errors.Is(err, verify.ErrUnknownKey) || !errors.Is(err, verify.ErrExpired) {
		t.Fatalf("Open with an expired signing key: %v", err)
	}
}

func TestNewReleaseInvalid(t *testing.T) {
	keys := newKeys(t)
	tests := []struct {
		name string
		m    verify.Manifest
	}{
		{"firmware without models", verify.Manifest{Component: "fw", Version: "1.0.0", Kind: verify.KindFirmware}},
		{"bad version", verify.Manifest{Component: "app", Version: "1.0"}},
		{"floor above version", verify.Manifest{Component: "app", Version: "1.0.0", Floor: "2.0.0"}},
		{"chunk size too small", verify.Manifest{Component: "app", Version: "1.0.0", Artifact: verify.Artifact{ChunkSize: 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := keys.NewRelease(tt.m, []byte("x")); !errors.Is(err, verify.ErrMalformed) {
				t.Fatalf("NewRelease: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestPublishRefusesBadBundles(t *testing.T) {
	keys := newKeys(t)
	unsigned := []byte(`{"manifest":{"payload_type":"x","payload":"","signatures":[]},"keys":[]}`)
	cert, err := jsonBundle(verify.Bundle{Manifest: keys.Cert, Keys: []verify.Envelope{keys.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	badManifest, err := keys.SignManifest(&verify.Manifest{Component: "app"})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Config{})
	for name, b := range map[string][]byte{"not JSON": []byte("{"), "unsigned": unsigned, "not a manifest": cert, "invalid manifest": badManifest} {
		if err := srv.Publish(b, nil, transport.Policy{}); err == nil {
			t.Errorf("Publish accepted %s", name)
		}
	}
}

func TestCheckPicks(t *testing.T) {
	keys := newKeys(t)
	srv := NewServer(Config{})
	publish := func(m verify.Manifest) *Release {
		rel := newRelease(t, keys, m, 100)
		if err := srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{}); err != nil {
			t.Fatal(err)
		}
		return rel
	}
	app11 := publish(verify.Manifest{Component: "app", Version: "1.1.0"})
	app12 := publish(verify.Manifest{Component: "app", Version: "1.2.0"})
	publish(verify.Manifest{Component: "app", Version: "1.3.0", Models: []string{"S900"}})
	publish(verify.Manifest{Component: "app", Version: "1.4.0", HardwareRevisions: []string{"r9"}})
	fw := publish(verify.Manifest{Component: "fw", Version: "5.1.0", Kind: verify.KindFirmware, Models: []string{"A920"}})
	params := publish(verify.Manifest{Component: "emv", Version: "2.0.0", Kind: verify.KindParameters})
	publish(verify.Manifest{Component: "other", Version: "9.0.0"})

	c := srv.Client()
	register(t, c, "SN1")
	check := func(components ...transport.Component) *transport.CheckResponse {
		t.Helper()
		resp, err := c.Check(t.Context(), &transport.CheckRequest{Model: "A920", HardwareRevision: "r1", Components: components})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	offered := func(resp *transport.CheckResponse) []string {
		var ids []string
		for _, o := range resp.Offers {
			b, err := verify.ParseBundle(o.Bundle)
			if err != nil {
				t.Fatal(err)
			}
			m, err := verify.ParseManifest(b.Manifest.Payload)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID())
		}
		return ids
	}
	resp := check(
		transport.Component{Name: "emv", Version: "1.0.0"},
		transport.Component{Name: "app", Version: "1.0.0"},
		transport.Component{Name: "fw", Version: "5.0.0"},
	)
	want := []string{fw.Manifest.ID(), app12.Manifest.ID(), params.Manifest.ID()}
	if got := offered(resp); !equal(got, want) {
		t.Fatalf("offers %v, want %v (highest fitting, firmware first)", got, want)
	}

	// Once 1.2.0 is withdrawn, 1.1.0 is the best.
	if !srv.Unpublish("app", "1.2.0") || srv.Unpublish("app", "1.2.0") {
		t.Fatal("Unpublish did not report the release once")
	}
	if got := offered(check(transport.Component{Name: "app", Version: "1.0.0"})); !equal(got, []string{app11.Manifest.ID()}) {
		t.Fatalf("offers %v, want %v", got, app11.Manifest.ID())
	}
	// Its artifact went with it.
	if _, err := readArtifact(t.Context(), c, app12.Digest(), 0, -1); !errors.Is(err, transport.ErrNotFound) {
		t.Fatalf("artifact of an unpublished release: %v", err)
	}
	// Nothing for a component without releases.
	if resp := check(transport.Component{Name: "nothing", Version: "1.0.0"}); len(resp.Offers) != 0 || resp.Reason != transport.ReasonNoRelease || resp.RetryAfterSeconds != 60 {
		t.Fatalf("Check of an unknown component = %+v", resp)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReregisterRotatesToken(t *testing.T) {
	srv := NewServer(Config{})
	c1 := srv.Client()
	first := register(t, c1, "SN1")
	c2 := srv.Client()
	second := register(t, c2, "SN1")
	if first.DeviceID != second.DeviceID || first.Token == second.Token {
		t.Fatalf("re-registration: %+v then %+v, want the same ID and a new token", first, second)
	}
	if _, err := c1.Heartbeat(t.Context(), &transport.HeartbeatRequest{}); !errors.Is(err, transport.ErrUnauthorized) {
		t.Fatalf("old token: %v, want ErrUnauthorized", err)
	}
	if _, err := srv.ClientWithToken(second.Token).Heartbeat(t.Context(), &transport.HeartbeatRequest{}); err != nil {
		t.Fatalf("ClientWithToken: %v", err)
	}
	other := register(t, srv.Client(), "SN2")
	devs := srv.Devices()
	if len(devs) != 2 || devs[0].ID != first.DeviceID || devs[1].ID != other.DeviceID || devs[1].Serial != "SN2" {
		t.Fatalf("Devices() = %+v", devs)
	}
}

func TestShedInMemory(t *testing.T) {
	srv := NewServer(Config{})
	c := srv.Client()
	register(t, c, "SN1")
	srv.Shed(1, 1500*time.Millisecond)
	_, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{})
	var e *transport.Error
	if !errors.As(err, &e) || e.Code != transport.CodeUnavailable || e.Status != 503 || e.RetryAfter != 2*time.Second {
		t.Fatalf("shed heartbeat: %#v, want 503 unavailable retrying after 2s", err)
	}
	if _, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{}); err != nil {
		t.Fatalf("after the shed: %v", err)
	}
}

func TestUnknownAndInternalCodes(t *testing.T) {
	srv := NewServer(Config{})
	c := srv.Client()
	register(t, c, "SN1")
	srv.FailNext(1, "made_up")
	_, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{})
	var e *transport.Error
	if !errors.As(err, &e) || e.Code != transport.CodeInternal || e.Status != 500 || e.Message != "internal error" {
		t.Fatalf("unknown code: %#v, want internal with its text withheld", err)
	}
	srv.FailNext(1, transport.CodeInternal)
	_, err = c.Heartbeat(t.Context(), &transport.HeartbeatRequest{})
	if !errors.As(err, &e) || e.Code != transport.CodeInternal || e.Message != "internal error" {
		t.Fatalf("internal: %#v, want its text withheld", err)
	}
}

func TestDelayInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewServer(Config{})
		c := srv.Client()
		register(t, c, "SN1")
		srv.SetDelay(30 * time.Second)
		start := time.Now()
		if _, err := c.Heartbeat(t.Context(), &transport.HeartbeatRequest{}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 30*time.Second {
			t.Fatalf("call took %s, want the 30s delay", d)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := c.Check(ctx, &transport.CheckRequest{Model: "A920"}); err != context.DeadlineExceeded {
			t.Fatalf("call past its deadline: %v", err)
		}
		reqs := srv.Requests()
		if last := reqs[len(reqs)-1]; last.Call != CallCheck || last.Err != context.DeadlineExceeded || last.Code != "" {
			t.Fatalf("request log %+v", last)
		}
	})
}

func TestArtifactKnobs(t *testing.T) {
	keys := newKeys(t)
	rel := newRelease(t, keys, verify.Manifest{Component: "app", Version: "1.0.0"}, 5000)
	srv := NewServer(Config{})
	if err := srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{}); err != nil {
		t.Fatal(err)
	}
	unknown := string(verify.DigestBytes(nil))
	if err := srv.TruncateArtifact(unknown, 1); !errors.Is(err, ErrUnknownArtifact) {
		t.Errorf("TruncateArtifact of an unknown digest: %v", err)
	}
	if err := srv.CorruptArtifact(unknown, 1); !errors.Is(err, ErrUnknownArtifact) {
		t.Errorf("CorruptArtifact of an unknown digest: %v", err)
	}
	if err := srv.CorruptArtifact(rel.Digest(), 5000); err == nil {
		t.Errorf("CorruptArtifact past the end succeeded")
	}
	c := srv.Client()
	register(t, c, "SN1")
	read := func() []byte {
		t.Helper()
		b, err := readArtifact(t.Context(), c, rel.Digest(), 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Corrupting twice restores; a negative truncation restores.
	for range 2 {
		if err := srv.CorruptArtifact(rel.Digest(), 10); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(read(), rel.Artifact) {
		t.Fatal("corrupting twice did not restore the artifact")
	}
	if err := srv.TruncateArtifact(rel.Digest(), 10); err != nil {
		t.Fatal(err)
	}
	if err := srv.TruncateArtifact(rel.Digest(), -1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(), rel.Artifact) {
		t.Fatal("a negative truncation did not restore the artifact")
	}
	// An artifact URL naming the server's path works in memory; others do not.
	rc, err := c.OpenArtifact(t.Context(), transport.ArtifactRequest{URL: transport.PathArtifacts + rel.Digest(), Offset: 1, Length: 2})
	if err != nil {
		t.Fatalf("OpenArtifact by path: %v", err)
	}
	rc.Close()
	if _, err := c.OpenArtifact(t.Context(), transport.ArtifactRequest{URL: "https://cdn.example.com/a.bin", Length: -1}); !errors.Is(err, transport.ErrBadRequest) {
		t.Fatalf("OpenArtifact of a foreign URL: %v", err)
	}
}

// TestArtifactURLResolved: the in-memory client resolves artifact URLs
// against BaseURL, path prefix included, as httptransport.Client does
// against its BaseURL.
func TestArtifactURLResolved(t *testing.T) {
	keys := newKeys(t)
	rel := newRelease(t, keys, verify.Manifest{Component: "app", Version: "1.0.0"}, 5000)
	srv := NewServer(Config{})
	if err := srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{}); err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	register(t, c, "SN1")
	path := transport.PathArtifacts + rel.Digest()
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"absolute path", path, true},
		{"relative path", strings.TrimPrefix(path, "/"), true},
		{"absolute URL on BaseURL", BaseURL + path, true},
		{"absolute URL without the prefix", "http://upkeep.test" + path, false},
		{"another host", "http://cdn.test/upkeep" + path, false},
		{"another scheme", "https://upkeep.test/upkeep" + path, false},
		{"outside the artifacts", BaseURL + "/v1/check", false},
		{"unparseable", "%zz", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := c.OpenArtifact(t.Context(), transport.ArtifactRequest{URL: tt.url, Offset: 10, Length: 20})
			if !tt.ok {
				if !errors.Is(err, transport.ErrBadRequest) {
					t.Fatalf("OpenArtifact(%q) = %v, want ErrBadRequest", tt.url, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenArtifact(%q): %v", tt.url, err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, rel.Artifact[10:30]) {
				t.Fatalf("read %d bytes, %v; want bytes 10 to 30", len(got), err)
			}
		})
	}
}

func jsonBundle(b verify.Bundle) ([]byte, error) { return json.Marshal(b) }
