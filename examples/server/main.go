// Command server runs an upkeep update server: protocol v1 for terminals
// and the operator API, serving the releases it is given.
//
//	go run ./examples/server -keys KEYS -publish DIR -enrollment SECRET [-addr 127.0.0.1:8080]
//
// KEYS is the key directory from `release keygen` (only root.pub is read:
// the server refuses to publish what terminals would refuse to install);
// DIR is a release directory from `release pack` (repeat -publish for
// more). Terminals register with SECRET. The secrets may come from the
// environment instead ($UPKEEP_ENROLLMENT and the operator tokens below),
// which keeps them out of the process list.
//
// The fleet's state (terminals, reports, releases, rollouts, the audit
// log) is kept in an embedded store in the -data directory, so it
// survives restarts; -postgres DSN keeps it in PostgreSQL instead, where
// several servers share it behind a load balancer; -data "" keeps it in
// memory.
//
// The operator API has admins, who publish, run rollouts and nudge, and
// viewers, who read. $UPKEEP_OPERATOR_TOKEN (or -operator-token) is an
// admin's token, $UPKEEP_VIEWER_TOKEN a viewer's, and -operators FILE
// adds more, one "name role token" a line:
//
//	curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:8080/v1/operator/terminals
//	curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:8080/v1/operator/inventory.csv
//	curl -H "Authorization: Bearer TOKEN" -d '{"id":"fw-1.1","release":"firmware@1.1.0","batches":[10,100]}' \
//		http://127.0.0.1:8080/v1/operator/rollouts
//
// With -release-root DIR, admins publish release directories under DIR
// over the API: POST /v1/operator/releases {"dir": "rel-1.1.0"}.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/examples/internal/cli"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/server"
	"github.com/upkeephq/upkeep/update/server/store"
	"github.com/upkeephq/upkeep/update/server/store/boltstore"
	"github.com/upkeephq/upkeep/update/server/store/pgstore"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	keys := fs.String("keys", "", "key directory from `release keygen`, or its root.pub (required)")
	enrollment := fs.String("enrollment", os.Getenv("UPKEEP_ENROLLMENT"),
		"the enrollment credential terminals register with (required; default $UPKEEP_ENROLLMENT, which keeps it out of the process list)")
	data := fs.String("data", "upkeep-data", `directory of the embedded fleet store; "" keeps the fleet in memory`)
	postgres := fs.String("postgres", os.Getenv("UPKEEP_POSTGRES"),
		"PostgreSQL DSN of the fleet store, shared by replicas; overrides -data (default $UPKEEP_POSTGRES)")
	operator := fs.String("operator-token", os.Getenv("UPKEEP_OPERATOR_TOKEN"),
		"bearer token of an admin named \"operator\" (default $UPKEEP_OPERATOR_TOKEN)")
	viewer := fs.String("viewer-token", os.Getenv("UPKEEP_VIEWER_TOKEN"),
		"bearer token of a viewer named \"viewer\" (default $UPKEEP_VIEWER_TOKEN)")
	operators := fs.String("operators", "", `file of operators, one "name role token" a line (role: admin or viewer)`)
	releaseRoot := fs.String("release-root", "", "directory admins may publish release directories from over the operator API")
	beat := fs.Duration("heartbeat", time.Minute, "heartbeat interval terminals are told to use")
	channel := fs.String("channel", "", "channel to publish on (default stable)")
	blocking := fs.Bool("blocking", false, "mark published releases blocking: gates must not let the merchant defer them")
	level := fs.String("log", "info", "log level: debug, info, warn, error")
	var publish cli.Strings
	fs.Var(&publish, "publish", "release directory from `release pack` to serve (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *enrollment == "" {
		return errors.New("-enrollment is required: there is no default credential")
	}
	ring, err := cli.KeyRing(*keys)
	if err != nil {
		return err
	}
	ops := map[string]server.Operator{}
	if *operators != "" {
		if ops, err = readOperators(*operators); err != nil {
			return err
		}
	}
	if *viewer != "" {
		ops[*viewer] = server.Operator{Name: "viewer", Role: server.RoleViewer}
	}
	log := cli.Logger(*level)
	ctx, stop := cli.Context()
	defer stop()

	fleet, closeFleet, err := openStore(ctx, *postgres, *data, log)
	if err != nil {
		return err
	}
	defer closeFleet()
	srv, err := server.New(server.Config{Keys: ring, Enrollment: *enrollment, Store: fleet, Operators: ops,
		OperatorToken: *operator, ReleaseRoot: *releaseRoot, HeartbeatInterval: *beat, Logger: log})
	if err != nil {
		return err
	}
	for _, dir := range publish {
		opts := server.PublishOptions{Channel: *channel, Policy: transport.Policy{Blocking: *blocking}}
		if _, err := srv.Publish(ctx, dir, opts); err != nil {
			return err
		}
	}
	h, err := srv.Handler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// Requests are small; responses (artifacts) may take long on 4G, so
	// there is no write timeout.
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute}
	log.Info("server: listening", "url", "http://"+ln.Addr().String(), "releases", len(publish))
	return serve(ctx, hs, ln, srv.Run)
}

// shutdownTimeout bounds how long the requests in flight may take to
// finish once the server is told to stop.
const shutdownTimeout = 10 * time.Second

// serve serves HTTP on ln until ctx ends, with run (the server's
// background work: batched heartbeats, rollouts on a timer) beside it.
// When ctx ends it shuts the HTTP server down, waits for the requests in
// flight to finish (up to shutdownTimeout), and only then stops run, so
// that no request is left waiting on it and none is cut off before the
// store closes.
func serve(ctx context.Context, hs *http.Server, ln net.Listener, run func(context.Context) error) error {
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- run(runCtx) }()
	shutdown := make(chan struct{})
	go func() {
		defer close(shutdown)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		// Serve returns as soon as Shutdown begins; the requests in
		// flight are done when Shutdown returns.
		<-shutdown
		err = nil
	}
	stopRun()
	<-ran
	return err
}

// openStore opens the fleet store the flags name and returns how to close
// it.
func openStore(ctx context.Context, dsn, dir string, log *slog.Logger) (store.Store, func(), error) {
	switch {
	case dsn != "":
		s, err := pgstore.Open(ctx, dsn, pgstore.Options{Logger: log})
		if err != nil {
			return nil, nil, err
		}
		log.Info("server: fleet store", "kind", "postgres")
		return s, func() { s.Close() }, nil
	case dir != "":
		s, err := boltstore.Open(dir, boltstore.Options{Logger: log})
		if err != nil {
			return nil, nil, err
		}
		log.Info("server: fleet store", "kind", "embedded", "dir", dir)
		return s, func() { s.Close() }, nil
	}
	log.Warn("server: the fleet is kept in memory and forgotten when the server stops")
	return nil, func() {}, nil
}

// readOperators reads a file of operators: "name role token" a line;
// blank lines and lines starting with # are skipped.
func readOperators(path string) (map[string]server.Operator, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseOperators(f, path)
}

func parseOperators(r io.Reader, name string) (map[string]server.Operator, error) {
	ops := map[string]server.Operator{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"name role token\"", name, n)
		}
		role := server.Role(f[1])
		if role != server.RoleAdmin && role != server.RoleViewer {
			return nil, fmt.Errorf("%s:%d: role %q: want admin or viewer", name, n, f[1])
		}
		if _, dup := ops[f[2]]; dup {
			return nil, fmt.Errorf("%s:%d: a token is listed twice", name, n)
		}
		ops[f[2]] = server.Operator{Name: f[0], Role: role}
	}
	return ops, sc.Err()
}
