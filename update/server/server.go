package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/memstore"
	"github.com/upkeephq/upkeep/verify"
)

// Defaults for zero Config fields.
const (
	DefaultHeartbeatInterval = 5 * time.Minute
	DefaultCheckRetryAfter   = time.Hour
	// DefaultRolloutEvery is how often rollouts are decided again and
	// their offline devices counted, when nothing else moves them.
	DefaultRolloutEvery = 30 * time.Second
	// maxHistory is how many of a terminal's latest reports Terminals
	// lists with it.
	maxHistory = 32
	// maxOffers bounds the steps of a plan one check offers: as many as
	// the agent looks at.
	maxOffers = 8
)

// Config configures a [Server]. Keys and one of Enrollment or Enroll are
// required.
type Config struct {
	// Keys are the root keys releases must chain to. The server refuses to
	// publish what a terminal would refuse to install.
	Keys *verify.KeyRing
	// Enrollment is the fleet's enrollment credential a terminal presents
	// to register (compared in constant time). Ignored when Enroll is set.
	// A shared credential lets whoever holds it register a serial again (as
	// a terminal must after a factory reset), which gives that serial a new
	// token and revokes the old one; the model cannot change that way. Use
	// Enroll with per-device credentials where that matters.
	Enrollment string
	// Enroll, if set, decides whether a registration is allowed, e.g. by
	// checking a per-device credential against the vendor's inventory. It
	// returns an error matching transport.ErrUnauthorized to refuse.
	Enroll func(ctx context.Context, req *transport.RegisterRequest) error
	// Store keeps the fleet's state: terminals, reports, releases,
	// rollouts and the audit log. Several servers on one store (replicas
	// behind a load balancer, on pgstore) behave as one. nil means a new
	// in-memory store (memstore): one process, forgotten on restart. The
	// server does not close it.
	Store store.Store
	// Operators are the operator API's credentials: bearer token →
	// operator. Viewers read; admins also publish, run rollouts and nudge.
	// nil (and no OperatorToken) disables the operator API.
	Operators map[string]Operator
	// OperatorToken is a bearer token for an admin named "operator", as
	// if added to Operators. Empty adds none.
	OperatorToken string
	// ReleaseRoot is the directory an operator publishes from through the
	// operator API: a publish request names a release directory inside it
	// by a relative path. Empty refuses publishing over HTTP (the Go API,
	// [Server.Publish], takes any path).
	ReleaseRoot string
	// HeartbeatInterval is the interval terminals are told to beat at;
	// 0 means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// HeartbeatJitter is the jitter terminals are told to add; 0 means a
	// tenth of the interval.
	HeartbeatJitter time.Duration
	// CheckRetryAfter is when a terminal with nothing to do should check
	// again; 0 means DefaultCheckRetryAfter.
	CheckRetryAfter time.Duration
	// RolloutEvery is how often a rollout is decided again when nothing
	// else moves it (its start time, a stage's soak, its expiry) and, in
	// [Server.Run], how often its devices' liveness is swept. 0 means
	// DefaultRolloutEvery.
	RolloutEvery time.Duration
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// Logger receives the server's log; nil discards.
	Logger *slog.Logger
}

// Server is the update service. It implements transport.Service, and
// keeps everything in its [store.Store]: two Servers on one store answer
// alike. A Server is safe for concurrent use.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     store.Store
	live      *heartbeat.Registry // only its Judge: liveness of what the store holds
	operators map[[sha256.Size]byte]Operator
	batcher   atomic.Pointer[store.Batcher]
	running   atomic.Bool

	mu       sync.Mutex
	verified map[[sha256.Size]byte]*verify.Manifest // bundles verified, by their hash
}

var _ transport.Service = (*Server)(nil)

// New returns a Server on cfg.Store (a new in-memory store if nil).
func New(cfg Config) (*Server, error) {
	if cfg.Keys == nil {
		return nil, errConfig("Config.Keys is required")
	}
	if cfg.Enrollment == "" && cfg.Enroll == nil {
		return nil, errConfig("Config.Enrollment or Config.Enroll is required")
	}
	if cfg.HeartbeatInterval < 0 || cfg.HeartbeatJitter < 0 || cfg.CheckRetryAfter < 0 || cfg.RolloutEvery < 0 {
		return nil, errConfig("negative durations are not allowed")
	}
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, DefaultHeartbeatInterval)
	cfg.HeartbeatJitter = cmp.Or(cfg.HeartbeatJitter, cfg.HeartbeatInterval/10)
	cfg.CheckRetryAfter = cmp.Or(cfg.CheckRetryAfter, DefaultCheckRetryAfter)
	cfg.RolloutEvery = cmp.Or(cfg.RolloutEvery, DefaultRolloutEvery)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ops, err := operatorTable(cfg.Operators, cfg.OperatorToken)
	if err != nil {
		return nil, err
	}
	st := cfg.Store
	if st == nil {
		st = memstore.New()
	}
	live, err := heartbeat.NewRegistry(heartbeat.RegistryConfig{DefaultInterval: cfg.HeartbeatInterval})
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: cfg.Logger, store: st, live: live, operators: ops,
		verified: map[[sha256.Size]byte]*verify.Manifest{}}, nil
}

// Run does the server's background work until ctx ends, then returns
// ctx.Err(): it writes heartbeats in batches (many requests, one store
// transaction) and, every Config.RolloutEvery, runs [Server.Reconcile].
// Stop what serves requests (http.Server.Shutdown) before ending ctx.
//
// Run is optional. Without it each heartbeat is its own transaction, and
// rollouts move only on reports, checks and operator actions: their
// offline devices are not counted as offline (they wait as pending, which
// can hold a stage back), a device silent since its offer is never lost
// (it holds its stage back for good), a rollout whose creation stopped is
// not resumed, and progress reported by heartbeats alone is not seen.
// Run may be called again after it returns; called while it runs, it
// returns ErrRunning.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	b, err := store.NewBatcher(store.BatcherConfig{Writer: s.store, Logger: s.log})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(ctx)
	}()
	s.batcher.Store(b)
	defer func() {
		s.batcher.CompareAndSwap(b, nil)
		<-done
	}()
	tick := time.NewTicker(s.cfg.RolloutEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("server: reconcile failed", "err", err)
			}
		}
	}
}

// Handler returns the HTTP handler: protocol v1 for terminals and, when
// operators are configured, the operator API under /v1/operator/ (see
// [Server.OperatorHandler]).
func (s *Server) Handler() (http.Handler, error) {
	dev, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: s, Logger: s.log})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", dev)
	mux.Handle("/v1/operator/", s.OperatorHandler())
	return mux, nil
}

// Register enrolls a terminal. A serial that registers again keeps its
// device ID and gets a new token; the old one stops working.
func (s *Server) Register(ctx context.Context, req *transport.RegisterRequest) (*transport.RegisterResponse, error) {
	if s.cfg.Enroll != nil {
		if err := s.cfg.Enroll(ctx, req); err != nil {
			return nil, err
		}
	} else if subtle.ConstantTimeCompare([]byte(req.Enrollment), []byte(s.cfg.Enrollment)) != 1 {
		return nil, transport.Errorf(transport.CodeUnauthorized, "enrollment credential refused")
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	hash := tokenHash(token)
	now := s.cfg.Now()
	otherModel := transport.Errorf(transport.CodeConflict, "serial %s is registered as another model", req.Serial)
	// Two registrations of one serial may race, on two replicas: the one
	// that loses the create registers again over the winner.
	for range 3 {
		t, err := s.store.TerminalBySerial(ctx, req.Serial)
		switch {
		case err == nil:
			_, err = s.store.UpdateTerminal(ctx, t.ID, func(t *store.Terminal) error {
				if t.Model != req.Model {
					// A registration cannot turn a terminal into another
					// model and so into a target for another model's
					// firmware.
					return otherModel
				}
				t.TokenHash, t.HardwareRevision, t.RegisteredAt = hash, req.HardwareRevision, now
				t.Components = toStoreComponents(req.Components)
				return nil
			})
			if errors.Is(err, otherModel) {
				s.log.Warn("server: refused re-registration as another model", "device", t.ID, "serial", req.Serial,
					"model", t.Model, "claimed", req.Model)
				return nil, otherModel
			}
			if err != nil {
				return nil, fromStore(err, "register %s", req.Serial)
			}
			s.log.Warn("server: terminal registered again; its old token is revoked", "device", t.ID, "serial", req.Serial)
			s.audit(ctx, Operator{Name: "terminal:" + t.ID, Role: roleTerminal}, "terminal.register_again", t.ID, nil,
				"serial "+req.Serial+": a new token; the old one is revoked")
			return &transport.RegisterResponse{DeviceID: t.ID, Token: token}, nil
		case errors.Is(err, store.ErrNotFound):
			id, err := newDeviceID()
			if err != nil {
				return nil, err
			}
			err = s.store.CreateTerminal(ctx, store.Terminal{ID: id, Serial: req.Serial, Model: req.Model,
				HardwareRevision: req.HardwareRevision, TokenHash: hash, Components: toStoreComponents(req.Components),
				RegisteredAt: now})
			if errors.Is(err, store.ErrExists) {
				continue
			}
			if err != nil {
				return nil, fromStore(err, "register %s", req.Serial)
			}
			s.log.Info("server: terminal registered", "device", id, "serial", req.Serial, "model", req.Model)
			return &transport.RegisterResponse{DeviceID: id, Token: token}, nil
		default:
			return nil, fromStore(err, "register %s", req.Serial)
		}
	}
	return nil, transport.Errorf(transport.CodeConflict, "serial %s: concurrent registrations; try again", req.Serial)
}

// Authenticate maps a token to its terminal.
func (s *Server) Authenticate(ctx context.Context, token string) (string, error) {
	id, err := s.store.TokenOwner(ctx, tokenHash(token))
	if errors.Is(err, store.ErrNotFound) {
		return "", transport.Errorf(transport.CodeUnauthorized, "unknown device token")
	}
	if err != nil {
		return "", fromStore(err, "authenticate")
	}
	return id, nil
}

// Heartbeat records a terminal's status and directs its schedule. While
// [Server.Run] runs, beats are written in batches.
//
// A beat takes the terminal's pending directives (a nudge's check) to
// answer with. If its request ends before it can be answered (the
// terminal gave up, on a slow network), the directives are put back for
// its next beat. An answer lost on the way after the server sent it is
// lost with its directives: delivery is at most once, and a terminal that
// misses a nudge checks on its own schedule anyway (Config.CheckRetryAfter).
func (s *Server) Heartbeat(ctx context.Context, deviceID string, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	now := s.cfg.Now()
	beat := store.Heartbeat{DeviceID: deviceID, At: now, Interval: s.cfg.HeartbeatInterval,
		Status: store.Status{Seq: req.Seq, State: req.State, Release: req.Release, Waiting: req.Waiting,
			Network: req.Network},
		Components: toStoreComponents(req.Components), LastResult: toStoreResult(req.LastResult)}
	if b := req.Battery; b != nil {
		beat.Status.Battery = &store.Battery{Percent: b.Percent, OnMains: b.OnMains}
	}
	dirs, err := s.beat(ctx, beat)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnknownTerminal()
	}
	if err != nil {
		return nil, fromStore(err, "heartbeat")
	}
	if ctx.Err() != nil {
		if len(dirs) > 0 {
			s.requeue(ctx, deviceID, dirs)
		}
		return nil, ctx.Err()
	}
	resp := &transport.HeartbeatResponse{
		IntervalSeconds: int(s.cfg.HeartbeatInterval / time.Second),
		JitterSeconds:   int(s.cfg.HeartbeatJitter / time.Second),
		ServerTime:      now,
	}
	for _, d := range dirs {
		resp.Directives = append(resp.Directives, transport.Directive(d))
	}
	return resp, nil
}

// requeueTimeout bounds the write that puts back the directives of a beat
// whose request ended.
const requeueTimeout = 10 * time.Second

// requeue puts directives a beat took back before the terminal's pending
// ones, once each, for its next beat: the beat's request ended before it
// could be answered.
func (s *Server) requeue(ctx context.Context, deviceID string, dirs []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requeueTimeout)
	defer cancel()
	_, err := s.store.UpdateTerminal(ctx, deviceID, func(t *store.Terminal) error {
		pending := t.Directives
		t.Directives = nil
		for _, d := range append(slices.Clone(dirs), pending...) {
			if !slices.Contains(t.Directives, d) {
				t.Directives = append(t.Directives, d)
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("server: directives of an unanswered heartbeat are lost", "device", deviceID, "directives", dirs, "err", err)
		return
	}
	s.log.Info("server: heartbeat not answered; its directives wait for the next", "device", deviceID, "directives", dirs)
}

// beat writes a heartbeat through the running batcher, or alone.
func (s *Server) beat(ctx context.Context, b store.Heartbeat) ([]string, error) {
	if bt := s.batcher.Load(); bt != nil {
		dirs, err := bt.Add(ctx, b)
		if !errors.Is(err, store.ErrClosed) {
			return dirs, err
		}
		// Run stopped before the beat was written: write it alone.
	}
	res, err := s.store.Heartbeats(ctx, []store.Heartbeat{b})
	if err != nil {
		return nil, err
	}
	return res[0].Directives, res[0].Err
}

// Check offers the releases the terminal should install, in the order to
// install them (see release.Plan): a release whose requirements the
// terminal does not meet yet comes after the releases that meet them. A
// release that a rollout governs is offered only as the rollout allows
// (see [Server.CreateRollout]), whether the terminal is due it for itself
// or to meet another's requirement; one without a rollout is offered to
// every terminal it fits. At most eight steps are offered at once: the
// terminal installs one at a time and checks again.
func (s *Server) Check(ctx context.Context, deviceID string, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	now := s.cfg.Now()
	t, err := s.store.Terminal(ctx, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnknownTerminal()
	}
	if err != nil {
		return nil, fromStore(err, "check")
	}
	comps := toStoreComponents(req.Components)
	if !slices.Equal(t.Components, comps) || t.Channel != req.Channel {
		t, err = s.store.UpdateTerminal(ctx, deviceID, func(t *store.Terminal) error {
			t.Components, t.Channel = comps, req.Channel
			return nil
		})
		if err != nil {
			return nil, fromStore(err, "check")
		}
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		return nil, err
	}
	governed, err := s.rolloutsByRelease(ctx)
	if err != nil {
		return nil, err
	}
	// The model is the one the terminal registered with: a check cannot
	// talk the server into another model's firmware.
	dev := release.Device{Model: t.Model, HardwareRevision: cmp.Or(t.HardwareRevision, req.HardwareRevision),
		Channel: req.Channel, Components: map[string]release.Installed{}}
	for _, c := range req.Components {
		dev.Components[c.Name] = release.Installed{Version: c.Version, Floor: c.Floor}
	}

	retry := s.cfg.CheckRetryAfter
	held := false // a rollout holds back a release that fits
	all := releases(cat)
	candidates := make([]release.Release, 0, len(cat))
	offerable := make(map[string]*published, len(cat)) // by ID and channel
	grants := map[*published]*grant{}
	for _, p := range cat {
		rs := governed[p.rel.ID()]
		if len(rs) > 0 {
			g, wait, err := s.admit(ctx, rs, t, dev, p, all, now)
			if err != nil {
				return nil, err
			}
			if g == nil {
				if wait > 0 {
					held, retry = true, min(retry, wait)
				}
				continue
			}
			grants[p] = g
		}
		candidates = append(candidates, p.rel)
		offerable[pubKey(p.rel)] = p
	}
	answer := func(reason transport.Reason) *transport.CheckResponse {
		if held && (reason == transport.ReasonUpToDate || reason == transport.ReasonNoRelease) {
			reason = transport.ReasonNoRelease // not yet: a rollout will come to it
		}
		return &transport.CheckResponse{Reason: reason, RetryAfterSeconds: max(1, int(retry/time.Second))}
	}
	plan, err := release.Plan(dev, candidates, now)
	if err != nil {
		var re *release.Error
		if errors.As(err, &re) {
			return answer(re.Reason), nil
		}
		return nil, err
	}
	var offers []transport.Offer
	for _, r := range plan[:min(len(plan), maxOffers)] {
		p := offerable[pubKey(r)]
		policy := p.policy
		if g := grants[p]; g != nil {
			// A step the terminal can take now is a start its rollout
			// counts; one that waits for the steps before it is counted
			// when the terminal, having taken them, checks again.
			if release.Compatible(dev, r) == nil {
				ok, wait, err := s.commitOffer(ctx, g, now)
				if err != nil {
					return nil, err
				}
				if !ok {
					// Its rollout's cap was taken meanwhile: the plan
					// stops short of it, and what follows may need it.
					held, retry = true, min(retry, wait)
					break
				}
			}
			policy = mergePolicy(policy, g.policy)
		}
		offers = append(offers, transport.Offer{Bundle: p.bundle, Policy: policy})
	}
	if len(offers) == 0 {
		return answer(transport.ReasonNoRelease), nil
	}
	return &transport.CheckResponse{Offers: offers}, nil
}

// pubKey names a publication: a release on a channel.
func pubKey(r release.Release) string { return r.ID() + " " + r.Channel }

// mergePolicy adds a rollout's deadline to a release's own policy: the
// earlier deadline wins, and either may make the offer blocking.
func mergePolicy(p, r transport.Policy) transport.Policy {
	p.Blocking = p.Blocking || r.Blocking
	if !r.Deadline.IsZero() && (p.Deadline.IsZero() || r.Deadline.Before(p.Deadline)) {
		p.Deadline = r.Deadline
	}
	return p
}

// Artifact opens a published artifact. Every replica serves it from the
// path it was published at, so replicas share the release directories
// (or an Offer's ArtifactURL points at a CDN).
func (s *Server) Artifact(ctx context.Context, deviceID, digest string) (*transport.ArtifactContent, error) {
	cat, err := s.catalog(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(cat, func(p *published) bool { return string(p.manifest.Artifact.Digest) == digest })
	if i < 0 {
		return nil, transport.Errorf(transport.CodeNotFound, "no artifact %s", digest)
	}
	p := cat[i]
	f, err := os.Open(p.path)
	if err != nil {
		return nil, fmt.Errorf("server: artifact %s: %w", digest, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if info.Size() != p.manifest.Artifact.Size {
		f.Close()
		return nil, fmt.Errorf("server: artifact %s changed on disk since it was published", p.path)
	}
	return &transport.ArtifactContent{Content: f, Size: info.Size(), ModTime: info.ModTime(), ETag: `"` + p.manifest.Artifact.Digest.Hex() + `"`}, nil
}

// Report records a terminal's report once per report ID, with what it
// changes: the terminal's last result and, on a commit of a published
// release, its version. A report on a rollout's release moves the device
// on in the rollout, which may then advance or halt. A manual update's
// report lands in the audit log as the terminal's, quoting the
// technician's credential it reports.
func (s *Server) Report(ctx context.Context, deviceID string, req *transport.ReportRequest) (*transport.ReportResponse, error) {
	now := s.cfg.Now()
	cat, err := s.catalog(ctx)
	if err != nil {
		return nil, err
	}
	var m *verify.Manifest
	if req.Outcome == transport.OutcomeCommitted {
		// Only a release this server published counts: a report cannot
		// invent components.
		if i := slices.IndexFunc(cat, func(p *published) bool { return p.rel.ID() == req.Release }); i >= 0 {
			m = cat[i].manifest
		}
	}
	rep := store.Report{DeviceID: deviceID, ID: req.ID, Release: req.Release, From: req.From, To: req.To,
		Phase: req.Phase, Outcome: string(req.Outcome), Reason: string(req.Reason), Detail: req.Detail, At: req.At,
		ReceivedAt: now}
	_, err = s.store.AddReport(ctx, rep, func(t *store.Terminal) error {
		if req.Reason != transport.ReasonAttempts {
			// "Attempts exhausted" follows the last attempt's own report:
			// a notice, not a newer result.
			t.LastResult = &store.Result{Release: req.Release, Outcome: string(req.Outcome), Reason: string(req.Reason), At: req.At}
		}
		if m != nil {
			t.Components = withVersion(t.Components, m.Component, m.Version)
		}
		return nil
	})
	dup := errors.Is(err, store.ErrExists)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errUnknownTerminal()
	case err != nil && !dup:
		return nil, fromStore(err, "report")
	}
	if !dup {
		s.log.Info("server: report", "device", deviceID, "release", req.Release, "outcome", req.Outcome, "reason", req.Reason)
		if mu := req.Manual; mu != nil {
			var fail error
			if req.Outcome != transport.OutcomeCommitted {
				fail = errors.New(reported(string(req.Outcome)) + " (" + reported(string(req.Reason)) + ")")
			}
			// The credential is what the terminal says a technician used:
			// the terminal is the actor, and what it says is quoted,
			// cleaned and bounded.
			s.audit(ctx, Operator{Name: "terminal:" + deviceID, Role: roleTerminal}, "terminal.manual_update", deviceID, fail,
				fmt.Sprintf("%s installed by hand: method %q, credential %q, as the terminal reports: %s",
					reported(req.Release), reported(mu.Method), reported(mu.Credential), reported(string(req.Outcome))))
		}
	}
	// A duplicate moves the rollout too: the first delivery may have been
	// recorded by a replica that failed before it did. Moving a device is
	// idempotent.
	if err := s.observeReport(ctx, deviceID, req, now); err != nil {
		return nil, err
	}
	return &transport.ReportResponse{Duplicate: dup}, nil
}

// maxReported bounds, in runes, a string a terminal reports that goes
// into the audit log.
const maxReported = 64

// reported is a string a terminal reports, fit for the audit log: control
// and invisible characters become '?', and it is cut at maxReported runes.
func reported(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxReported {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// withVersion returns cs with component name at version v.
func withVersion(cs []store.Component, name, v string) []store.Component {
	i := slices.IndexFunc(cs, func(c store.Component) bool { return c.Name == name })
	switch {
	case i >= 0:
		cs[i].Version = v
	case len(cs) < transport.MaxComponents:
		cs = append(cs, store.Component{Name: name, Version: v})
	}
	return cs
}

func toStoreComponents(cs []transport.Component) []store.Component {
	if len(cs) == 0 {
		return nil
	}
	out := make([]store.Component, len(cs))
	for i, c := range cs {
		out[i] = store.Component{Name: c.Name, Version: c.Version, Floor: c.Floor}
	}
	return out
}

func fromStoreComponents(cs []store.Component) []transport.Component {
	out := make([]transport.Component, len(cs))
	for i, c := range cs {
		out[i] = transport.Component{Name: c.Name, Version: c.Version, Floor: c.Floor}
	}
	return out
}

func toStoreResult(r *transport.Result) *store.Result {
	if r == nil {
		return nil
	}
	return &store.Result{Release: r.Release, Outcome: string(r.Outcome), Reason: string(r.Reason), At: r.At}
}

func fromStoreResult(r *store.Result) *transport.Result {
	if r == nil {
		return nil
	}
	return &transport.Result{Release: r.Release, Outcome: transport.Outcome(r.Outcome), Reason: transport.Reason(r.Reason), At: r.At}
}

func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// newDeviceID returns a random device ID: replicas issue IDs without a
// shared counter, and the store refuses a collision.
func newDeviceID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "t-" + hex.EncodeToString(b[:]), nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
