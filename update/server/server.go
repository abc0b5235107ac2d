package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/update/release"
	"github.com/upkeephq/upkeep/verify"
)

// Defaults for zero Config fields.
const (
	DefaultHeartbeatInterval = 5 * time.Minute
	DefaultCheckRetryAfter   = time.Hour
	// maxHistory bounds the reports kept per terminal.
	maxHistory = 32
	// maxReportIDs bounds the report IDs remembered per terminal for
	// deduplication; terminals resend only what their outbox holds.
	maxReportIDs = 512
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
	// OperatorToken is the bearer token of the operator API; empty
	// disables it.
	OperatorToken string
	// HeartbeatInterval is the interval terminals are told to beat at;
	// 0 means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// HeartbeatJitter is the jitter terminals are told to add; 0 means a
	// tenth of the interval.
	HeartbeatJitter time.Duration
	// CheckRetryAfter is when a terminal with nothing to do should check
	// again; 0 means DefaultCheckRetryAfter.
	CheckRetryAfter time.Duration
	// Now returns the time; nil means time.Now.
	Now func() time.Time
	// Logger receives the server's log; nil discards.
	Logger *slog.Logger
}

// Server is the update service. It implements transport.Service.
type Server struct {
	cfg      Config
	log      *slog.Logger
	registry *heartbeat.Registry

	mu        sync.Mutex
	releases  []*published
	byDigest  map[verify.Digest]*published
	devices   map[string]*device // by device ID
	bySerial  map[string]string  // serial → device ID
	byToken   map[string]string  // sha256(token) → device ID
	idCounter int
}

type published struct {
	rel      release.Release
	manifest *verify.Manifest
	bundle   []byte
	path     string // the artifact file
	policy   transport.Policy
	at       time.Time
}

type device struct {
	id, serial, model, hw string
	tokenHash             string
	components            []transport.Component
	status                transport.HeartbeatRequest
	registered            time.Time
	reports               map[string]bool // report IDs seen, for deduplication
	reportOrder           []string        // the same, oldest first, to bound them
	history               []transport.ReportRequest
	last                  *transport.Result
	directives            []transport.Directive
}

var _ transport.Service = (*Server)(nil)

// New returns a Server with no releases and no terminals.
func New(cfg Config) (*Server, error) {
	if cfg.Keys == nil {
		return nil, errors.New("server: Config.Keys is required")
	}
	if cfg.Enrollment == "" && cfg.Enroll == nil {
		return nil, errors.New("server: Config.Enrollment or Config.Enroll is required")
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.HeartbeatJitter == 0 {
		cfg.HeartbeatJitter = cfg.HeartbeatInterval / 10
	}
	if cfg.CheckRetryAfter == 0 {
		cfg.CheckRetryAfter = DefaultCheckRetryAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatInterval < 0 || cfg.HeartbeatJitter < 0 || cfg.CheckRetryAfter < 0 {
		return nil, errors.New("server: negative durations are not allowed")
	}
	reg, err := heartbeat.NewRegistry(heartbeat.RegistryConfig{})
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg: cfg, log: cfg.Logger, registry: reg,
		byDigest: map[verify.Digest]*published{}, devices: map[string]*device{},
		bySerial: map[string]string{}, byToken: map[string]string{},
	}, nil
}

// PublishOptions say how a release is offered.
type PublishOptions struct {
	// Channel is the release channel; empty means release.DefaultChannel.
	Channel string
	// Policy is sent with every offer of the release.
	Policy transport.Policy
}

// Publish verifies a release directory written by `release pack` (the
// bundle's signatures and expiry, and every chunk of the artifact) and
// starts offering it. Publishing the same release again replaces it.
func (s *Server) Publish(ctx context.Context, dir string, opts PublishOptions) (release.Release, error) {
	rd, err := verify.OpenReleaseDir(ctx, dir, s.cfg.Keys, s.cfg.Now(), nil)
	if err != nil {
		return release.Release{}, fmt.Errorf("server: publish %s: %w", dir, err)
	}
	p := &published{
		rel: release.FromManifest(rd.Manifest, opts.Channel), manifest: rd.Manifest, bundle: rd.Bundle,
		path: rd.ArtifactPath(), policy: opts.Policy, at: s.cfg.Now(),
	}
	p.rel.Channel = cmp.Or(p.rel.Channel, release.DefaultChannel)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releases = slices.DeleteFunc(s.releases, func(q *published) bool {
		return q.rel.ID() == p.rel.ID() && q.rel.Channel == p.rel.Channel
	})
	s.releases = append(s.releases, p)
	// Serve each artifact while a release that names it is published.
	s.byDigest = map[verify.Digest]*published{}
	for _, q := range s.releases {
		s.byDigest[q.manifest.Artifact.Digest] = q
	}
	s.log.Info("server: published", "release", p.rel.ID(), "channel", cmp.Or(opts.Channel, release.DefaultChannel),
		"bytes", rd.Manifest.Artifact.Size)
	return p.rel, nil
}

// Nudge asks a terminal to check for updates at its next heartbeat.
func (s *Server) Nudge(deviceID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceID]
	if !ok {
		return transport.Errorf(transport.CodeNotFound, "no terminal %q", deviceID)
	}
	if !slices.Contains(d.directives, transport.DirectiveCheck) {
		d.directives = append(d.directives, transport.DirectiveCheck)
	}
	return nil
}

// Handler returns the HTTP handler: protocol v1 for terminals and, when
// Config.OperatorToken is set, the operator API under /v1/operator/.
func (s *Server) Handler() (http.Handler, error) {
	dev, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: s, Logger: s.log})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", dev)
	mux.Handle("GET /v1/operator/terminals", s.operator(s.listTerminals))
	mux.Handle("GET /v1/operator/releases", s.operator(s.listReleases))
	mux.Handle("POST /v1/operator/terminals/{id}/nudge", s.operator(s.nudge))
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
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.bySerial[req.Serial]
	if ok && s.devices[id].model != req.Model {
		// A registration cannot turn a terminal into another model and
		// so into a target for another model's firmware.
		s.log.Warn("server: refused re-registration as another model", "device", id, "serial", req.Serial,
			"model", s.devices[id].model, "claimed", req.Model)
		return nil, transport.Errorf(transport.CodeConflict, "serial %s is registered as another model", req.Serial)
	}
	if ok {
		s.log.Warn("server: terminal registered again; its old token is revoked", "device", id, "serial", req.Serial)
	} else {
		s.idCounter++
		id = fmt.Sprintf("t-%06d", s.idCounter)
		s.bySerial[req.Serial] = id
		s.devices[id] = &device{id: id, serial: req.Serial, reports: map[string]bool{}}
	}
	d := s.devices[id]
	delete(s.byToken, d.tokenHash)
	d.tokenHash = tokenHash(token)
	s.byToken[d.tokenHash] = id
	d.model, d.hw, d.registered = req.Model, req.HardwareRevision, s.cfg.Now()
	d.components = slices.Clone(req.Components)
	s.log.Info("server: terminal registered", "device", id, "serial", req.Serial, "model", req.Model)
	return &transport.RegisterResponse{DeviceID: id, Token: token}, nil
}

// Authenticate maps a token to its terminal.
func (s *Server) Authenticate(ctx context.Context, token string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byToken[tokenHash(token)]
	if !ok {
		return "", transport.Errorf(transport.CodeUnauthorized, "unknown device token")
	}
	return id, nil
}

// Heartbeat records a terminal's status and directs its schedule.
func (s *Server) Heartbeat(ctx context.Context, deviceID string, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	now := s.cfg.Now()
	s.registry.Seen(deviceID, now, s.cfg.HeartbeatInterval)
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceID]
	if !ok {
		return nil, transport.Errorf(transport.CodeUnauthorized, "unknown terminal")
	}
	d.status = *req
	if len(req.Components) > 0 {
		d.components = slices.Clone(req.Components)
	}
	if req.LastResult != nil {
		d.last = req.LastResult
	}
	resp := &transport.HeartbeatResponse{
		IntervalSeconds: int(s.cfg.HeartbeatInterval / time.Second),
		JitterSeconds:   int(s.cfg.HeartbeatJitter / time.Second),
		Directives:      d.directives,
		ServerTime:      now,
	}
	d.directives = nil
	return resp, nil
}

// Check offers the release that fits the terminal, if any.
func (s *Server) Check(ctx context.Context, deviceID string, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	s.mu.Lock()
	d, ok := s.devices[deviceID]
	if !ok {
		s.mu.Unlock()
		return nil, transport.Errorf(transport.CodeUnauthorized, "unknown terminal")
	}
	d.components = slices.Clone(req.Components)
	catalog := make([]release.Release, len(s.releases))
	for i, p := range s.releases {
		catalog[i] = p.rel
	}
	// The model is the one the terminal registered with: a check cannot
	// talk the server into another model's firmware.
	dev := release.Device{Model: d.model, HardwareRevision: cmp.Or(d.hw, req.HardwareRevision), Channel: req.Channel,
		Components: map[string]release.Installed{}}
	s.mu.Unlock()
	for _, c := range req.Components {
		dev.Components[c.Name] = release.Installed{Version: c.Version, Floor: c.Floor}
	}
	retry := int(s.cfg.CheckRetryAfter / time.Second)
	r, err := release.Negotiate(dev, catalog, s.cfg.Now())
	if err != nil {
		var re *release.Error
		if errors.As(err, &re) {
			return &transport.CheckResponse{Reason: re.Reason, RetryAfterSeconds: retry}, nil
		}
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.releases {
		if p.rel.ID() == r.ID() && p.rel.Channel == r.Channel {
			return &transport.CheckResponse{Offers: []transport.Offer{{Bundle: p.bundle, Policy: p.policy}}}, nil
		}
	}
	return &transport.CheckResponse{Reason: transport.ReasonNoRelease, RetryAfterSeconds: retry}, nil
}

// Artifact opens a published artifact.
func (s *Server) Artifact(ctx context.Context, deviceID, digest string) (*transport.ArtifactContent, error) {
	s.mu.Lock()
	p, ok := s.byDigest[verify.Digest(digest)]
	s.mu.Unlock()
	if !ok {
		return nil, transport.Errorf(transport.CodeNotFound, "no artifact %s", digest)
	}
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

// Report records a terminal's report once per report ID.
func (s *Server) Report(ctx context.Context, deviceID string, req *transport.ReportRequest) (*transport.ReportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceID]
	if !ok {
		return nil, transport.Errorf(transport.CodeUnauthorized, "unknown terminal")
	}
	if d.reports[req.ID] {
		return &transport.ReportResponse{Duplicate: true}, nil
	}
	d.reports[req.ID] = true
	d.reportOrder = append(d.reportOrder, req.ID)
	if len(d.reportOrder) > maxReportIDs {
		delete(d.reports, d.reportOrder[0])
		d.reportOrder = d.reportOrder[1:]
	}
	d.history = append(d.history, *req)
	if len(d.history) > maxHistory {
		d.history = d.history[len(d.history)-maxHistory:]
	}
	if req.Reason != transport.ReasonAttempts {
		// "Attempts exhausted" follows the last attempt's own report: a
		// notice, not a newer result.
		d.last = &transport.Result{Release: req.Release, Outcome: req.Outcome, Reason: req.Reason, At: req.At}
	}
	if req.Outcome == transport.OutcomeCommitted {
		s.committed(d, req.Release)
	}
	s.log.Info("server: report", "device", deviceID, "release", req.Release, "outcome", req.Outcome, "reason", req.Reason)
	return &transport.ReportResponse{}, nil
}

// committed records, on a commit report, what the terminal now runs, so
// operators need not wait for its next heartbeat. Only a release this
// server published counts: a report cannot invent components.
func (s *Server) committed(d *device, id string) {
	var m *verify.Manifest
	for _, p := range s.releases {
		if p.rel.ID() == id {
			m = p.manifest
			break
		}
	}
	if m == nil {
		return
	}
	i := slices.IndexFunc(d.components, func(c transport.Component) bool { return c.Name == m.Component })
	switch {
	case i >= 0:
		d.components[i].Version = m.Version
	case len(d.components) < transport.MaxComponents:
		d.components = append(d.components, transport.Component{Name: m.Component, Version: m.Version})
	}
}

// Terminal is a terminal as operators see it.
type Terminal struct {
	DeviceID         string                    `json:"device_id"`
	Serial           string                    `json:"serial"`
	Model            string                    `json:"model"`
	HardwareRevision string                    `json:"hardware_revision,omitempty"`
	Components       []transport.Component     `json:"components"`
	State            string                    `json:"state,omitempty"`
	Release          string                    `json:"release,omitempty"`
	Waiting          string                    `json:"waiting,omitempty"`
	LastResult       *transport.Result         `json:"last_result,omitempty"`
	Reports          []transport.ReportRequest `json:"reports,omitempty"`
	LastSeen         time.Time                 `json:"last_seen,omitzero"`
	Online           bool                      `json:"online"`
}

// Terminals lists every enrolled terminal, by device ID.
func (s *Server) Terminals() []Terminal {
	now := s.cfg.Now()
	s.mu.Lock()
	out := make([]Terminal, 0, len(s.devices))
	for _, d := range s.devices {
		t := Terminal{
			DeviceID: d.id, Serial: d.serial, Model: d.model, HardwareRevision: d.hw,
			Components: slices.Clone(d.components), State: d.status.State, Release: d.status.Release,
			Waiting: d.status.Waiting, Reports: slices.Clone(d.history),
		}
		if d.last != nil {
			l := *d.last
			t.LastResult = &l
		}
		out = append(out, t)
	}
	s.mu.Unlock()
	for i := range out {
		if l, ok := s.registry.Get(out[i].DeviceID, now); ok {
			out[i].LastSeen, out[i].Online = l.LastSeen, l.Online
		}
	}
	slices.SortFunc(out, func(a, b Terminal) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	return out
}

// PublishedRelease is a release as operators see it.
type PublishedRelease struct {
	ID        string           `json:"id"`
	Kind      verify.Kind      `json:"kind"`
	Channel   string           `json:"channel"`
	Models    []string         `json:"models,omitempty"`
	From      []string         `json:"from,omitempty"`
	Size      int64            `json:"size"`
	Digest    verify.Digest    `json:"digest"`
	Expires   time.Time        `json:"expires"`
	Policy    transport.Policy `json:"policy"`
	Published time.Time        `json:"published"`
}

// Releases lists the published releases, oldest first.
func (s *Server) Releases() []PublishedRelease {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PublishedRelease, len(s.releases))
	for i, p := range s.releases {
		out[i] = PublishedRelease{
			ID: p.rel.ID(), Kind: p.rel.Kind, Channel: cmp.Or(p.rel.Channel, release.DefaultChannel),
			Models: p.rel.Models, From: p.rel.From, Size: p.manifest.Artifact.Size, Digest: p.manifest.Artifact.Digest,
			Expires: p.rel.Expires, Policy: p.policy, Published: p.at,
		}
	}
	return out
}

func (s *Server) operator(h func(w http.ResponseWriter, r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		var err error
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case s.cfg.OperatorToken == "":
			err = transport.Errorf(transport.CodeForbidden, "the operator API is disabled")
		case !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.OperatorToken)) != 1:
			w.Header().Set("WWW-Authenticate", `Bearer realm="upkeep-operator"`)
			err = transport.Errorf(transport.CodeUnauthorized, "operator token required")
		default:
			v, err = h(w, r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			e := transport.AsError(err)
			if e.Code == transport.CodeInternal {
				s.log.Error("server: operator request failed", "path", r.URL.Path, "err", err)
			}
			w.WriteHeader(e.HTTPStatus())
			v = transport.ErrorBody{Error: transport.ErrorDetail{Code: e.Code, Message: e.Message}}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	})
}

func (s *Server) listTerminals(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.Terminals(), nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.Releases(), nil
}

func (s *Server) nudge(w http.ResponseWriter, r *http.Request) (any, error) {
	id := r.PathValue("id")
	if err := s.Nudge(id); err != nil {
		return nil, err
	}
	return map[string]string{"device_id": id, "directive": string(transport.DirectiveCheck)}, nil
}

func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return string(h[:])
}
