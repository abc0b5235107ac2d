package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/upkeephq/upkeep/heartbeat"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/boltstore"
	"github.com/upkeephq/upkeep/update/server/store/memstore"
	"github.com/upkeephq/upkeep/update/server/store/pgstore"
	"github.com/upkeephq/upkeep/verify"
	"github.com/upkeephq/upkeep/verify/sign"
)

// The in-process server's schedule, in its own (compressed) time.
const (
	heartbeatInterval = time.Minute
	// reconcileEvery is how often the simulator reconciles the rollouts.
	reconcileEvery = heartbeatInterval / 2
)

// env is where the terminals run: an update server in this process, on
// loopback, or a remote one.
type env struct {
	url        string // the server's base URL
	enrollment string
	release    string // component@version rolled out
	component  string
	model      string
	from       string
	speed      float64
	// clockRate is how fast the server's clock runs against the wall's:
	// speed in process, 1 for a remote server.
	clockRate float64
	op        *operatorClient
	hc        *http.Client // shared by the terminals' clients
	// clock is the server's time as the terminals read it.
	clock func() time.Time

	srv    *server.Server // nil for a remote server
	writes *writeLog      // the in-process store's writes
	// served times the in-process server's answers, by path, from the
	// request's arrival to the handler's return.
	served map[string]*latencies
	desc   string // says what the server is
	close  func() error
}

// wall converts a duration the server gives into the terminals' wall
// time: the simulation runs speed times as fast.
func (e *env) wall(d time.Duration) time.Duration { return time.Duration(float64(d) / e.speed) }

// offlineAfter returns how long, in wall time, a terminal told to beat
// every interval must be silent before the server judges it offline (or,
// holding an offer, silent) and a sweep counts it so: two missed beats and
// a minute's grace (the heartbeat registry's defaults), then another
// interval.
func (e *env) offlineAfter(interval time.Duration) time.Duration {
	d := heartbeat.DefaultMisses*interval + heartbeat.DefaultGrace + interval
	return time.Duration(float64(d) / e.clockRate)
}

// client returns a protocol client for one terminal: HTTP with the shared
// connections, or the in-process server's Go API with -direct.
func (e *env) client(direct bool) (protocol, error) {
	if direct {
		return &directClient{svc: e.srv}, nil
	}
	return httptransport.New(httptransport.Config{BaseURL: e.url, HTTPClient: e.hc,
		RetryMax: 3, RetryWaitMin: e.wall(time.Second), RetryWaitMax: max(e.wall(10*time.Second), e.wall(time.Second)),
		UserAgent: "upkeep-fleet/1"})
}

// sharedHTTP returns the HTTP client every terminal shares: at most conns
// connections, kept open.
func sharedHTTP(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// newEnv starts an update server in this process, or connects to the one
// at o.server.
func newEnv(ctx context.Context, o options, stderr io.Writer) (*env, error) {
	e := &env{model: o.model, from: o.from, release: o.release, speed: o.speed, clockRate: 1, hc: sharedHTTP(o.conns)}
	comp, _, ok := strings.Cut(o.release, "@")
	if !ok || comp == "" {
		return nil, fmt.Errorf("-release %q: want component@version", o.release)
	}
	e.component = comp
	if o.server != "" {
		e.url, e.enrollment, e.desc = strings.TrimSuffix(o.server, "/"), o.enrollment, "remote server "+o.server
		e.op = newOperatorClient(e.url, o.opToken)
		// The remote server keeps the wall clock's time (on this machine,
		// or near enough): reports are dated by it.
		e.clock = time.Now
		e.close = func() error { e.hc.CloseIdleConnections(); e.op.hc.CloseIdleConnections(); return nil }
		return e, nil
	}
	if err := e.startServer(ctx, o, stderr); err != nil {
		return nil, err
	}
	return e, nil
}

// startServer runs an update server in this process on a free loopback
// port, with a clock o.speed times as fast as the wall's, and publishes a
// release of -release for -model, upgradable from ~1.0.
func (e *env) startServer(ctx context.Context, o options, stderr io.Writer) (err error) {
	var closers []func() error
	e.close = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	start := time.Now()
	speed := o.speed
	e.clockRate = speed
	e.clock = func() time.Time { return start.Add(time.Duration(float64(time.Since(start)) * speed)) }
	e.enrollment = randomHex(16)
	opToken := randomHex(16)

	work, err := os.MkdirTemp("", "upkeep-fleet-")
	if err != nil {
		return err
	}
	closers = append(closers, func() error { return os.RemoveAll(work) })
	keys, err := sign.NewKeyDir(nil, start.Add(-time.Hour), 365*24*time.Hour)
	if err != nil {
		return err
	}
	ring, err := keys.KeyRing()
	if err != nil {
		return err
	}
	version := strings.TrimPrefix(e.release, e.component+"@")
	in := filepath.Join(work, "firmware.bin")
	if err := os.WriteFile(in, bytes.Repeat([]byte("upkeep fleet "), 5000), 0o644); err != nil {
		return err
	}
	packed, err := sign.Pack(ctx, sign.PackConfig{In: in, Out: filepath.Join(work, "release"), Key: keys.Signing,
		Certs: []verify.Envelope{keys.Cert}, KeyRing: ring,
		Manifest: verify.Manifest{Component: e.component, Version: version, Kind: verify.KindFirmware,
			Models: []string{e.model}, From: []string{"~1.0"}}})
	if err != nil {
		return err
	}

	fleet, closeStore, desc, err := openStore(ctx, o, work)
	if err != nil {
		return err
	}
	closers = append(closers, closeStore)
	e.writes = &writeLog{}
	fleet = &timedStore{Store: fleet, log: e.writes}
	var log *slog.Logger
	if o.verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	// Rollouts are reconciled every half heartbeat by the loop below.
	// RolloutEvery is both Run's own timer, in wall time, and how stale
	// (in the server's time) a rollout may be before a check decides it
	// again: a wall-clock half heartbeat in the server's time, so that
	// checks seldom do and Run's timer seldom fires.
	every := e.wall(reconcileEvery)
	srv, err := server.New(server.Config{Keys: ring, Enrollment: e.enrollment, Store: fleet, OperatorToken: opToken,
		HeartbeatInterval: heartbeatInterval, RolloutEvery: time.Duration(float64(every) * speed),
		Now: e.clock, Logger: log})
	if err != nil {
		return err
	}
	if _, err := srv.Publish(ctx, packed.Dir, server.PublishOptions{}); err != nil {
		return err
	}
	h, err := srv.Handler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.served = map[string]*latencies{transport.PathHeartbeat: {}, transport.PathCheck: {}}
	hs := &http.Server{Handler: timed(h, e.served), ReadHeaderTimeout: 10 * time.Second}
	e.srv, e.url = srv, "http://"+ln.Addr().String()
	e.op = newOperatorClient(e.url, opToken)
	e.desc = fmt.Sprintf("in-process server on %s, %s", e.url, desc)

	// Background work: HTTP, Run (batched heartbeats), reconciling. It
	// stops in that order.
	runCtx, stopRun := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { hs.Serve(ln) })
	if !o.noBatch {
		wg.Go(func() { srv.Run(runCtx) })
	}
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := srv.Reconcile(runCtx); err != nil && runCtx.Err() == nil && log != nil {
					log.Warn("fleet: reconcile", "err", err)
				}
			}
		}
	})
	closers = append(closers, func() error {
		// The terminals' idle connections first: the server would wait
		// five seconds for one the client dialed and never used.
		e.hc.CloseIdleConnections()
		e.op.hc.CloseIdleConnections()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := hs.Shutdown(shut)
		stopRun()
		wg.Wait()
		return err
	})
	return nil
}

// openStore opens the in-process server's fleet store: in memory, in a
// bbolt file under work (or -data), or in a fresh PostgreSQL schema that
// is dropped when it is closed.
func openStore(ctx context.Context, o options, work string) (store.Store, func() error, string, error) {
	switch o.store {
	case "bolt":
		dir := o.dataDir
		if dir == "" {
			dir = filepath.Join(work, "data")
		}
		s, err := boltstore.Open(dir, boltstore.Options{})
		if err != nil {
			return nil, nil, "", err
		}
		return s, s.Close, "bolt store in " + dir, nil
	case "postgres":
		schema := "upkeep_fleet_" + randomHex(6)
		s, err := pgstore.Open(ctx, o.postgres, pgstore.Options{Schema: schema, MaxConns: o.pgConns})
		if err != nil {
			return nil, nil, "", err
		}
		drop := func() error {
			s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, o.postgres)
			if err != nil {
				return fmt.Errorf("drop schema %s: %w", schema, err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
				return fmt.Errorf("drop schema %s: %w", schema, err)
			}
			return nil
		}
		return s, drop, "PostgreSQL store in schema " + schema + " (dropped after)", nil
	}
	return memstore.New(), func() error { return nil }, "memory store", nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// timed returns h timing its answers to the paths in by.
func timed(h http.Handler, by map[string]*latencies) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		if l := by[r.URL.Path]; l != nil {
			l.add(start)
		}
	})
}

// protocol is what a simulated terminal calls: the protocol client alone,
// without artifacts (a simulated terminal downloads nothing).
// *httptransport.Client implements it.
type protocol interface {
	Register(ctx context.Context, req *transport.RegisterRequest) (*transport.RegisterResponse, error)
	Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error)
	Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error)
	Report(ctx context.Context, req *transport.ReportRequest) (*transport.ReportResponse, error)
}

// directClient calls a server's Go API as the HTTP handler would: each
// request validated, the token authenticated, then the call.
type directClient struct {
	svc   transport.Service
	mu    sync.Mutex
	token string
}

func (c *directClient) Register(ctx context.Context, req *transport.RegisterRequest) (*transport.RegisterResponse, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	resp, err := c.svc.Register(ctx, req)
	if err == nil {
		c.mu.Lock()
		c.token = resp.Token
		c.mu.Unlock()
	}
	return resp, err
}

func (c *directClient) device(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	return c.svc.Authenticate(ctx, tok)
}

func (c *directClient) Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	id, err := c.device(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.Heartbeat(ctx, id, req)
}

func (c *directClient) Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	id, err := c.device(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.Check(ctx, id, req)
}

func (c *directClient) Report(ctx context.Context, req *transport.ReportRequest) (*transport.ReportResponse, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	id, err := c.device(ctx)
	if err != nil {
		return nil, err
	}
	return c.svc.Report(ctx, id, req)
}

// operatorClient calls the operator API, on connections of its own: it
// must not queue behind the terminals.
type operatorClient struct {
	base, token string
	hc          *http.Client
}

func newOperatorClient(base, token string) *operatorClient {
	return &operatorClient{base: base, token: token, hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, MaxIdleConnsPerHost: 2}}}
}

// do sends in (if not nil) as JSON and decodes the answer into out.
func (c *operatorClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb transport.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return fmt.Errorf("operator API %s %s: %s: %s", method, path, eb.Error.Code, eb.Error.Message)
		}
		return fmt.Errorf("operator API %s %s: %s", method, path, resp.Status)
	}
	return json.Unmarshal(data, out)
}

func (c *operatorClient) createRollout(ctx context.Context, spec server.RolloutSpec) (server.RolloutStatus, error) {
	var st server.RolloutStatus
	err := c.do(ctx, http.MethodPost, "/v1/operator/rollouts", spec, &st)
	return st, err
}

func (c *operatorClient) rollout(ctx context.Context, id string) (server.RolloutStatus, error) {
	var st server.RolloutStatus
	err := c.do(ctx, http.MethodGet, "/v1/operator/rollouts/"+id, nil, &st)
	return st, err
}
