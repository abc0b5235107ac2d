// Command server runs an upkeep update server: protocol v1 for terminals
// and the operator API, serving the releases it is given.
//
//	go run ./examples/server -keys KEYS -publish DIR -enrollment SECRET [-addr 127.0.0.1:8080]
//
// KEYS is the key directory from `release keygen` (only root.pub is read:
// the server refuses to publish what terminals would refuse to install);
// DIR is a release directory from `release pack` (repeat -publish for
// more). Terminals register with SECRET. The secrets may come from the
// environment instead ($UPKEEP_ENROLLMENT, $UPKEEP_OPERATOR_TOKEN), which
// keeps them out of the process list. With -operator-token, operators can
// list terminals:
//
//	curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:8080/v1/operator/terminals
//
// This server keeps fleet state in memory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/upkeephq/upkeep/examples/internal/cli"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/update/server"
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
	operator := fs.String("operator-token", os.Getenv("UPKEEP_OPERATOR_TOKEN"),
		"bearer token for the operator API; empty disables it (default $UPKEEP_OPERATOR_TOKEN)")
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
	log := cli.Logger(*level)
	srv, err := server.New(server.Config{Keys: ring, Enrollment: *enrollment, OperatorToken: *operator,
		HeartbeatInterval: *beat, Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := cli.Context()
	defer stop()
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
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(shutdown)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
