package httptransport_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/transport/transporttest"
)

// TestConformance runs the transport.Client suite on the real client and
// handler over a real HTTP server on loopback, with the handler mounted
// under a path prefix, as a vendor's gateway might: every call, relative
// artifact URLs included, must keep it.
func TestConformance(t *testing.T) {
	transporttest.TestClient(t, func(t *testing.T, srv *transporttest.Server) transport.Client {
		h, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: srv})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/upkeep/", http.StripPrefix("/upkeep", h))
		ts := httptest.NewServer(mux)
		t.Cleanup(ts.Close)
		c, err := httptransport.New(httptransport.Config{
			BaseURL:    ts.URL + "/upkeep",
			HTTPClient: ts.Client(),
			RetryMax:   -1,
			MaxShed:    -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}
