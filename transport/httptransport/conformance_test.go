package httptransport_test

import (
	"net/http/httptest"
	"testing"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/httptransport"
	"github.com/upkeephq/upkeep/transport/transporttest"
)

// TestConformance runs the transport.Client suite on the real client and
// handler over a real HTTP server on loopback.
func TestConformance(t *testing.T) {
	transporttest.TestClient(t, func(t *testing.T, srv *transporttest.Server) transport.Client {
		h, err := httptransport.NewHandler(httptransport.HandlerConfig{Service: srv})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(h)
		t.Cleanup(ts.Close)
		c, err := httptransport.New(httptransport.Config{
			BaseURL:    ts.URL,
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
