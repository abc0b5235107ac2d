package httptransport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryPolicy is the retry state of one call: failed attempts and shed
// responses are counted apart, so shedding never uses up RetryMax.
type retryPolicy struct {
	c        *Client
	failures int
	sheds    int
}

// checkRetry decides after each attempt. It never retries once ctx is done;
// it retries connection errors, 5xx but 501, 429 and any error status that
// carries Retry-After; shed responses (429 or 503 with Retry-After) count
// against MaxShed, other retries against RetryMax.
func (p *retryPolicy) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	if err != nil {
		if !retryableError(err) {
			return false, nil
		}
		return p.fail(), nil
	}
	status := resp.StatusCode
	_, hasRetryAfter := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	switch {
	case hasRetryAfter && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable):
		p.sheds++
		return p.sheds <= p.c.maxShed, nil
	case status >= 400 && hasRetryAfter,
		status == http.StatusTooManyRequests,
		status >= 500 && status != http.StatusNotImplemented:
		return p.fail(), nil
	}
	return false, nil
}

func (p *retryPolicy) fail() bool {
	p.failures++
	return p.failures <= p.c.retryMax
}

// backoff returns the wait before the next attempt: the server's
// Retry-After (capped, plus jitter) when it sent one, whatever the status;
// otherwise a fully jittered exponential wait.
func (p *retryPolicy) backoff(_, _ time.Duration, _ int, resp *http.Response) time.Duration {
	if resp != nil {
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return p.c.retryAfterWait(ra)
		}
	}
	return p.c.expBackoff(p.failures)
}

// retryAfterWait is the wait for a server's Retry-After of ra: ra capped at
// MaxRetryAfter, plus a jitter of up to a tenth of it (at least up to half
// of min(RetryWaitMin, 1s)), so a fleet told the same time does not come
// back in the same instant.
func (c *Client) retryAfterWait(ra time.Duration) time.Duration {
	ra = min(ra, c.maxRetryAfter)
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

// retryableError reports whether a request error may pass on a retry:
// certificate and TLS-protocol errors and refused redirects will not.
func retryableError(err error) bool {
	var (
		redirect *redirectError
		verify   *tls.CertificateVerificationError
		header   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		host     x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &redirect), errors.As(err, &verify), errors.As(err, &header),
		errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
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

// retryLogger adapts an slog.Logger to retryablehttp's LeveledLogger. Its
// per-attempt "request failed" errors are logged as warnings: the call
// may still succeed, and the final error goes to the caller.
type retryLogger struct{ l *slog.Logger }

func (r retryLogger) Error(msg string, kv ...any) { r.l.Warn(msg, kv...) }
func (r retryLogger) Warn(msg string, kv ...any)  { r.l.Warn(msg, kv...) }
func (r retryLogger) Info(msg string, kv ...any)  { r.l.Info(msg, kv...) }
func (r retryLogger) Debug(msg string, kv ...any) { r.l.Debug(msg, kv...) }
