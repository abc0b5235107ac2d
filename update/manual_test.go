package update_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

var tech = update.Technician{Method: "token", Credential: "token:tech-042/k1"}

// writePackage writes r as `release pack` would, into a new directory: a
// package on a USB stick.
func writePackage(t *testing.T, r *transporttest.Release) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, verify.ManifestFile), r.Bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, r.Manifest.Artifact.Name), r.Artifact, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInstallPackage(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 50_000)
	dir := writePackage(t, r)
	var asked []update.Stage
	a := f.agent(func(c *update.Config) {
		c.Gate = func(context.Context, update.GateRequest) error {
			t.Error("the automatic update's gate was asked about a manual update")
			return update.NotNow(0, "outside the maintenance window")
		}
		c.ManualGate = func(_ context.Context, req update.GateRequest) error {
			asked = append(asked, req.Stage)
			return nil
		}
	})
	res, err := a.InstallPackage(context.Background(), dir, tech)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != transport.OutcomeCommitted || res.To != "1.1.0" {
		t.Fatalf("InstallPackage = %+v", res)
	}
	if !bytes.Equal(f.inst.bytes(), r.Artifact) {
		t.Error("installed bytes differ from the package's")
	}
	if len(f.artifactCalls()) != 0 {
		t.Error("a manual update fetched from the server")
	}
	// Asked before the copy, before every piece of it, and before installing.
	if len(asked) < 2 || asked[0] != update.StageDownload || asked[len(asked)-1] != update.StageInstall {
		t.Errorf("ManualGate asked about %v, want download stages then install", asked)
	}
	reports := f.srv.Reports()
	if len(reports) != 1 || reports[0].Manual == nil || reports[0].Manual.Credential != tech.Credential ||
		reports[0].Manual.Method != tech.Method || reports[0].Outcome != transport.OutcomeCommitted {
		t.Fatalf("reports = %+v, want one committed naming the technician", reports)
	}
	if left := f.downloads(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}

	// Again: already installed.
	if _, err := a.InstallPackage(context.Background(), dir, tech); !errors.Is(err, update.ErrPackage) {
		t.Errorf("installing the same package again: %v, want ErrPackage", err)
	}
}

func TestInstallPackageRefused(t *testing.T) {
	tests := []struct {
		name     string
		pkg      func(t *testing.T, f *fixture) string
		want     error
		reported bool // to the server, as refused, naming the technician
	}{
		{"no package", func(t *testing.T, f *fixture) string { return t.TempDir() }, os.ErrNotExist, false},
		{"signed by someone else", func(t *testing.T, f *fixture) string {
			other, err := transporttest.NewKeys(transporttest.DefaultIssued().Add(-time.Hour), transporttest.DefaultExpires())
			if err != nil {
				t.Fatal(err)
			}
			r, err := other.NewRelease(verify.Manifest{Component: "firmware", Version: "1.1.0", Kind: verify.KindFirmware, Models: []string{"P300"}}, []byte("evil"))
			if err != nil {
				t.Fatal(err)
			}
			return writePackage(t, r)
		}, verify.ErrUnknownKey, true},
		{"another model", func(t *testing.T, f *fixture) string {
			return writePackage(t, f.release("1.1.0", 10_000, func(m *verify.Manifest) { m.Models = []string{"P900"} }))
		}, release.ErrIncompatible, true},
		{"corrupt artifact", func(t *testing.T, f *fixture) string {
			r := f.release("1.1.0", 30_000)
			r.Artifact = bytes.Clone(r.Artifact)
			r.Artifact[20_000] ^= 1
			return writePackage(t, r)
		}, verify.ErrDigestMismatch, true},
		{"truncated artifact", func(t *testing.T, f *fixture) string {
			r := f.release("1.1.0", 30_000)
			r.Artifact = r.Artifact[:25_000]
			return writePackage(t, r)
		}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := f.agent()
			res, err := a.InstallPackage(context.Background(), tt.pkg(t, f), tech)
			if !errors.Is(err, update.ErrPackage) || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("InstallPackage = %+v, %v: want ErrPackage wrapping %v", res, err, tt.want)
			}
			if !bytes.Equal(f.inst.bytes(), []byte("factory")) {
				t.Error("something was installed")
			}
			if v := f.component(a, "firmware"); v != "1.0.0" {
				t.Errorf("version %s, want 1.0.0", v)
			}
			reports := f.srv.Reports()
			if tt.reported != (len(reports) == 1) {
				t.Errorf("%d reports", len(reports))
			}
			if len(reports) == 1 && (reports[0].Manual == nil || *reports[0].Manual != (transport.Manual{Method: tech.Method, Credential: tech.Credential})) {
				t.Errorf("refusal reported without the technician: %+v", reports[0])
			}
			if left := f.downloads(); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			if st := a.Status(); st.State != update.StateIdle || st.Waiting != "" {
				t.Errorf("status after the refusal: %+v", st)
			}
		})
	}
}

// TestInstallPackageBadCopyThenGood: a copy that fails its chunk check is
// not held against the release: a good copy installs at once, and so
// would the server's offer.
func TestInstallPackageBadCopyThenGood(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 30_000)
	bad := *r
	bad.Artifact = bytes.Clone(r.Artifact)
	bad.Artifact[10_000] ^= 1
	a := f.agent()
	if _, err := a.InstallPackage(context.Background(), writePackage(t, &bad), tech); !errors.Is(err, verify.ErrDigestMismatch) {
		t.Fatalf("bad copy: %v", err)
	}
	res, err := a.InstallPackage(context.Background(), writePackage(t, r), tech)
	if err != nil || res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("good copy after a bad one: %+v, %v", res, err)
	}
}

func TestInstallPackageSetsAsideAnOffer(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	a := f.agent(func(c *update.Config) {
		c.Gate = func(context.Context, update.GateRequest) error { return update.NotNow(0, "outside the window") }
	})
	if res := mustUpdate(t, a); res.State != update.StateGated {
		t.Fatalf("Update = %+v, want gated", res)
	}
	r := f.release("1.2.0", 20_000)
	res, err := a.InstallPackage(context.Background(), writePackage(t, r), tech)
	if err != nil || res.Outcome != transport.OutcomeCommitted || f.component(a, "firmware") != "1.2.0" {
		t.Fatalf("InstallPackage over a gated offer: %+v, %v", res, err)
	}
	if left := f.downloads(); len(left) != 0 {
		t.Errorf("the set-aside offer left %v", left)
	}
	if _, err := a.InstallPackage(context.Background(), t.TempDir(), update.Technician{}); err == nil {
		t.Fatal("InstallPackage without a technician succeeded")
	}
}

func TestInstallPackageOnProbation(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	a := f.agent(func(c *update.Config) { c.Probation = update.Probation{UntilMarkedGood: true} })
	if res := mustUpdate(t, a); res.State != update.StateProbation {
		t.Fatalf("Update = %+v, want on probation", res)
	}
	if _, err := a.InstallPackage(context.Background(), writePackage(t, f.release("1.2.0", 20_000)), tech); !errors.Is(err, update.ErrInProgress) {
		t.Fatalf("InstallPackage during probation: %v, want ErrInProgress", err)
	}
}

func TestInstallPackageHeldBack(t *testing.T) {
	f := newFixture(t)
	r := f.release("1.1.0", 20_000)
	inSale := true
	a := f.agent(func(c *update.Config) {
		c.ManualGate = func(_ context.Context, req update.GateRequest) error {
			if inSale && req.Stage == update.StageInstall {
				return update.NotNow(time.Minute, "in a sale")
			}
			return nil
		}
	})
	res, err := a.InstallPackage(context.Background(), writePackage(t, r), tech)
	var wait *update.NotNowError
	if !errors.As(err, &wait) || !strings.Contains(err.Error(), "in a sale") {
		t.Fatalf("InstallPackage during a sale: %+v, %v: want the gate's reason", res, err)
	}
	if st := a.Status(); st.State != update.StateIdle || st.Waiting != "" {
		t.Errorf("status after being held back: %+v, want idle with nothing kept", st)
	}
	if left := f.downloads(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if n := len(f.srv.Reports()); n != 0 {
		t.Errorf("%d reports for an update that never began", n)
	}
	inSale = false
	if res, err := a.InstallPackage(context.Background(), writePackage(t, r), tech); err != nil || res.Outcome != transport.OutcomeCommitted {
		t.Fatalf("after the sale: %+v, %v", res, err)
	}
}
