package httptransport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// retryPolicy is the retry state of one call: failed attempts and shed
// responses are counted apart, so shedding never uses up RetryMax.
type retryPolicy struct {
	c      *Client
	method string
	url    string // redacted, for logs

	failures int
	sheds    int
	wait     time.Duration // the wait checkRetry chose, for backoff

	// badHandshake is set when a TLS handshake of this call failed on
	// something a retry does not change; a dialing goroutine sets it.
	badHandshake atomic.Bool
}

// trace watches the call's TLS handshakes, so that a handshake refused
// for good (by a vendor's VerifyPeerCertificate, say, whose error says
// nothing of TLS) is not retried.
func (p *retryPolicy) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err != nil && permanentHandshakeError(err) {
				p.badHandshake.Store(true)
			}
		},
	}
}

// checkRetry decides after each attempt, and chooses the wait before the
// next. It never retries once ctx is done; it retries connection errors
// that may pass, 5xx but 501, 429 and any error status that carries
// Retry-After; shed responses (429 or 503 with Retry-After) count against
// MaxShed, other retries against RetryMax. It does not retry, so the
// caller gets the answer with its RetryAfter, when the server's
// Retry-After is above MaxRetryAfter, nor when the wait would end after
// ctx's deadline.
func (p *retryPolicy) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	now := time.Now()
	var (
		wait   time.Duration
		reason slog.Attr
	)
	if err != nil {
		if p.badHandshake.Load() || !retryableError(err) || !p.fail() {
			return false, nil
		}
		wait = p.c.expBackoff(p.failures)
		reason = slog.String("err", p.c.redactError(err).Error())
	} else {
		status := resp.StatusCode
		ra, hasRetryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), now)
		switch {
		case hasRetryAfter && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable):
			p.sheds++
			if p.sheds > p.c.maxShed {
				return false, nil
			}
		case status >= 400 && hasRetryAfter,
			status == http.StatusTooManyRequests,
			status >= 500 && status != http.StatusNotImplemented:
			if !p.fail() {
				return false, nil
			}
		default:
			return false, nil
		}
		reason = slog.Int("status", status)
		if hasRetryAfter {
			if ra > p.c.maxRetryAfter {
				p.c.log.Debug("httptransport: Retry-After above MaxRetryAfter, left to the caller",
					"method", p.method, "url", p.url, "retry_after", ra)
				return false, nil
			}
			wait = p.c.retryAfterWait(ra)
		} else {
			wait = p.c.expBackoff(p.failures)
		}
	}
	if deadline, ok := ctx.Deadline(); ok && now.Add(wait).After(deadline) {
		p.c.log.Debug("httptransport: next attempt would come after the deadline, not retrying",
			"method", p.method, "url", p.url, "wait", wait)
		return false, nil
	}
	p.wait = wait
	p.c.log.Warn("httptransport: retrying request", "method", p.method, "url", p.url, reason,
		"wait", wait, "attempt", p.failures+p.sheds)
	return true, nil
}

func (p *retryPolicy) fail() bool {
	p.failures++
	return p.failures <= p.c.retryMax
}

// backoff returns the wait checkRetry chose.
func (p *retryPolicy) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return p.wait
}

// retryAfterWait is the wait for a server's Retry-After of ra (at most
// MaxRetryAfter): ra plus a jitter of up to a tenth of it (at least up to
// half of min(RetryWaitMin, 1s)), so a fleet told the same time does not
// come back in the same instant.
func (c *Client) retryAfterWait(ra time.Duration) time.Duration {
	spread := max(ra/10, min(c.waitMin, time.Second)/2)
	return ra + rand.N(spread+1)
}

// expBackoff is the wait after the n-th failed attempt (n >= 1): uniform
// between RetryWaitMin and min(RetryWaitMax, RetryWaitMin·2ⁿ).
func (c *Client) expBackoff(n int) time.Duration {
	ceiling := c.waitMin
	for i := 0; i < n && ceiling < c.waitMax; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, c.waitMax)
	return c.waitMin + rand.N(ceiling-c.waitMin+1)
}

// retryableError reports whether a request error may pass on a retry.
// These will not: a redirect refused by policy (too many, or to a scheme
// other than http and https); certificate errors, from Go's verifier or
// found in a vendor's; TLS alerts, sent by the server (an unknown CA, a
// client certificate refused) or by this side (no common protocol
// version or cipher suite); a peer that does not speak TLS.
func retryableError(err error) bool {
	var (
		redirect   *redirectError
		verify     *tls.CertificateVerificationError
		header     tls.RecordHeaderError
		alert      tls.AlertError
		unknown    x509.UnknownAuthorityError
		host       x509.HostnameError
		invalid    x509.CertificateInvalidError
		constraint x509.ConstraintViolationError
		critical   x509.UnhandledCriticalExtension
		insecure   x509.InsecureAlgorithmError
		roots      x509.SystemRootsError
		op         *net.OpError
	)
	switch {
	case errors.As(err, &redirect), errors.As(err, &verify), errors.As(err, &header), errors.As(err, &alert),
		errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid), errors.As(err, &constraint),
		errors.As(err, &critical), errors.As(err, &insecure), errors.As(err, &roots):
		return false
	case errors.As(err, &op) && (op.Op == tlsRemoteAlert || op.Op == tlsLocalAlert):
		return false
	}
	return true
}

// The Op of the *net.OpError in which crypto/tls reports a TLS alert
// received from the peer, and one it sent the peer.
const (
	tlsRemoteAlert = "remote error"
	tlsLocalAlert  = "local error"
)

// permanentHandshakeError reports whether a TLS handshake failed on
// something other than the connection: a certificate refused, by Go's
// verifier or by the vendor's VerifyPeerCertificate or VerifyConnection,
// whatever error those return; a TLS alert; a protocol mismatch. A
// connection that broke, timed out or was cancelled may do better on a
// retry.
func permanentHandshakeError(err error) bool {
	if !retryableError(err) {
		return true
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// maxRetryAfterHeader bounds a parsed Retry-After, so that no value
// overflows a Duration.
const maxRetryAfterHeader = 365 * 24 * time.Hour

// parseRetryAfter parses a Retry-After value, delay-seconds or an HTTP
// date, into a wait from now. A date in the past is a wait of zero.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return maxRetryAfterHeader, true
			}
			return 0, false
		}
		if secs > uint64(maxRetryAfterHeader/time.Second) {
			return maxRetryAfterHeader, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	return min(max(d, 0), maxRetryAfterHeader), true
}
