package httptransport_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport/httptransport"
)

// TestTLSFailuresNotRetried runs real TLS handshakes on loopback: a
// failure that a retry cannot change (a certificate refused by Go's
// verifier or by the vendor's own, a client certificate the server
// wants) is returned after one connection, not retried.
func TestTLSFailuresNotRetried(t *testing.T) {
	tests := []struct {
		name      string
		serverTLS *tls.Config // nil: the default
		client    func(ts *httptest.Server, verified *atomic.Int32) *http.Client
	}{
		{"vendor's verifier refuses", nil, func(ts *httptest.Server, verified *atomic.Int32) *http.Client {
			tr := ts.Client().Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error {
				verified.Add(1)
				return errors.New("certificate pin mismatch")
			}
			return &http.Client{Transport: tr}
		}},
		{"vendor's connection check refuses", nil, func(ts *httptest.Server, verified *atomic.Int32) *http.Client {
			tr := ts.Client().Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.VerifyConnection = func(tls.ConnectionState) error {
				verified.Add(1)
				return errors.New("not our terminal server")
			}
			return &http.Client{Transport: tr}
		}},
		{"unknown authority", nil, func(*httptest.Server, *atomic.Int32) *http.Client {
			return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
		}},
		{"client certificate required", &tls.Config{ClientAuth: tls.RequireAnyClientCert}, func(ts *httptest.Server, _ *atomic.Int32) *http.Client {
			return ts.Client()
		}},
		{"TLS 1.2 client certificate required", &tls.Config{ClientAuth: tls.RequireAnyClientCert, MaxVersion: tls.VersionTLS12},
			func(ts *httptest.Server, _ *atomic.Int32) *http.Client {
				return ts.Client()
			}},
		{"no common version", &tls.Config{MinVersion: tls.VersionTLS13}, func(ts *httptest.Server, _ *atomic.Int32) *http.Client {
			tr := ts.Client().Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.MaxVersion = tls.VersionTLS12
			return &http.Client{Transport: tr}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewUnstartedServer(heartbeatOK)
			var conns, verified atomic.Int32
			ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			ts.Config.ErrorLog = log.New(io.Discard, "", 0)
			ts.TLS = tt.serverTLS
			ts.StartTLS()
			defer ts.Close()
			c, err := httptransport.New(httptransport.Config{
				BaseURL:      ts.URL,
				HTTPClient:   tt.client(ts, &verified),
				Token:        "tok",
				RetryMax:     3,
				RetryWaitMin: time.Millisecond,
				RetryWaitMax: time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			err = heartbeat(c, t.Context())
			if err == nil {
				t.Fatal("Heartbeat succeeded")
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections, want 1: %v", n, err)
			}
			if n := verified.Load(); n > 1 {
				t.Errorf("the vendor's verifier ran %d times, want once: %v", n, err)
			}
		})
	}
}
