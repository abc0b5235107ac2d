package httptransport_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/verify"
)

func testBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func readAll(t *testing.T, c transport.Client, req transport.ArtifactRequest) ([]byte, error) {
	t.Helper()
	rc, err := c.OpenArtifact(t.Context(), req)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

var someDigest = string(verify.DigestBytes([]byte("some artifact")))

func TestTokenOnlyToBaseHost(t *testing.T) {
	data := testBytes(100)
	serve := func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/artifacts/{digest}", serve)
	mux.HandleFunc("/files/", serve)
	mux.Handle("/to-cdn/", http.RedirectHandler("http://cdn.test/blob", http.StatusFound))
	mux.Handle("/to-self/", http.RedirectHandler("/files/x", http.StatusFound))
	mux.Handle("/to-sub/", http.RedirectHandler("http://cdn.tms.test/blob", http.StatusFound))
	rt := newMemTransport(map[string]http.Handler{
		baseHost:       mux,
		"cdn.test":     http.HandlerFunc(serve),
		"cdn.tms.test": http.HandlerFunc(serve),
	})
	c := newClient(t, rt, httptransport.Config{})
	tests := []struct {
		name      string
		req       transport.ArtifactRequest
		wantToken map[string]bool // host → whether it saw the token
	}{
		{"by digest", transport.ArtifactRequest{Digest: someDigest, Length: -1}, map[string]bool{baseHost: true}},
		{"relative URL", transport.ArtifactRequest{URL: "/files/a.bin", Length: -1}, map[string]bool{baseHost: true}},
		{"absolute URL on the base host", transport.ArtifactRequest{URL: "http://tms.test/files/a.bin", Length: -1}, map[string]bool{baseHost: true}},
		{"foreign host", transport.ArtifactRequest{URL: "http://cdn.test/blob", Length: -1}, map[string]bool{"cdn.test": false}},
		{"other scheme on the base host", transport.ArtifactRequest{URL: "https://tms.test/files/a.bin", Length: -1}, map[string]bool{baseHost: false}},
		{"protocol-relative foreign host", transport.ArtifactRequest{URL: "//cdn.test/blob", Offset: 10, Length: 5}, map[string]bool{"cdn.test": false}},
		{"redirect to a foreign host", transport.ArtifactRequest{URL: "/to-cdn/x", Length: -1}, map[string]bool{baseHost: true, "cdn.test": false}},
		{"redirect to a subdomain", transport.ArtifactRequest{URL: "/to-sub/x", Length: -1}, map[string]bool{baseHost: true, "cdn.tms.test": false}},
		{"redirect on the base host", transport.ArtifactRequest{URL: "/to-self/x", Length: -1}, map[string]bool{baseHost: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rt.requests())
			got, err := readAll(t, c, tt.req)
			if err != nil {
				t.Fatalf("OpenArtifact: %v", err)
			}
			want := data[tt.req.Offset:]
			if tt.req.Length >= 0 {
				want = want[:tt.req.Length]
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(want))
			}
			for _, r := range rt.requests()[before:] {
				sent := r.Header.Get("Authorization") == "Bearer tok"
				if w, ok := tt.wantToken[r.Host]; !ok || sent != w {
					t.Errorf("request to %s%s: token sent %v, want %v", r.Host, r.Path, sent, w)
				}
			}
		})
	}
}

func TestArtifactURLRefused(t *testing.T) {
	c := scripted(t, newScript(bare(200, "")), httptransport.Config{})
	tests := []transport.ArtifactRequest{
		{Digest: "sha256:nothex", Length: -1},
		{Digest: "", Length: -1},
		{URL: "ftp://cdn.test/x", Length: -1},
		{Digest: someDigest, Offset: -1, Length: -1},
	}
	for _, req := range tests {
		if _, err := c.OpenArtifact(t.Context(), req); !errors.Is(err, transport.ErrBadRequest) {
			t.Errorf("OpenArtifact(%+v) = %v, want ErrBadRequest", req, err)
		}
	}
}

// TestRangeAnswered200 covers servers that ignore Range.
func TestRangeAnswered200(t *testing.T) {
	data := testBytes(10000)
	tests := []struct {
		name           string
		withLength     bool
		offset, length int64
		wantErr        error
	}{
		{"middle", true, 5000, 100, nil},
		{"to the end", true, 9000, -1, nil},
		{"middle, no length", false, 5000, 100, nil},
		{"to the end, no length", false, 9000, -1, nil},
		{"past the end", true, 10000, 1, transport.ErrRange},
		{"straddling the end", true, 9990, 20, transport.ErrRange},
		{"past the end, no length", false, 10001, 1, transport.ErrRange},
		{"far past the end, no length", false, 50000, -1, transport.ErrRange},
		{"at the end, no length", false, 10000, 1, transport.ErrRange},
		{"at the end to the end, no length", false, 10000, -1, transport.ErrRange},
		{"last byte, no length", false, 9999, -1, nil},
		// The body ends inside the range: bytes were already handed over.
		{"straddling the end, no length", false, 9990, 20, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(func(w http.ResponseWriter, r *http.Request) {
				if tt.withLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				}
				w.Write(data)
			})
			c := scripted(t, s, httptransport.Config{})
			got, err := readAll(t, c, transport.ArtifactRequest{Digest: someDigest, Offset: tt.offset, Length: tt.length})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := data[tt.offset:]
			if tt.length >= 0 {
				want = want[:tt.length]
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestPartialContentChecked(t *testing.T) {
	data := testBytes(1000)
	partial := func(contentRange string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if contentRange != "" {
				w.Header().Set("Content-Range", contentRange)
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body)
		}
	}
	tests := []struct {
		name           string
		h              http.HandlerFunc
		offset, length int64
		wantErr        error
	}{
		{"right", partial("bytes 100-199/1000", data[100:200]), 100, 100, nil},
		{"right, to the end", partial("bytes 900-999/1000", data[900:]), 900, -1, nil},
		{"right, unknown size", partial("bytes 100-199/*", data[100:200]), 100, 100, nil},
		{"wrong start", partial("bytes 0-99/1000", data[0:100]), 100, 100, httptransport.ErrBadResponse},
		{"wrong end", partial("bytes 100-149/1000", data[100:150]), 100, 100, httptransport.ErrBadResponse},
		{"longer", partial("bytes 100-299/1000", data[100:300]), 100, 100, httptransport.ErrBadResponse},
		{"not to the end", partial("bytes 900-949/1000", data[900:950]), 900, -1, httptransport.ErrBadResponse},
		{"missing", partial("", data[100:200]), 100, 100, httptransport.ErrBadResponse},
		{"malformed", partial("bytes=100-199", data[100:200]), 100, 100, httptransport.ErrBadResponse},
		{"end beyond size", partial("bytes 100-199/150", data[100:200]), 100, 100, httptransport.ErrBadResponse},
		{"length disagrees", partial("bytes 100-199/1000", data[100:150]), 100, 100, httptransport.ErrBadResponse},
		{"clamped at the end", partial("bytes 950-999/1000", data[950:]), 950, 100, transport.ErrRange},
		{"to a request without Range", partial("bytes 0-999/1000", data), 0, -1, httptransport.ErrBadResponse},
		{"short body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 100-199/1000")
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[100:150])
		}, 100, 100, io.ErrUnexpectedEOF},
		{"416", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes */1000")
			http.Error(w, "invalid range", http.StatusRequestedRangeNotSatisfiable)
		}, 2000, 100, transport.ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := scripted(t, newScript(tt.h), httptransport.Config{})
			got, err := readAll(t, c, transport.ArtifactRequest{Digest: someDigest, Offset: tt.offset, Length: tt.length})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				want := data[tt.offset:]
				if tt.length >= 0 {
					want = want[:tt.length]
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("read %d bytes, want %d", len(got), len(want))
				}
			}
		})
	}
}

func TestArtifactRangeHeader(t *testing.T) {
	tests := []struct {
		offset, length int64
		want           string
	}{
		{0, -1, ""},
		{0, 10, "bytes=0-9"},
		{5, -1, "bytes=5-"},
		{1 << 40, 1 << 20, fmt.Sprintf("bytes=%d-%d", int64(1)<<40, int64(1)<<40+1<<20-1)},
	}
	for _, tt := range tests {
		rt := newMemTransport(map[string]http.Handler{baseHost: bare(http.StatusNotFound, "")})
		c := newClient(t, rt, httptransport.Config{})
		_, err := c.OpenArtifact(t.Context(), transport.ArtifactRequest{Digest: someDigest, Offset: tt.offset, Length: tt.length})
		if !errors.Is(err, transport.ErrNotFound) {
			t.Fatalf("OpenArtifact: %v", err)
		}
		h := rt.requests()[0].Header
		if got := h.Get("Range"); got != tt.want {
			t.Errorf("offset %d length %d: Range %q, want %q", tt.offset, tt.length, got, tt.want)
		}
		if h.Get("Accept-Encoding") != "identity" {
			t.Errorf("Accept-Encoding %q, want identity", h.Get("Accept-Encoding"))
		}
	}
}

// TestArtifactLargeReads checks that the reader passes a caller's large
// buffer straight to the body.
func TestArtifactLargeReads(t *testing.T) {
	data := testBytes(3 << 20)
	c := scripted(t, newScript(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}), httptransport.Config{})
	rc, err := c.OpenArtifact(t.Context(), transport.ArtifactRequest{Digest: someDigest, Offset: 1, Length: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 1<<20)
	n, err := rc.Read(buf)
	if err != nil || n != len(buf) {
		t.Fatalf("one Read of 1 MiB got %d bytes, %v", n, err)
	}
	if !bytes.Equal(buf, data[1:1+len(buf)]) {
		t.Fatal("wrong bytes")
	}
}

func TestArtifactRetriedBeforeBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c, _ := faked(t, httptransport.Config{})
		keys, err := transporttest.NewKeys(time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		rel, err := keys.NewRelease(verify.Manifest{Component: "app", Version: "1.0.0"}, testBytes(20000))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{}); err != nil {
			t.Fatal(err)
		}
		srv.FailNextCall(transporttest.CallArtifact, 2, transport.CodeUnavailable)
		got, err := readAll(t, c, transport.ArtifactRequest{Digest: rel.Digest(), Offset: 4096, Length: 8192})
		if err != nil {
			t.Fatalf("OpenArtifact through two failures: %v", err)
		}
		if !bytes.Equal(got, rel.Artifact[4096:4096+8192]) {
			t.Fatal("wrong bytes")
		}
		var n int
		for _, r := range srv.Requests() {
			if r.Call == transporttest.CallArtifact {
				n++
			}
		}
		if n != 3 {
			t.Fatalf("%d artifact attempts, want 3", n)
		}
	})
}

// TestArtifactURLUnderPrefix: a relative artifact URL keeps BaseURL's
// path prefix, with or without its leading slash.
func TestArtifactURLUnderPrefix(t *testing.T) {
	data := testBytes(100)
	s := newScript(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	})
	rt := newMemTransport(map[string]http.Handler{baseHost: s})
	tests := []struct {
		base, ref, wantPath string
	}{
		{"http://tms.test/upkeep", "v1/artifacts/x", "/upkeep/v1/artifacts/x"},
		{"http://tms.test/upkeep", "/v1/artifacts/x", "/upkeep/v1/artifacts/x"},
		{"http://tms.test/upkeep/", "/v1/artifacts/x", "/upkeep/v1/artifacts/x"},
		{"http://tms.test", "/v1/artifacts/x", "/v1/artifacts/x"},
		{"http://tms.test/upkeep", "http://tms.test/elsewhere/x", "/elsewhere/x"},
	}
	for _, tt := range tests {
		t.Run(tt.base+" "+tt.ref, func(t *testing.T) {
			c := newClient(t, rt, httptransport.Config{BaseURL: tt.base})
			before := len(rt.requests())
			got, err := readAll(t, c, transport.ArtifactRequest{URL: tt.ref, Offset: 10, Length: 5})
			if err != nil || !bytes.Equal(got, data[10:15]) {
				t.Fatalf("read %q, %v", got, err)
			}
			reqs := rt.requests()[before:]
			if len(reqs) != 1 || reqs[0].Path != tt.wantPath {
				t.Fatalf("requests %+v, want one for %s", reqs, tt.wantPath)
			}
			if reqs[0].Header.Get("Authorization") != "Bearer tok" {
				t.Errorf("no token sent to the update server")
			}
		})
	}
}

// TestPresignedURLRedacted: the query and userinfo of a URL off the base
// origin (a presigned CDN URL's signature) reach neither the errors nor
// the logs; URLs on the base origin are shown whole.
func TestPresignedURLRedacted(t *testing.T) {
	const presigned = "https://u:hunter2@cdn.test/a.bin?X-Amz-Credential=AKIA42&X-Amz-Signature=s3cr3t#frag"
	secrets := []string{"hunter2", "AKIA42", "s3cr3t", "frag"}
	tests := []struct {
		name string
		req  transport.ArtifactRequest
		want string // what the error must say of the URL
	}{
		{"refused", transport.ArtifactRequest{URL: presigned, Length: -1}, "https://cdn.test/a.bin"},
		{"redirected to", transport.ArtifactRequest{URL: "/to-cdn", Length: -1}, "https://cdn.test/a.bin"},
		{"unparseable", transport.ArtifactRequest{URL: "https://cdn.test/%zz?X-Amz-Signature=s3cr3t", Length: -1}, ""},
		{"redirected to ftp", transport.ArtifactRequest{URL: "/to-ftp", Length: -1}, "ftp://cdn.test/a.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				mux := http.NewServeMux()
				mux.Handle("/to-cdn", http.RedirectHandler(presigned, http.StatusFound))
				mux.Handle("/to-ftp", http.RedirectHandler(strings.Replace(presigned, "https", "ftp", 1), http.StatusFound))
				rt := newMemTransport(map[string]http.Handler{baseHost: mux}) // cdn.test refuses
				c := newClient(t, rt, httptransport.Config{
					RetryMax: 2,
					Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				})
				_, err := readAll(t, c, tt.req)
				if err == nil {
					t.Fatal("OpenArtifact succeeded")
				}
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error holds %q: %v", s, err)
					}
					if strings.Contains(logs.String(), s) {
						t.Errorf("log holds %q:\n%s", s, logs.String())
					}
				}
				if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %v does not name %s", err, tt.want)
				}
				if strings.Contains(tt.req.URL, "/to-") && !strings.Contains(logs.String()+err.Error(), "http://tms.test/to-") {
					t.Errorf("the base URL is not named in full:\n%v\n%s", err, logs.String())
				}
			})
		})
	}
}
