package update_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/backup"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

// fixture is one terminal's agent against an in-memory server.
type fixture struct {
	t      *testing.T
	srv    *transporttest.Server
	client transport.Client
	keys   *transporttest.Keys
	ring   *verify.KeyRing
	state  string
	data   string // backed up before install
	inst   *fakeInstaller
	now    time.Time
	nowMu  sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, srv: transporttest.NewServer(transporttest.Config{}), state: t.TempDir(), data: t.TempDir(),
		now: transporttest.DefaultIssued().Add(time.Hour)}
	keys, err := transporttest.NewKeys(transporttest.DefaultIssued().Add(-time.Hour), transporttest.DefaultExpires().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f.keys = keys
	if f.ring, err = keys.KeyRing(); err != nil {
		t.Fatal(err)
	}
	f.client = f.srv.Client()
	if _, err := f.client.Register(context.Background(), &transport.RegisterRequest{
		Enrollment: transporttest.DefaultEnrollment, Serial: "SN1", Model: "P300"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.data, "journal.db"), "batch=17 trace=901\n")
	writeFile(t, filepath.Join(f.data, "esign", "0001.sig"), "signature")
	f.inst = &fakeInstaller{data: filepath.Join(f.data, "journal.db"), installed: []byte("factory")}
	return f
}

func (f *fixture) Now() time.Time {
	f.nowMu.Lock()
	defer f.nowMu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.nowMu.Lock()
	defer f.nowMu.Unlock()
	f.now = f.now.Add(d)
}

// release signs a firmware release for model P300 with a random artifact
// of n bytes (several chunks of verify.MinChunkSize).
func (f *fixture) release(v string, n int, mods ...func(*verify.Manifest)) *transporttest.Release {
	f.t.Helper()
	m := verify.Manifest{Component: "firmware", Version: v, Kind: verify.KindFirmware, Models: []string{"P300"}}
	for _, mod := range mods {
		mod(&m)
	}
	art := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n), byte(len(v))}).Read(art)
	r, err := f.keys.NewRelease(m, art)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) publish(r *transporttest.Release) {
	f.t.Helper()
	if err := f.srv.Publish(r.Bundle, r.Artifact, transport.Policy{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) config(mods ...func(*update.Config)) update.Config {
	hook, err := backup.NewFiles("pos-data", f.data)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := update.Config{
		Source:    f.client,
		Keys:      f.ring,
		Installer: f.inst,
		StateDir:  f.state,
		Device:    update.Device{Model: "P300", HardwareRevision: "B"},
		Installed: map[string]string{"firmware": "1.0.0"},
		Backups:   []backup.Hook{hook},
		Now:       f.Now,
	}
	for _, m := range mods {
		m(&cfg)
	}
	return cfg
}

func (f *fixture) agent(mods ...func(*update.Config)) *update.Agent {
	f.t.Helper()
	a, err := update.New(f.config(mods...))
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// artifactCalls counts the artifact requests the server saw.
func (f *fixture) artifactCalls() []transporttest.Request {
	var out []transporttest.Request
	for _, r := range f.srv.Requests() {
		if r.Call == transporttest.CallArtifact {
			out = append(out, r)
		}
	}
	return out
}

// downloads lists what is left in the agent's download directory.
func (f *fixture) downloads() []string {
	entries, _ := os.ReadDir(filepath.Join(f.state, "downloads"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func (f *fixture) component(a *update.Agent, name string) string {
	for _, c := range a.Status().Components {
		if c.Name == name {
			return c.Version
		}
	}
	return ""
}

// fakeInstaller keeps the "installed" bytes in memory and migrates a data
// file on install, so a rollback must restore it from the backup.
type fakeInstaller struct {
	mu          sync.Mutex
	data        string
	installed   []byte
	previous    []byte
	installs    int
	rollbacks   int
	commits     int
	failInstall error
	// failRollback fails the next n rollbacks.
	failRollback int
	// during, if set, runs inside Install after the bytes are in place
	// (a crash point).
	during func(ctx context.Context) error
}

func (i *fakeInstaller) Install(ctx context.Context, a *update.Artifact) error {
	b, err := os.ReadFile(a.Path)
	if err != nil {
		return err
	}
	if got := verify.DigestBytes(b); got != a.Manifest.Artifact.Digest {
		return fmt.Errorf("installer handed an unverified artifact: %s", got)
	}
	i.mu.Lock()
	i.installs++
	if i.previous == nil {
		i.previous = i.installed
	}
	i.installed = b
	fail, during := i.failInstall, i.during
	i.mu.Unlock()
	old, err := os.ReadFile(i.data)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(old, []byte("migrated ")) {
		if err := os.WriteFile(i.data, append([]byte("migrated "), old...), 0o644); err != nil {
			return err
		}
	}
	if during != nil {
		if err := during(ctx); err != nil {
			return err
		}
	}
	return fail
}

func (i *fakeInstaller) Rollback(ctx context.Context, a *update.Artifact) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rollbacks++
	if i.failRollback > 0 {
		i.failRollback--
		return errors.New("slot B will not boot")
	}
	if i.previous != nil {
		i.installed, i.previous = i.previous, nil
	}
	return nil
}

func (i *fakeInstaller) Commit(ctx context.Context, a *update.Artifact) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.commits++
	i.previous = nil
	return nil
}

func (i *fakeInstaller) counts() (installs, rollbacks, commits int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.installs, i.rollbacks, i.commits
}

func (i *fakeInstaller) bytes() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.installed
}

// offering is a Source that offers fixed bundles, whatever the server's
// own negotiation would say: it plays a server that offers what it should
// not.
type offering struct {
	update.Source
	offers []transport.Offer
}

func (o *offering) Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	return &transport.CheckResponse{Offers: o.offers}, nil
}

// corrupting is a Source whose artifact bytes arrive with a byte flipped at
// offset for the first n reads that cover it: a flaky proxy.
type corrupting struct {
	update.Source
	mu     sync.Mutex
	offset int64
	n      int
}

func (c *corrupting) OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error) {
	rc, err := c.Source.OpenArtifact(ctx, req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	end := req.Offset + req.Length
	if c.n == 0 || c.offset < req.Offset || (req.Length >= 0 && c.offset >= end) {
		return rc, nil
	}
	c.n--
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	b[c.offset-req.Offset] ^= 0xff
	return io.NopCloser(bytes.NewReader(b)), nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustUpdate(t *testing.T, a *update.Agent) update.Result {
	t.Helper()
	res, err := a.Update(context.Background())
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return res
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
