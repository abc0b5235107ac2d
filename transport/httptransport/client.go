package httptransport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/transport"
)

// Defaults of [Config].
const (
	DefaultRetryMax      = 4
	DefaultRetryWaitMin  = time.Second
	DefaultRetryWaitMax  = 30 * time.Second
	DefaultMaxShed       = 30
	DefaultMaxRetryAfter = 10 * time.Minute
	DefaultUserAgent     = "upkeep-httptransport/1"
)

// maxErrorBody bounds the error body read from a failed response.
const maxErrorBody = 64 << 10

// maxSmallResponse bounds the answers to register, heartbeat and report,
// which carry a few short fields; only check's answer, with its signed
// manifests, may reach MaxResponseSize.
const maxSmallResponse = 64 << 10

// maxRedirects is how many redirects a request follows when the vendor's
// client does not say.
const maxRedirects = 10

// Config configures a [Client]. Only BaseURL is required.
type Config struct {
	// BaseURL is the update server, http or https, optionally with a path
	// prefix ("https://tms.example.com/upkeep"). Required.
	BaseURL string

	// HTTPClient is the vendor's client: its Transport carries mutual TLS,
	// proxies and pinned roots. The Client uses a copy whose CheckRedirect
	// also drops the device token on a redirect to another host and
	// refuses a redirect to anything but http or https. The vendor's
	// Transport (http.DefaultTransport when it is nil) is shared, never
	// reconfigured, and its idle connections are never closed by the
	// Client: other users of it are not disturbed. Nil means a new client,
	// of this Client's own, with dial, TLS-handshake and response-header
	// timeouts and no overall timeout (an artifact download may take long);
	// http.DefaultClient is never used.
	HTTPClient *http.Client

	// Token is the device token, if the terminal is already registered.
	// Empty means none yet: Register stores the token it gets.
	Token string

	// Logger receives a warning for each retried attempt. URLs off the
	// base URL's origin are logged without their query (a presigned CDN
	// URL's signature) and userinfo; the device token is never logged.
	// Nil discards them.
	Logger *slog.Logger

	// RetryMax is how many failed attempts are retried: 0 means
	// [DefaultRetryMax], negative means none. Shed responses do not count.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential wait between
	// failed attempts; 0 means [DefaultRetryWaitMin] and
	// [DefaultRetryWaitMax].
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration

	// MaxShed is how many shed responses (429 or 503 carrying Retry-After)
	// one call waits out before giving up: 0 means [DefaultMaxShed],
	// negative means none.
	MaxShed int
	// MaxRetryAfter is the longest server's Retry-After a call waits out
	// itself; 0 means [DefaultMaxRetryAfter]. A Retry-After above it is
	// not waited out (nor cut short): the call returns the answer at once
	// as a *transport.Error with RetryAfter set, for the caller to
	// schedule. So is one whose wait would end after ctx's deadline.
	MaxRetryAfter time.Duration

	// MaxResponseSize bounds the JSON body of a check response; 0 means
	// transport.MaxResponseSize. The answers to register, heartbeat and
	// report are bounded at 64 KiB (or MaxResponseSize, when smaller), and
	// artifact bytes are not bounded by it.
	MaxResponseSize int64

	// UserAgent is sent on every request; empty means [DefaultUserAgent].
	// It must be a valid header value: no control bytes but tab.
	UserAgent string
}

// Client is the terminal's side of protocol v1 over HTTP. It is safe for
// concurrent use.
type Client struct {
	base     *url.URL
	http     *http.Client
	log      *slog.Logger
	agent    string
	maxResp  int64 // check responses
	maxSmall int64 // register, heartbeat and report responses

	retryMax      int
	maxShed       int
	waitMin       time.Duration
	waitMax       time.Duration
	maxRetryAfter time.Duration

	mu    sync.RWMutex
	token string
}

var _ transport.Client = (*Client)(nil)

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Token != "" {
		if err := checkToken(cfg.Token); err != nil {
			return nil, fmt.Errorf("%w: Token: %v", ErrConfig, err)
		}
	}
	if cfg.RetryWaitMin < 0 || cfg.RetryWaitMax < 0 || cfg.MaxRetryAfter < 0 || cfg.MaxResponseSize < 0 {
		return nil, fmt.Errorf("%w: negative wait or size", ErrConfig)
	}
	c := &Client{
		base:          base,
		log:           cfg.Logger,
		agent:         cfg.UserAgent,
		maxResp:       cfg.MaxResponseSize,
		retryMax:      cfg.RetryMax,
		maxShed:       cfg.MaxShed,
		waitMin:       cfg.RetryWaitMin,
		waitMax:       cfg.RetryWaitMax,
		maxRetryAfter: cfg.MaxRetryAfter,
		token:         cfg.Token,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.agent == "" {
		c.agent = DefaultUserAgent
	}
	if !validHeaderValue(c.agent) {
		return nil, fmt.Errorf("%w: UserAgent holds a control byte", ErrConfig)
	}
	if c.maxResp == 0 {
		c.maxResp = transport.MaxResponseSize
	}
	c.maxSmall = min(c.maxResp, maxSmallResponse)
	switch {
	case c.retryMax == 0:
		c.retryMax = DefaultRetryMax
	case c.retryMax < 0:
		c.retryMax = 0
	}
	switch {
	case c.maxShed == 0:
		c.maxShed = DefaultMaxShed
	case c.maxShed < 0:
		c.maxShed = 0
	}
	if c.waitMin == 0 {
		c.waitMin = DefaultRetryWaitMin
	}
	if c.waitMax == 0 {
		c.waitMax = DefaultRetryWaitMax
	}
	if c.waitMax < c.waitMin {
		return nil, fmt.Errorf("%w: RetryWaitMax %s is below RetryWaitMin %s", ErrConfig, c.waitMax, c.waitMin)
	}
	if c.maxRetryAfter == 0 {
		c.maxRetryAfter = DefaultMaxRetryAfter
	}
	c.http = c.httpClient(cfg.HTTPClient)
	return c, nil
}

func parseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: BaseURL is required", ErrConfig)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: BaseURL: %v", ErrConfig, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: BaseURL %q: want an http or https URL", ErrConfig, s)
	case u.Host == "":
		return nil, fmt.Errorf("%w: BaseURL %q has no host", ErrConfig, s)
	case u.User != nil:
		return nil, fmt.Errorf("%w: BaseURL must not carry credentials", ErrConfig)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%w: BaseURL %q: no query or fragment allowed", ErrConfig, s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// validHeaderValue reports whether v can travel as a header value: no
// control bytes but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// httpClient returns a copy of the vendor's client (or a new one) whose
// redirects never carry the device token off the base host nor go to
// anything but http or https, and whose shared Transport is hidden behind
// a RoundTripper that cannot close its idle connections.
func (c *Client) httpClient(vendor *http.Client) *http.Client {
	var hc http.Client
	if vendor != nil {
		hc = *vendor
		rt := hc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		hc.Transport = sharedTransport{rt}
	} else {
		hc = http.Client{Transport: newTransport()}
	}
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if next != nil {
			if err := next(req, via); err != nil {
				if errors.Is(err, http.ErrUseLastResponse) {
					return err
				}
				return &redirectError{err}
			}
		} else if len(via) >= maxRedirects {
			return &redirectError{fmt.Errorf("stopped after %d redirects", maxRedirects)}
		}
		if s := req.URL.Scheme; s != "http" && s != "https" {
			return &redirectError{fmt.Errorf("redirect to a URL of scheme %.16q, want http or https", s)}
		}
		if !c.sameOrigin(req.URL) {
			req.Header.Del("Authorization")
		}
		return nil
	}
	return &hc
}

// sharedTransport is a vendor's RoundTripper with only its RoundTrip
// visible: retryablehttp closes the idle connections of the transport it
// uses when a call gives up or is cancelled, which must not reach a
// transport other clients share.
type sharedTransport struct{ rt http.RoundTripper }

func (s sharedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return s.rt.RoundTrip(req)
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        64 << 10,
		WriteBufferSize:       64 << 10,
	}
}

// redirectError marks a redirect refused by policy: not worth a retry.
type redirectError struct{ err error }

func (e *redirectError) Error() string { return e.err.Error() }
func (e *redirectError) Unwrap() error { return e.err }

// Token returns the device token, empty before registration.
func (c *Client) Token() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token
}

// SetToken replaces the device token, e.g. with one restored from the
// terminal's storage. A token that cannot travel in a header (empty is
// fine: no token) makes later calls fail with [ErrConfig].
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
}

// Register enrolls the terminal and stores the token it is given.
func (c *Client) Register(ctx context.Context, req *transport.RegisterRequest) (*transport.RegisterResponse, error) {
	var resp transport.RegisterResponse
	if err := c.call(ctx, transport.PathRegister, false, c.maxSmall, req, &resp); err != nil {
		return nil, err
	}
	if resp.DeviceID == "" {
		return nil, fmt.Errorf("%w: register response without a device ID", ErrBadResponse)
	}
	if err := checkToken(resp.Token); err != nil {
		return nil, fmt.Errorf("%w: register response: %v", ErrBadResponse, err)
	}
	c.SetToken(resp.Token)
	return &resp, nil
}

// Heartbeat sends the terminal's status.
func (c *Client) Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	var resp transport.HeartbeatResponse
	if err := c.call(ctx, transport.PathHeartbeat, true, c.maxSmall, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Check asks for the releases that fit the terminal.
func (c *Client) Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	var resp transport.CheckResponse
	if err := c.call(ctx, transport.PathCheck, true, c.maxResp, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Report reports the end of an update attempt.
func (c *Client) Report(ctx context.Context, req *transport.ReportRequest) (*transport.ReportResponse, error) {
	var resp transport.ReportResponse
	if err := c.call(ctx, transport.PathReport, true, c.maxSmall, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// call POSTs in as JSON to path and decodes the answer, at most limit
// bytes, into out.
func (c *Client) call(ctx context.Context, path string, auth bool, limit int64, in, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("httptransport: encoding %s request: %w", path, err)
	}
	u := c.endpoint(path)
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
	if err != nil {
		return fmt.Errorf("httptransport: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if auth {
		if err := c.authorize(req.Request); err != nil {
			return err
		}
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.responseError(resp)
	}
	if err := jsonwire.Decode(resp.Body, limit, out); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if errors.Is(err, jsonwire.ErrTooLarge) {
			return fmt.Errorf("%w: %s response larger than %d bytes", ErrBadResponse, path, limit)
		}
		return fmt.Errorf("%w: %s response: %v", ErrBadResponse, path, err)
	}
	return nil
}

// endpoint returns the URL of a protocol path on the base URL.
func (c *Client) endpoint(path string) *url.URL {
	u := *c.base
	u.Path = c.base.Path + path
	return &u
}

// sameOrigin reports whether u is on the base URL's scheme and host, the
// only place the device token goes.
func (c *Client) sameOrigin(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.base.Scheme) && strings.EqualFold(u.Host, c.base.Host)
}

// redact returns u as it may appear in errors and logs: without its
// password, and, off the base URL's origin, without its userinfo, query
// and fragment (a presigned URL's signature is in its query).
func (c *Client) redact(u *url.URL) string {
	if c.sameOrigin(u) {
		return u.Redacted()
	}
	r := *u
	r.User = nil
	r.RawQuery, r.ForceQuery = "", false
	r.Fragment, r.RawFragment = "", ""
	return r.String()
}

// redactString is redact for a URL in text form; one that does not parse
// is withheld.
func (c *Client) redactString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(URL withheld)"
	}
	return c.redact(u)
}

// redactError returns err with the URL of a *url.Error at its top
// redacted, as every error of http.Client.Do is.
func (c *Client) redactError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: c.redactString(ue.URL), Err: ue.Err}
	}
	return err
}

func (c *Client) authorize(req *http.Request) error {
	tok := c.Token()
	if tok == "" {
		return nil // the server answers 401, as it should
	}
	if err := checkToken(tok); err != nil {
		return fmt.Errorf("%w: device token: %v", ErrConfig, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// checkToken refuses tokens that cannot travel in a header.
func checkToken(tok string) error {
	if tok == "" || len(tok) > transport.MaxToken {
		return fmt.Errorf("token of %d bytes, want 1 to %d", len(tok), transport.MaxToken)
	}
	for i := 0; i < len(tok); i++ {
		if b := tok[i]; b <= ' ' || b >= 0x7f {
			return errors.New("token holds a space or a control or non-ASCII byte")
		}
	}
	return nil
}

// do sends req with retries and returns the final response, whatever its
// status, or the error that ended the attempts, its URLs redacted.
func (c *Client) do(ctx context.Context, req *retryablehttp.Request) (*http.Response, error) {
	req.Header.Set("User-Agent", c.agent)
	p := &retryPolicy{c: c, method: req.Method, url: c.redact(req.URL)}
	req.Request = req.Request.WithContext(httptrace.WithClientTrace(req.Context(), p.trace()))
	rc := &retryablehttp.Client{
		HTTPClient:   c.http,
		Logger:       nil, // the policy logs, with URLs redacted
		RetryWaitMin: c.waitMin,
		RetryWaitMax: c.waitMax,
		RetryMax:     saturatingAdd(c.retryMax, c.maxShed),
		CheckRetry:   p.checkRetry,
		Backoff:      p.backoff,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if err != nil && resp != nil {
				drain(resp.Body)
				resp = nil
			}
			return resp, err
		},
	}
	resp, err := rc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("httptransport: %s %s: %w", req.Method, p.url, c.redactError(err))
	}
	return resp, nil
}

// responseError turns a failed response into a *transport.Error and closes
// its body.
func (c *Client) responseError(resp *http.Response) error {
	defer drain(resp.Body)
	e := &transport.Error{Status: resp.StatusCode}
	if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		e.RetryAfter = ra
	}
	var body transport.ErrorBody
	err := jsonwire.Decode(resp.Body, maxErrorBody, &body)
	switch {
	case err == nil && body.Error.Code.Known():
		e.Code = body.Error.Code
		e.Message = truncate(body.Error.Message, transport.MaxDetail)
	case err == nil && body.Error.Code != "":
		e.Code = transport.CodeForStatus(resp.StatusCode)
		e.Message = truncate(fmt.Sprintf("%.64s: %s", body.Error.Code, body.Error.Message), transport.MaxDetail)
	default:
		e.Code = transport.CodeForStatus(resp.StatusCode)
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// drain reads a little of body, so the connection can be reused, and
// closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

func saturatingAdd(a, b int) int {
	const maxInt = int(^uint(0) >> 1)
	if a > maxInt-b {
		return maxInt
	}
	return a + b
}
