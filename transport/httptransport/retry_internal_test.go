package httptransport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
)

// tlsAlert makes an error shaped as crypto/tls reports a TLS alert: a
// *net.OpError of Op "remote error" (received) or "local error" (sent)
// around a value of an unexported type, stood in for here.
func tlsAlert(op string) error {
	return &net.OpError{Op: op, Net: "tcp", Err: errors.New("tls: bad certificate")}
}

func TestRetryableError(t *testing.T) {
	wrap := func(err error) error { return &url.Error{Op: "Get", URL: "https://tms.test/v1/check", Err: err} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"timeout", context.DeadlineExceeded, true},
		{"anything else", errors.New("something odd"), true},
		{"redirect refused", &redirectError{errors.New("stopped after 10 redirects")}, false},
		{"certificate verification", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false},
		{"unknown authority", x509.UnknownAuthorityError{}, false},
		{"hostname", x509.HostnameError{Host: "tms.test"}, false},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, false},
		{"constraint", x509.ConstraintViolationError{}, false},
		{"critical extension", x509.UnhandledCriticalExtension{}, false},
		{"insecure algorithm", x509.InsecureAlgorithmError(x509.SHA1WithRSA), false},
		{"system roots", x509.SystemRootsError{}, false},
		{"vendor verifier wrapping x509", fmt.Errorf("pinning: %w", x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}), false},
		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, false},
		{"alert", tls.AlertError(42), false},
		{"remote alert", tlsAlert(tlsRemoteAlert), false},
		{"local alert", tlsAlert(tlsLocalAlert), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, err := range []error{tt.err, wrap(tt.err)} {
				if got := retryableError(err); got != tt.want {
					t.Errorf("retryableError(%v) = %v, want %v", err, got, tt.want)
				}
			}
		})
	}
}

func TestPermanentHandshakeError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"vendor's verifier", errors.New("certificate pin mismatch"), true},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		{"remote alert", tlsAlert(tlsRemoteAlert), true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, false},
		{"closed by the peer", io.EOF, false},
		{"cut", io.ErrUnexpectedEOF, false},
		{"cancelled", context.Canceled, false},
		{"timed out", context.DeadlineExceeded, false},
		{"handshake timeout", timeoutError{}, false},
	}
	for _, tt := range tests {
		if got := permanentHandshakeError(tt.err); got != tt.want {
			t.Errorf("%s: permanentHandshakeError(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// timeoutError is a net.Error that timed out, as net/http's TLS handshake
// timeout is.
type timeoutError struct{}

func (timeoutError) Error() string   { return "net/http: TLS handshake timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
