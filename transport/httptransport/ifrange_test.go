package httptransport_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
)

// TestArtifactETagAndIfRange: the reader tells the ETag served; a request
// with a matching If-Range gets its range; after the file changed (another
// ETag) the server sends the whole new file, which the reader reports as
// Whole while still yielding the bytes at the offset asked.
func TestArtifactETagAndIfRange(t *testing.T) {
	content := []byte("0123456789abcdefghij")
	etag := `"v1"`
	mux := http.NewServeMux()
	mux.HandleFunc("/fw.bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "fw.bin", time.Time{}, bytes.NewReader(content))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := httptransport.New(httptransport.Config{BaseURL: srv.URL, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	open := func(ifRange string) (string, transport.ArtifactBody) {
		t.Helper()
		rc, err := c.OpenArtifact(context.Background(), transport.ArtifactRequest{URL: srv.URL + "/fw.bin", Offset: 10, Length: 5, IfRange: ifRange})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), rc.(transport.ArtifactBody)
	}
	got, body := open("")
	if got != "abcde" || body.ETag() != `"v1"` || body.Whole() {
		t.Fatalf("plain range: %q etag %q whole %v", got, body.ETag(), body.Whole())
	}
	if got, body = open(`"v1"`); got != "abcde" || body.Whole() {
		t.Fatalf("matching If-Range: %q whole %v", got, body.Whole())
	}
	etag = `"v2"`
	if got, body = open(`"v1"`); got != "abcde" || !body.Whole() || body.ETag() != `"v2"` {
		t.Fatalf("stale If-Range: %q whole %v etag %q, want the range from a whole v2", got, body.Whole(), body.ETag())
	}
}
