package transporttest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/internal/version"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// DefaultEnrollment is the enrollment credential a [Server] accepts when
// its Config names none.
const DefaultEnrollment = "upkeep-test-enrollment"

// DefaultHeartbeatInterval is the interval a [Server] directs when its
// Config names none.
const DefaultHeartbeatInterval = time.Minute

// Call kinds, as [Server.FailNextCall] takes them and [Request] records them.
const (
	CallRegister  = "register"
	CallHeartbeat = "heartbeat"
	CallCheck     = "check"
	CallArtifact  = "artifact"
	CallReport    = "report"
)

// Config configures a [Server]. The zero Config is ready to use.
type Config struct {
	// Enrollment is the credential Register accepts; empty means
	// [DefaultEnrollment].
	Enrollment string
	// HeartbeatInterval and HeartbeatJitter are what Heartbeat directs
	// (rounded up to whole seconds). Zero interval means
	// [DefaultHeartbeatInterval]; zero jitter means none. The interval is
	// also the RetryAfterSeconds of a Check that offers nothing.
	HeartbeatInterval time.Duration
	HeartbeatJitter   time.Duration
	// Now is the server's clock (request times, ServerTime); nil means
	// time.Now, which inside a synctest bubble is the bubble's clock.
	Now func() time.Time
}

// Request is one call as the server saw it.
type Request struct {
	// Call is the kind of call: [CallRegister], [CallHeartbeat]...
	Call string
	// DeviceID is the authenticated caller; empty for register.
	DeviceID string
	// Time is when the call arrived, by Config.Now.
	Time time.Time
	// Offset and Length, for an artifact call, are the bytes actually
	// served: where reading began and how many were read. They grow while
	// the artifact is read, so look once the client has read what it
	// wanted.
	Offset, Length int64
	// Code is the protocol error code returned, empty on success or when
	// the call ended with a context error.
	Code transport.Code
	// Err is the error the Service method returned, nil on success.
	Err error
}

// Device is a registered terminal as the server knows it.
type Device struct {
	ID               string
	Serial           string
	Model            string
	HardwareRevision string
	// Components are the installed components, as last reported by
	// register, heartbeat or check.
	Components []transport.Component
	// Token is the device token of its latest registration.
	Token      string
	Registered time.Time
	LastSeen   time.Time
}

type device struct {
	Device
	heartbeats []transport.HeartbeatRequest
	directives []transport.Directive
}

type release struct {
	manifest *verify.Manifest
	bundle   []byte
	policy   transport.Policy
}

type artifact struct {
	data     []byte // replaced, never mutated: readers keep the slice they got
	size     int64  // announced size: len(data) as published
	visible  int64  // bytes served before the content ends (TruncateArtifact)
	modTime  time.Time
	releases int // published releases that ship it
}

type fault struct {
	n    int
	code transport.Code
}

// Server is an in-memory update server for tests: a [transport.Service]
// with fault knobs and a request log. Serve it over HTTP with
// httptransport.NewHandler, or talk to it directly with [Server.Client].
// Faults set with the knobs apply inside the Service methods, so HTTP
// clients and in-memory clients see the same. Every method is safe for
// concurrent use; a Server holds no global state, so make one per test.
type Server struct {
	cfg Config

	mu        sync.Mutex
	nextID    int
	devices   map[string]*device
	tokens    map[string]string // token → device ID
	serials   map[string]string // serial → device ID
	releases  map[string][]*release
	artifacts map[string]*artifact
	reports   []transport.ReportRequest
	reportIDs map[string]bool
	requests  []Request

	failAny   fault
	failCall  map[string]fault
	shedN     int
	shedAfter time.Duration
	delay     time.Duration
	onDelay   func() // called when a call starts waiting out the delay
	noRanges  bool
	wasted    int64 // bytes sent before the offset asked for, by servers ignoring Range
}

var _ transport.Service = (*Server)(nil)

// NewServer returns an empty server: no devices, nothing published.
func NewServer(cfg Config) *Server {
	if cfg.Enrollment == "" {
		cfg.Enrollment = DefaultEnrollment
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.HeartbeatJitter < 0 {
		cfg.HeartbeatJitter = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{
		cfg:       cfg,
		devices:   make(map[string]*device),
		tokens:    make(map[string]string),
		serials:   make(map[string]string),
		releases:  make(map[string][]*release),
		artifacts: make(map[string]*artifact),
		reportIDs: make(map[string]bool),
		failCall:  make(map[string]fault),
	}
}

// Publish makes a release available to Check and its artifact to
// Artifact. The bundle's manifest is parsed (strictly, and validated) but
// its signatures are not verified, and the artifact is stored as given,
// under the manifest's artifact digest, without checking that it matches:
// a test may serve wrong bytes on purpose. Publishing a component@version
// again replaces it.
func (s *Server) Publish(bundle []byte, artifactBytes []byte, policy transport.Policy) error {
	b, err := verify.ParseBundle(bundle)
	if err != nil {
		return fmt.Errorf("transporttest: publish: %w", err)
	}
	if b.Manifest.PayloadType != verify.PayloadManifest {
		return fmt.Errorf("transporttest: publish: bundle carries %q, want %s", b.Manifest.PayloadType, verify.PayloadManifest)
	}
	m, err := verify.ParseManifest(b.Manifest.Payload)
	if err != nil {
		return fmt.Errorf("transporttest: publish: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unpublishLocked(m.Component, m.Version)
	s.releases[m.Component] = append(s.releases[m.Component], &release{
		manifest: m,
		bundle:   bytes.Clone(bundle),
		policy:   policy,
	})
	d := string(m.Artifact.Digest)
	a := s.artifacts[d]
	if a == nil {
		data := bytes.Clone(artifactBytes)
		a = &artifact{data: data, size: int64(len(data)), visible: int64(len(data)), modTime: s.cfg.Now()}
		s.artifacts[d] = a
	}
	a.releases++
	return nil
}

// Unpublish withdraws component@version and, when no other release ships
// it, its artifact. It reports whether the release was published.
func (s *Server) Unpublish(component, version string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unpublishLocked(component, version)
}

func (s *Server) unpublishLocked(component, version string) bool {
	rs := s.releases[component]
	i := slices.IndexFunc(rs, func(r *release) bool { return r.manifest.Version == version })
	if i < 0 {
		return false
	}
	d := string(rs[i].manifest.Artifact.Digest)
	s.releases[component] = slices.Delete(rs, i, i+1)
	if a := s.artifacts[d]; a != nil {
		if a.releases--; a.releases <= 0 {
			delete(s.artifacts, d)
		}
	}
	return true
}

// FailNext makes the next n calls, of any kind, fail with code, replacing
// what an earlier FailNext left pending. n <= 0 clears it.
func (s *Server) FailNext(n int, code transport.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAny = fault{n: n, code: code}
}

// FailNextCall makes the next n calls of one kind ([CallRegister],
// [CallHeartbeat], [CallCheck], [CallArtifact], [CallReport]) fail with
// code, replacing what is pending for that kind. It is checked before
// [Server.FailNext].
func (s *Server) FailNextCall(call string, n int, code transport.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCall[call] = fault{n: n, code: code}
}

// Shed makes the next n calls fail with 503 unavailable carrying
// retryAfter, as an overloaded server sheds load. It is checked before the
// Fail knobs. The HTTP handler sends retryAfter rounded up to whole seconds.
func (s *Server) Shed(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shedN, s.shedAfter = n, retryAfter
}

// SetDelay makes each call wait d before it is answered (0: none). The
// wait ends early, with ctx's error, when ctx is done; inside a synctest
// bubble it passes on the bubble's clock.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// IgnoreRanges makes the server answer every Range request with the whole
// artifact, as some servers do: readers see ArtifactBody.Whole, and the
// bytes before the offset count in Wasted.
func (s *Server) IgnoreRanges(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noRanges = on
}

// Wasted returns the bytes sent before the offsets asked for while ranges
// were ignored: what a client fetched for nothing.
func (s *Server) Wasted() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wasted
}

func (s *Server) ignoringRanges() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noRanges
}

func (s *Server) countWasted(deviceID string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wasted += n
}

// TruncateArtifact serves only the first n bytes of the artifact, while
// still announcing its full size: readers see io.ErrUnexpectedEOF. A
// negative n restores the whole artifact.
func (s *Server) TruncateArtifact(digest string, n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.artifacts[digest]
	if a == nil {
		return fmt.Errorf("%w: %s", ErrUnknownArtifact, digest)
	}
	if n < 0 || n > a.size {
		n = a.size
	}
	a.visible = n
	return nil
}

// CorruptArtifact flips the bits of the byte at offset of the stored
// artifact (doing it twice restores it).
func (s *Server) CorruptArtifact(digest string, offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.artifacts[digest]
	if a == nil {
		return fmt.Errorf("%w: %s", ErrUnknownArtifact, digest)
	}
	if offset < 0 || offset >= a.size {
		return fmt.Errorf("transporttest: offset %d outside the %d bytes of %s", offset, a.size, digest)
	}
	data := bytes.Clone(a.data)
	data[offset] ^= 0xff
	a.data = data
	return nil
}

// SetDirectives queues directives for the device's next heartbeat, which
// delivers them once.
func (s *Server) SetDirectives(deviceID string, directives ...transport.Directive) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[deviceID]; d != nil {
		d.directives = append(d.directives, directives...)
	}
}

// Requests returns the calls the Service methods received, in order.
// Calls refused for their token never reach them and are not logged.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Reports returns the reports recorded, once per ID, in arrival order.
func (s *Server) Reports() []transport.ReportRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reports)
}

// Heartbeats returns the heartbeats a device sent, in order.
func (s *Server) Heartbeats(deviceID string) []transport.HeartbeatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[deviceID]
	if d == nil {
		return nil
	}
	out := make([]transport.HeartbeatRequest, len(d.heartbeats))
	for i, hb := range d.heartbeats {
		out[i] = cloneHeartbeat(hb)
	}
	return out
}

// Devices returns the registered devices, ordered by ID.
func (s *Server) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		dd := d.Device
		dd.Components = slices.Clone(d.Components)
		out = append(out, dd)
	}
	slices.SortFunc(out, func(a, b Device) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// begin logs a call, waits out the delay and applies the fault knobs. It
// returns the call's index in the log and the injected error, if any.
func (s *Server) begin(ctx context.Context, call, deviceID string) (int, error) {
	s.mu.Lock()
	i := len(s.requests)
	s.requests = append(s.requests, Request{Call: call, DeviceID: deviceID, Time: s.cfg.Now()})
	delay, hook := s.delay, s.onDelay
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		if hook != nil {
			hook()
		}
		select {
		case <-ctx.Done():
			return i, ctx.Err()
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return i, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shedN > 0 {
		s.shedN--
		return i, &transport.Error{Code: transport.CodeUnavailable, Message: "load shed", RetryAfter: s.shedAfter}
	}
	if f := s.failCall[call]; f.n > 0 {
		f.n--
		s.failCall[call] = f
		return i, transport.Errorf(f.code, "injected %s failure", call)
	}
	if s.failAny.n > 0 {
		s.failAny.n--
		return i, transport.Errorf(s.failAny.code, "injected failure")
	}
	return i, nil
}

// end records a call's failure and returns err.
func (s *Server) end(i int, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endLocked(i, err)
}

// endLocked is end for callers that hold s.mu.
func (s *Server) endLocked(i int, err error) error {
	s.requests[i].Err = err
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		s.requests[i].Code = transport.AsError(err).Code
	}
	return err
}

// Register enrolls a device. The same serial registered again keeps its
// device ID and gets a new token; the old one stops working.
func (s *Server) Register(ctx context.Context, req *transport.RegisterRequest) (*transport.RegisterResponse, error) {
	i, err := s.begin(ctx, CallRegister, "")
	if err != nil {
		return nil, s.end(i, err)
	}
	if subtle.ConstantTimeCompare([]byte(req.Enrollment), []byte(s.cfg.Enrollment)) != 1 {
		return nil, s.end(i, transport.Errorf(transport.CodeUnauthorized, "enrollment credential refused"))
	}
	tok := "tok-" + rand.Text()
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.serials[req.Serial]
	if !ok {
		s.nextID++
		id = fmt.Sprintf("dev-%04d", s.nextID)
		s.serials[req.Serial] = id
		s.devices[id] = &device{}
	}
	d := s.devices[id]
	if d.Token != "" {
		delete(s.tokens, d.Token)
	}
	d.Device = Device{
		ID:               id,
		Serial:           req.Serial,
		Model:            req.Model,
		HardwareRevision: req.HardwareRevision,
		Components:       slices.Clone(req.Components),
		Token:            tok,
		Registered:       now,
		LastSeen:         now,
	}
	s.tokens[tok] = id
	s.requests[i].DeviceID = id
	return &transport.RegisterResponse{DeviceID: id, Token: tok}, nil
}

// Authenticate maps a token to its device.
func (s *Server) Authenticate(_ context.Context, token string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.tokens[token]; ok {
		return id, nil
	}
	return "", transport.Errorf(transport.CodeUnauthorized, "unknown device token")
}

// Heartbeat records the status and answers with the configured interval
// and jitter and the device's queued directives.
func (s *Server) Heartbeat(ctx context.Context, deviceID string, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	i, err := s.begin(ctx, CallHeartbeat, deviceID)
	if err != nil {
		return nil, s.end(i, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[deviceID]
	if d == nil {
		return nil, s.endLocked(i, transport.Errorf(transport.CodeUnauthorized, "unknown device %s", deviceID))
	}
	now := s.cfg.Now()
	d.heartbeats = append(d.heartbeats, cloneHeartbeat(*req))
	d.LastSeen = now
	if len(req.Components) > 0 {
		d.Components = slices.Clone(req.Components)
	}
	resp := &transport.HeartbeatResponse{
		IntervalSeconds: seconds(s.cfg.HeartbeatInterval),
		JitterSeconds:   seconds(s.cfg.HeartbeatJitter),
		Directives:      d.directives,
		ServerTime:      now,
	}
	d.directives = nil
	return resp, nil
}

// Check offers, for each installed component, the highest published
// release above the installed version whose models and hardware revisions
// (when the manifest names any) include the device's. Nothing more: the
// real negotiation lives in update/release. Offers come firmware first,
// then applications, then parameters, then by component name. With no
// offer, Reason is up_to_date when some release exists for an installed
// component and no_release otherwise, and RetryAfterSeconds is the
// heartbeat interval.
func (s *Server) Check(ctx context.Context, deviceID string, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	i, err := s.begin(ctx, CallCheck, deviceID)
	if err != nil {
		return nil, s.end(i, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[deviceID]; d != nil {
		d.LastSeen = s.cfg.Now()
		d.Components = slices.Clone(req.Components)
	}
	var picked []*release
	anyRelease := false
	for _, c := range req.Components {
		var best *release
		for _, r := range s.releases[c.Name] {
			anyRelease = true
			m := r.manifest
			if newer, err := version.Less(c.Version, m.Version); err != nil || !newer {
				continue
			}
			if !fits(m.Models, req.Model) || !fits(m.HardwareRevisions, req.HardwareRevision) {
				continue
			}
			if best == nil {
				best = r
			} else if higher, err := version.Less(best.manifest.Version, m.Version); err == nil && higher {
				best = r
			}
		}
		if best != nil {
			picked = append(picked, best)
		}
	}
	resp := &transport.CheckResponse{}
	if len(picked) == 0 {
		resp.Reason = transport.ReasonNoRelease
		if anyRelease {
			resp.Reason = transport.ReasonUpToDate
		}
		resp.RetryAfterSeconds = seconds(s.cfg.HeartbeatInterval)
		return resp, nil
	}
	slices.SortFunc(picked, func(a, b *release) int {
		return cmp.Or(cmp.Compare(kindRank(a.manifest.Kind), kindRank(b.manifest.Kind)),
			cmp.Compare(a.manifest.Component, b.manifest.Component))
	})
	for _, r := range picked {
		resp.Offers = append(resp.Offers, transport.Offer{Bundle: bytes.Clone(r.bundle), Policy: r.policy})
	}
	return resp, nil
}

func fits(allowed []string, v string) bool {
	return len(allowed) == 0 || slices.Contains(allowed, v)
}

func kindRank(k verify.Kind) int {
	switch k {
	case verify.KindFirmware:
		return 0
	case verify.KindApplication:
		return 1
	}
	return 2
}

// Artifact serves a published artifact, as truncated or corrupted by the
// knobs. Its reads are logged in the call's Request.
func (s *Server) Artifact(ctx context.Context, deviceID, digest string) (*transport.ArtifactContent, error) {
	i, err := s.begin(ctx, CallArtifact, deviceID)
	if err != nil {
		return nil, s.end(i, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.artifacts[digest]
	if a == nil {
		return nil, s.endLocked(i, transport.Errorf(transport.CodeNotFound, "no artifact %s", digest))
	}
	return &transport.ArtifactContent{
		Content: &servedContent{srv: s, i: i, r: bytes.NewReader(a.data[:a.visible])},
		Size:    a.size,
		ModTime: a.modTime,
		ETag:    `"` + digest + `"`,
	}, nil
}

// Report records a report once per ID.
func (s *Server) Report(ctx context.Context, deviceID string, req *transport.ReportRequest) (*transport.ReportResponse, error) {
	i, err := s.begin(ctx, CallReport, deviceID)
	if err != nil {
		return nil, s.end(i, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reportIDs[req.ID] {
		return &transport.ReportResponse{Duplicate: true}, nil
	}
	s.reportIDs[req.ID] = true
	s.reports = append(s.reports, *req)
	return &transport.ReportResponse{}, nil
}

// servedContent reads an artifact and logs what was read.
type servedContent struct {
	srv     *Server
	i       int
	r       *bytes.Reader
	started bool
}

func (c *servedContent) Read(p []byte) (int, error) {
	pos, _ := c.r.Seek(0, io.SeekCurrent)
	n, err := c.r.Read(p)
	if n > 0 {
		c.srv.mu.Lock()
		if !c.started {
			c.srv.requests[c.i].Offset = pos
			c.started = true
		}
		c.srv.requests[c.i].Length += int64(n)
		c.srv.mu.Unlock()
	}
	return n, err
}

func (c *servedContent) Seek(offset int64, whence int) (int64, error) {
	return c.r.Seek(offset, whence)
}

func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

func cloneHeartbeat(hb transport.HeartbeatRequest) transport.HeartbeatRequest {
	hb.Components = slices.Clone(hb.Components)
	if hb.Battery != nil {
		b := *hb.Battery
		hb.Battery = &b
	}
	if hb.LastResult != nil {
		r := *hb.LastResult
		hb.LastResult = &r
	}
	return hb
}
