package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// Technician names who authorised a manual update, as the server's audit
// log will show it; the update/maint package checks the credentials and
// returns one.
type Technician struct {
	// Method is how they were authorised: "password" (the maintenance
	// password, 主控维护密码) or "token" (a technician token the server
	// signed).
	Method string
	// Credential names the credential used, never the secret itself:
	// "maintenance-password", or "token:tech-042/k1".
	Credential string
}

// InstallPackage installs a release from a signed package on local storage
// (a USB stick, an SD card): a release directory as `release pack` writes
// it. The caller has authorised the technician (see the update/maint
// package); tech names the credential used.
//
// The package is verified exactly as a download is: the bundle's
// signatures and expiry against Config.Keys, the terminal's model,
// hardware revision and from-version, the anti-rollback floor, and every
// chunk of the artifact as it is copied into the state directory. Then it
// is backed up, installed, checked, committed or rolled back like any
// update, and reported to the server at the next pass with tech in the
// report. Config.ManualGate is asked instead of Config.Gate.
//
// It returns the pass's Result, as [Agent.Update] does: an install that
// needs a restart (an A/B slot) returns at that state, and the next pass
// after the restart carries it on. An update the server offered that has
// not begun (offered, waiting, downloading, downloaded) is set aside for
// the technician's; the server offers it again later. It returns [ErrBusy]
// while another pass runs, [ErrInProgress] while another update is
// installing or on probation, and an error matching [ErrPackage] (with the
// cause wrapped, such as verify.ErrSignature, release.ErrIncompatible or
// verify.ErrDigestMismatch) for a package it will not install; a refused
// package is reported to the server too, naming tech. A package that could
// not be copied is not held against its release: another copy may be
// tried at once. If ManualGate holds the update back, or ctx ends before
// the install begins, nothing is kept: the error says why (wrapping the
// gate's [*NotNowError]) and the technician tries again.
func (a *Agent) InstallPackage(ctx context.Context, dir string, tech Technician) (Result, error) {
	if tech.Method == "" || tech.Credential == "" {
		return Result{}, errors.New("update: InstallPackage needs the technician's method and credential")
	}
	if !a.pass.TryLock() {
		return Result{}, ErrBusy
	}
	defer a.pass.Unlock()
	a.cause = nil
	if u := a.current(); u != nil {
		if !setAside(u) {
			return Result{Release: u.Release, State: u.State}, fmt.Errorf("%w: %s is %s", ErrInProgress, u.Release, u.State)
		}
		// Offered or downloaded but not begun: the technician comes first;
		// the server offers it again at the next check.
		a.log.Info("update: setting the offered update aside for a manual one", "release", u.Release, "state", u.State)
		if err := a.drop(u); err != nil {
			return Result{Release: u.Release, State: u.State}, err
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Result{State: StateIdle}, fmt.Errorf("%w: %w", ErrPackage, err)
	}
	bundle, err := durable.ReadFile(durable.OS{}, filepath.Join(abs, verify.ManifestFile), verify.MaxBundleSize, verify.ErrTooLarge)
	if err != nil {
		return Result{State: StateIdle}, fmt.Errorf("%w: %w", ErrPackage, err)
	}
	manual := &transport.Manual{Method: tech.Method, Credential: tech.Credential}
	a.log.Info("update: manual update from a local package", "dir", abs, "method", tech.Method, "credential", tech.Credential)
	offer := transport.Offer{Bundle: bundle, Policy: transport.Policy{Blocking: true}}
	accepted, res, err := a.accept(ctx, offer, abs, manual)
	switch {
	case err != nil:
		return res, err
	case accepted:
		res, err := a.drive(ctx, false)
		if u := a.current(); u != nil && u.Package == abs && setAside(u) {
			// Held back by ManualGate, or cut short (ctx): a manual update
			// is the technician's to retry, never left for an automatic
			// pass to resume from a stick that may be gone.
			if derr := a.drop(u); derr != nil {
				return res, derr
			}
			res.State = StateIdle
			if err == nil && res.Waiting != nil {
				err = fmt.Errorf("update: manual update held back: %w", res.Waiting)
			}
			if err == nil {
				err = fmt.Errorf("update: manual update stopped in %s", u.State)
			}
			return res, err
		}
		if err == nil && res.Outcome == transport.OutcomeRefused {
			err = fmt.Errorf("%w: %w", ErrPackage, res.Err)
		}
		return res, err
	case res.Err != nil:
		return res, fmt.Errorf("%w: %w", ErrPackage, res.Err)
	case res.Reason == transport.ReasonUpToDate:
		return res, fmt.Errorf("%w: this version or a newer one is installed", ErrPackage)
	case res.Release != "":
		return res, fmt.Errorf("%w: %s was tried and failed before; the server must publish a new one", ErrPackage, res.Release)
	}
	return res, fmt.Errorf("%w: its bundle was refused before as unverifiable", ErrPackage)
}

// setAside says whether an update may be dropped for a manual one: it is
// only offered or downloaded, nothing of it begun.
func setAside(u *inflight) bool {
	switch u.State {
	case StateOffered, StateGated, StateDownloading, StateDownloaded:
		return true
	}
	return false
}

// drop forgets update u, which has not begun, without a report: its
// download and stored bundle are removed.
func (a *Agent) drop(u *inflight) error {
	if err := a.update(func(j *journal) {
		if j.Update != nil && j.Update.ID == u.ID {
			j.Update = nil
		}
	}); err != nil {
		return err
	}
	a.mu.Lock()
	a.waiting = ""
	a.mu.Unlock()
	a.removeFiles(u)
	return nil
}

// packageSource reads an artifact from a local package: the request's URL
// is the file's path.
type packageSource struct{}

func (packageSource) OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// durable.Open refuses what is not a regular file (a named pipe on the
	// stick) without opening it in a way that could block.
	f, err := durable.Open(durable.OS{}, req.URL)
	if err != nil {
		var nr *durable.NotRegularError
		if errors.As(err, &nr) {
			err = fmt.Errorf("%w: %s is a %s, not a regular file", verify.ErrMalformed, nr.Path, nr.Kind)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if req.Offset > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("%w: offset %d of a %d-byte package", transport.ErrRange, req.Offset, fi.Size())
	}
	n := req.Length
	if n < 0 {
		n = fi.Size() - req.Offset
	}
	return packageBody{io.NewSectionReader(f, req.Offset, n), f}, nil
}

type packageBody struct {
	io.Reader
	f durable.File
}

func (b packageBody) Close() error { return b.f.Close() }
