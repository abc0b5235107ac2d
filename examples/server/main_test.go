package main

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/upkeephq/upkeep/update/server"
)

func TestParseOperators(t *testing.T) {
	tests := []struct {
		name, file string
		want       map[string]server.Operator
		bad        bool
	}{
		{"empty", "", map[string]server.Operator{}, false},
		{"two", "# who may do what\nalice admin tok-a\n\n  vic viewer tok-v  \n",
			map[string]server.Operator{"tok-a": {Name: "alice", Role: server.RoleAdmin}, "tok-v": {Name: "vic", Role: server.RoleViewer}}, false},
		{"unknown role", "root superuser tok\n", nil, true},
		{"missing token", "alice admin\n", nil, true},
		{"token twice", "alice admin tok\nbob viewer tok\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOperators(strings.NewReader(tt.file), "ops")
			if (err != nil) != tt.bad {
				t.Fatalf("err = %v, want error %v", err, tt.bad)
			}
			if tt.bad {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for tok, op := range tt.want {
				if got[tok] != op {
					t.Errorf("token %s: %+v, want %+v", tok, got[tok], op)
				}
			}
		})
	}
}

// serve stops the background work only once the requests in flight have
// finished: Serve returns as soon as Shutdown begins (review L1).
func TestServeStopsRunAfterTheRequests(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	entered, release := make(chan struct{}), make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		note("request done")
	})}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &closeSignal{Listener: inner, closed: make(chan struct{})}
	run := func(ctx context.Context) error {
		<-ctx.Done()
		note("run stopped")
		return ctx.Err()
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, hs, ln, run) }()
	got := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	<-entered
	stop()
	<-ln.closed // Shutdown has begun: Serve returns
	close(release)
	if err := <-got; err != nil {
		t.Errorf("the request in flight failed: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve = %v", err)
	}
	if want := []string{"request done", "run stopped"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
}

// closeSignal is a listener that says when it is closed.
type closeSignal struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeSignal) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}
