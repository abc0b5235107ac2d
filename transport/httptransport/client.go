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
	// also drops the device token on a redirect to another host. Nil means
	// a new client with dial, TLS-handshake and response-header timeouts and
	// no overall timeout (an artifact download may take long);
	// http.DefaultClient is never used.
	HTTPClient *http.Client

	// Token is the device token, if the terminal is already registered.
	// Empty means none yet: Register stores the token it gets.
	Token string

	// Logger receives retry and error logs. Nil discards them.
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
	// MaxRetryAfter caps one wait for a server's Retry-After; 0 means
	// [DefaultMaxRetryAfter].
	MaxRetryAfter time.Duration

	// MaxResponseSize bounds a JSON response body; 0 means
	// transport.MaxResponseSize. Artifact bytes are not bounded by it.
	MaxResponseSize int64

	// UserAgent is sent on every request; empty means [DefaultUserAgent].
	UserAgent string
}

// Client is the terminal's side of protocol v1 over HTTP. It is safe for
// concurrent use.
type Client struct {
	base    *url.URL
	http    *http.Client
	log     *slog.Logger
	rlog    any // the retryablehttp logger; nil when logs are discarded
	agent   string
	maxResp int64

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
	} else {
		c.rlog = retryLogger{cfg.Logger}
	}
	if c.agent == "" {
		c.agent = DefaultUserAgent
	}
	if strings.ContainsAny(c.agent, "\r\n") {
		return nil, fmt.Errorf("%w: UserAgent holds a line break", ErrConfig)
	}
	if c.maxResp == 0 {
		c.maxResp = transport.MaxResponseSize
	}
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

// httpClient returns a copy of the vendor's client (or a new one) whose
// redirects never carry the device token off the base host.
func (c *Client) httpClient(vendor *http.Client) *http.Client {
	var hc http.Client
	if vendor != nil {
		hc = *vendor
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
		if !c.sameOrigin(req.URL) {
			req.Header.Del("Authorization")
		}
		return nil
	}
	return &hc
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
	if err := c.call(ctx, transport.PathRegister, false, req, &resp); err != nil {
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
	if err := c.call(ctx, transport.PathHeartbeat, true, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Check asks for the releases that fit the terminal.
func (c *Client) Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	var resp transport.CheckResponse
	if err := c.call(ctx, transport.PathCheck, true, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Report reports the end of an update attempt.
func (c *Client) Report(ctx context.Context, req *transport.ReportRequest) (*transport.ReportResponse, error) {
	var resp transport.ReportResponse
	if err := c.call(ctx, transport.PathReport, true, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// call POSTs in as JSON to path and decodes the answer into out.
func (c *Client) call(ctx context.Context, path string, auth bool, in, out any) error {
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
	if err := jsonwire.Decode(resp.Body, c.maxResp, out); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if errors.Is(err, jsonwire.ErrTooLarge) {
			return fmt.Errorf("%w: %s response larger than %d bytes", ErrBadResponse, path, c.maxResp)
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
// status, or the error that ended the attempts.
func (c *Client) do(ctx context.Context, req *retryablehttp.Request) (*http.Response, error) {
	req.Header.Set("User-Agent", c.agent)
	p := &retryPolicy{c: c}
	rc := &retryablehttp.Client{
		HTTPClient:   c.http,
		Logger:       c.rlog,
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
		return nil, fmt.Errorf("httptransport: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if resp == nil { // not reached with the ErrorHandler above; kept for safety
		return nil, fmt.Errorf("httptransport: %s %s: no response", req.Method, req.URL.Redacted())
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
	case err == nil && knownCode(body.Error.Code):
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

// knownCode reports whether this client knows c (unknown codes map to no
// sentinel, so the status decides instead).
func knownCode(c transport.Code) bool {
	return c != "" && (c == transport.CodeInternal || c.Status() != http.StatusInternalServerError)
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
