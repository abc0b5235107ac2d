package update_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

var tech = update.Technician{Method: "token", Credential: "token:tech-042@k1"}

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
		name    string
		pkg     func(t *testing.T, f *fixture) string
		want    error
		refused bool // reported to the server as refused
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
			if tt.refused {
				// Refused before the install, or failed in the copy: either
				// way nothing changed and the server hears of it.
				if err == nil && res.Outcome != transport.OutcomeRefused {
					t.Fatalf("InstallPackage = %+v, %v: want refused", res, err)
				}
				if err == nil {
					err = res.Err
				}
			}
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("InstallPackage = %+v, %v: want %v", res, err, tt.want)
			}
			if !bytes.Equal(f.inst.bytes(), []byte("factory")) {
				t.Error("something was installed")
			}
			if v := f.component(a, "firmware"); v != "1.0.0" {
				t.Errorf("version %s, want 1.0.0", v)
			}
			if got := len(f.srv.Reports()); tt.refused != (got == 1) {
				t.Errorf("%d reports", got)
			}
			if left := f.downloads(); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestInstallPackageWhileUpdating(t *testing.T) {
	f := newFixture(t)
	f.publish(f.release("1.1.0", 20_000))
	a := f.agent(func(c *update.Config) {
		c.Gate = func(context.Context, update.GateRequest) error { return update.NotNow(0, "in a sale") }
	})
	if res := mustUpdate(t, a); res.State != update.StateGated {
		t.Fatalf("Update = %+v, want gated", res)
	}
	if _, err := a.InstallPackage(context.Background(), writePackage(t, f.release("1.2.0", 20_000)), tech); !errors.Is(err, update.ErrInProgress) {
		t.Fatalf("InstallPackage during an update: %v, want ErrInProgress", err)
	}
	if _, err := a.InstallPackage(context.Background(), t.TempDir(), update.Technician{}); err == nil {
		t.Fatal("InstallPackage without a technician succeeded")
	}
}
