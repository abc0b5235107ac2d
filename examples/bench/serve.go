//go:build linux

package main

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

// server serves a release directory on 127.0.0.1 the way nginx or a CDN
// would: net/http's FileServer answers with Content-Length, honours Range
// and If-Range, and sends the file with sendfile, so the server costs all
// tools the same little CPU. The artifact gets a strong ETag, its digest,
// which If-Range compares against.
type server struct {
	url  string // the release directory's URL, ending in "/"
	srv  *http.Server
	done chan struct{}
}

func serve(dir string, a *verify.Artifact) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	files := http.FileServer(http.Dir(dir))
	artifactPath := "/" + a.Name
	etag := `"` + a.Digest.Hex() + `"`
	s := &server{
		url: "http://" + ln.Addr().String() + "/",
		srv: &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if path.Clean(r.URL.Path) == artifactPath {
					w.Header().Set("ETag", etag)
				}
				files.ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: 10 * time.Second,
			// Clients that stop reading (a failed check) are not news.
			ErrorLog: log.New(io.Discard, "", 0),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("bench: server: %v", err)
		}
	}()
	return s, nil
}

// artifactURL is where the artifact is.
func (s *server) artifactURL(a *verify.Artifact) string { return s.url + a.Name }

// close stops the server and waits for it.
func (s *server) close() {
	s.srv.Close()
	<-s.done
}
