package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/verify"
)

// published is a release as the store holds it, its bundle verified by
// this replica.
type published struct {
	rel      release.Release
	manifest *verify.Manifest
	bundle   []byte
	path     string // the artifact file
	policy   transport.Policy
	at       time.Time
}

// PublishOptions say how a release is offered.
type PublishOptions struct {
	// Channel is the release channel; empty means release.DefaultChannel.
	Channel string
	// Policy is sent with every offer of the release.
	Policy transport.Policy
	// By is who publishes, for the audit log; the zero Operator is the
	// vendor's own code, recorded as "server".
	By Operator
}

// Publish verifies a release directory written by `release pack` (the
// bundle's signatures and expiry, and every chunk of the artifact) and
// starts offering it: to every terminal it fits, or as a rollout of it
// allows (see [Server.CreateRollout]). Publishing the same release on the
// same channel again replaces it. The publication lands in the audit log.
func (s *Server) Publish(ctx context.Context, dir string, opts PublishOptions) (release.Release, error) {
	return s.publishAs(ctx, dir, filepath.Base(dir), opts)
}

// publishAs is Publish of dir, which the audit log (read by viewers) and
// the operator API call name: the release root's own path stays out.
func (s *Server) publishAs(ctx context.Context, dir, name string, opts PublishOptions) (release.Release, error) {
	by := opts.By.orSystem()
	if err := s.require(ctx, by, RoleAdmin, "release.publish", name); err != nil {
		return release.Release{}, err
	}
	channel := cmp.Or(opts.Channel, release.DefaultChannel)
	rel, err := s.publish(ctx, dir, channel, opts.Policy)
	var pe *PublishError
	if errors.As(err, &pe) {
		pe.name = name
	}
	target := name
	if err == nil {
		target = rel.ID()
	}
	s.audit(ctx, by, "release.publish", target, err, "channel "+channel)
	return rel, err
}

func (s *Server) publish(ctx context.Context, dir, channel string, policy transport.Policy) (release.Release, error) {
	now := s.cfg.Now()
	rd, err := verify.OpenReleaseDir(ctx, dir, s.cfg.Keys, now, nil)
	if err != nil {
		if ctx.Err() != nil {
			return release.Release{}, err
		}
		return release.Release{}, &PublishError{Dir: dir, Err: err}
	}
	path, err := filepath.Abs(rd.ArtifactPath())
	if err != nil {
		return release.Release{}, &PublishError{Dir: dir, Err: err}
	}
	pol, err := json.Marshal(policy)
	if err != nil {
		return release.Release{}, err
	}
	m := rd.Manifest
	_, err = s.store.PutRelease(ctx, store.Release{ID: m.ID(), Channel: channel, Component: m.Component,
		Version: m.Version, Digest: string(m.Artifact.Digest), Size: m.Artifact.Size, Path: path, Bundle: rd.Bundle,
		Policy: pol, PublishedAt: now})
	if err != nil {
		return release.Release{}, fromStore(err, "publish %s", m.ID())
	}
	s.log.Info("server: published", "release", m.ID(), "channel", channel, "bytes", m.Artifact.Size)
	rel := release.FromManifest(m, channel)
	return rel, nil
}

// catalog returns the published releases, oldest publication first, each
// bundle verified against the root keys at the time it was published (a
// replica trusts the store no more than a terminal would; expiry is
// negotiation's business). A bundle that does not verify is left out and
// logged.
func (s *Server) catalog(ctx context.Context) ([]*published, error) {
	recs, err := s.store.ListReleases(ctx)
	if err != nil {
		return nil, fromStore(err, "list releases")
	}
	out := make([]*published, 0, len(recs))
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[[sha256.Size]byte]*verify.Manifest, len(recs))
	for _, r := range recs {
		key := sha256.Sum256(r.Bundle)
		m, ok := s.verified[key]
		if !ok {
			if m, err = s.cfg.Keys.Open(r.Bundle, r.PublishedAt); err != nil {
				s.log.Error("server: a published bundle does not verify; not offered", "release", r.ID, "channel", r.Channel, "err", err)
				continue
			}
		}
		if m.ID() != r.ID || string(m.Artifact.Digest) != r.Digest {
			s.log.Error("server: a published release does not match its bundle; not offered", "release", r.ID, "channel", r.Channel)
			continue
		}
		seen[key] = m
		var pol transport.Policy
		if len(r.Policy) > 0 {
			if err := json.Unmarshal(r.Policy, &pol); err != nil {
				s.log.Error("server: a published release's policy does not parse; not offered", "release", r.ID, "err", err)
				continue
			}
		}
		out = append(out, &published{rel: release.FromManifest(m, r.Channel), manifest: m, bundle: r.Bundle,
			path: r.Path, policy: pol, at: r.PublishedAt})
	}
	s.verified = seen // forget withdrawn releases
	return out, nil
}

// PublishedRelease is a release as operators see it.
type PublishedRelease struct {
	ID   string      `json:"id"`
	Kind verify.Kind `json:"kind"`
	// Category is security, feature or maintenance; empty when the
	// manifest names none.
	Category verify.Category `json:"category,omitempty"`
	Channel  string          `json:"channel"`
	Models   []string        `json:"models,omitempty"`
	From     []string        `json:"from,omitempty"`
	// Requires are the components a terminal must have before it
	// installs the release.
	Requires  []verify.Requirement `json:"requires,omitempty"`
	Size      int64                `json:"size"`
	Digest    verify.Digest        `json:"digest"`
	Expires   time.Time            `json:"expires"`
	Policy    transport.Policy     `json:"policy"`
	Published time.Time            `json:"published"`
}

// ListReleases lists the published releases, oldest publication first.
func (s *Server) ListReleases(ctx context.Context) ([]PublishedRelease, error) {
	cat, err := s.catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PublishedRelease, len(cat))
	for i, p := range cat {
		out[i] = PublishedRelease{
			ID: p.rel.ID(), Kind: p.rel.Kind, Category: p.rel.Category, Channel: p.rel.Channel, Models: p.rel.Models,
			From: p.rel.From, Requires: p.rel.Requires,
			Size: p.manifest.Artifact.Size, Digest: p.manifest.Artifact.Digest, Expires: p.rel.Expires,
			Policy: p.policy, Published: p.at,
		}
	}
	return out, nil
}

// Releases is [Server.ListReleases] without a context, for callers that
// have none; a store error is logged and gives an empty list.
func (s *Server) Releases() []PublishedRelease {
	out, err := s.ListReleases(context.Background())
	if err != nil {
		s.log.Error("server: list releases", "err", err)
	}
	return out
}
