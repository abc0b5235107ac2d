package transporttest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// BaseURL is where the in-memory clients take their [Server] to be. They
// resolve an artifact URL against it with transport.ResolveArtifactURL,
// as httptransport.Client resolves one against its Config.BaseURL, so a
// test may hand them an Offer's ArtifactURL: a path
// ("v1/artifacts/<digest>" or "/v1/artifacts/<digest>") or an absolute URL
// on BaseURL. It has a path prefix, so that a client that loses the
// prefix fails here as it would against a real server that has one.
const BaseURL = "http://upkeep.test/upkeep"

// Client returns a new in-memory client of s with no token: Register gives
// it one. It does what httptransport.Client and the HTTP handler do
// together, without HTTP: requests and answers travel through strict JSON
// encoding, requests are limited and validated, the token is
// authenticated, and errors reach the caller as they would over the wire
// (an *transport.Error with its status, internal texts withheld, RetryAfter
// in whole seconds). It does not retry: a shed call returns its error.
func (s *Server) Client() transport.Client {
	return &client{srv: s}
}

// ClientWithToken returns a new in-memory client of s that presents token.
func (s *Server) ClientWithToken(token string) transport.Client {
	return &client{srv: s, token: token}
}

type client struct {
	srv   *Server
	mu    sync.Mutex
	token string
}

func (c *client) Register(ctx context.Context, req *transport.RegisterRequest) (*transport.RegisterResponse, error) {
	resp, err := roundTrip(ctx, c, false, req,
		func(ctx context.Context, _ string, req *transport.RegisterRequest) (*transport.RegisterResponse, error) {
			return c.srv.Register(ctx, req)
		})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.token = resp.Token
	c.mu.Unlock()
	return resp, nil
}

func (c *client) Heartbeat(ctx context.Context, req *transport.HeartbeatRequest) (*transport.HeartbeatResponse, error) {
	return roundTrip(ctx, c, true, req, c.srv.Heartbeat)
}

func (c *client) Check(ctx context.Context, req *transport.CheckRequest) (*transport.CheckResponse, error) {
	return roundTrip(ctx, c, true, req, c.srv.Check)
}

func (c *client) Report(ctx context.Context, req *transport.ReportRequest) (*transport.ReportResponse, error) {
	return roundTrip(ctx, c, true, req, c.srv.Report)
}

// authenticate does what the handler does with the bearer token.
func (c *client) authenticate(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	if tok == "" {
		return "", wireError(ctx, transport.Errorf(transport.CodeUnauthorized, "a device token is required"))
	}
	id, err := c.srv.Authenticate(ctx, tok)
	if err != nil {
		return "", wireError(ctx, err)
	}
	return id, nil
}

type validator interface{ Validate() error }

// roundTrip carries one JSON call as the wire would.
func roundTrip[Req any, PReq interface {
	*Req
	validator
}, Resp any](ctx context.Context, c *client, auth bool, req PReq, call func(context.Context, string, PReq) (*Resp, error)) (*Resp, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var deviceID string
	if auth {
		var err error
		if deviceID, err = c.authenticate(ctx); err != nil {
			return nil, err
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if len(body) > transport.MaxRequestSize {
		return nil, wireError(ctx, transport.Errorf(transport.CodeTooLarge, "request body above %d bytes", transport.MaxRequestSize))
	}
	sreq := PReq(new(Req))
	if err := jsonwire.Unmarshal(body, sreq); err != nil {
		return nil, wireError(ctx, transport.Errorf(transport.CodeBadRequest, "%v", err))
	}
	if err := sreq.Validate(); err != nil {
		return nil, wireError(ctx, err)
	}
	resp, err := call(ctx, deviceID, sreq)
	if err == nil && resp == nil {
		err = errors.New("service returned no response and no error")
	}
	if err != nil {
		return nil, wireError(ctx, err)
	}
	if body, err = json.Marshal(resp); err != nil {
		return nil, wireError(ctx, err)
	}
	out := new(Resp)
	if err := jsonwire.Unmarshal(body, out); err != nil {
		return nil, err
	}
	return out, nil
}

// wireError returns err as a client would receive it over HTTP: what
// transport.AsError makes of it (a sentinel's text only, internal and
// unknown codes as a withheld internal error), with the status the
// handler sends and RetryAfter in whole seconds.
func wireError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	e := transport.AsError(err)
	out := &transport.Error{Status: e.HTTPStatus(), Code: e.Code, Message: e.Message}
	if out.Status < 400 || out.Status > 599 {
		out.Status = e.Code.Status()
	}
	if e.RetryAfter > 0 {
		out.RetryAfter = time.Duration(seconds(e.RetryAfter)) * time.Second
	}
	return out
}

// OpenArtifact serves the range as the handler and httptransport.Client
// would: a range that fails req.Validate is transport.ErrBadRequest, a
// range starting at or running past the end is transport.ErrRange, a
// Length of 0 reads nothing without asking, and the reader reports
// content that ends early as io.ErrUnexpectedEOF. req.URL, when set, is
// resolved against [BaseURL] with transport.ResolveArtifactURL, as
// httptransport.Client resolves it against its BaseURL, and must name an
// artifact of this server (BaseURL + transport.PathArtifacts + digest):
// the in-memory client reaches no other server.
func (c *client) OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	digest := req.Digest
	if req.URL != "" {
		var err error
		if digest, err = artifactPath(req.URL); err != nil {
			return nil, err
		}
	}
	if err := verify.Digest(digest).Validate(); err != nil {
		return nil, transport.Errorf(transport.CodeBadRequest, "artifact digest: %v", err)
	}
	if req.Length == 0 {
		return &artifactReader{ctx: ctx, content: strings.NewReader("")}, nil
	}
	deviceID, err := c.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	ac, err := c.srv.Artifact(ctx, deviceID, digest)
	if err == nil && (ac == nil || ac.Content == nil) {
		err = errors.New("service returned no artifact content and no error")
	}
	if err != nil {
		return nil, wireError(ctx, err)
	}
	r := &artifactReader{ctx: ctx, content: ac.Content, etag: ac.ETag}
	size := ac.Size
	if size <= 0 {
		if size, err = ac.Content.Seek(0, io.SeekEnd); err != nil {
			r.Close()
			return nil, wireError(ctx, err)
		}
	}
	ranged := req.Offset > 0 || req.Length > 0
	if ranged && (req.Offset >= size || req.Length > 0 && req.Offset+req.Length > size) {
		r.Close()
		return nil, wireError(ctx, transport.Errorf(transport.CodeRange, "bytes from %d (length %d) are outside an artifact of %d bytes",
			req.Offset, req.Length, size))
	}
	if _, err := ac.Content.Seek(req.Offset, io.SeekStart); err != nil {
		r.Close()
		return nil, wireError(ctx, err)
	}
	r.remain = size - req.Offset
	if req.Length > 0 {
		r.remain = req.Length
	}
	// A server that ignores Range, or whose file changed since IfRange,
	// sends the whole file; the reader has skipped to the offset.
	r.whole = ranged && (c.srv.ignoringRanges() || req.IfRange != "" && req.IfRange != ac.ETag)
	if r.whole && req.Offset > 0 {
		c.srv.countWasted(deviceID, req.Offset)
	}
	return r, nil
}

// artifactPath resolves an artifact URL against BaseURL and returns the
// digest it names on this server.
func artifactPath(ref string) (string, error) {
	base, err := url.Parse(BaseURL)
	if err != nil {
		return "", err
	}
	u, err := transport.ResolveArtifactURL(base, ref)
	if err != nil {
		return "", err
	}
	prefix := base.Path + transport.PathArtifacts
	digest, ok := strings.CutPrefix(u.Path, prefix)
	if !ok || !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) {
		return "", transport.Errorf(transport.CodeBadRequest,
			"in-memory client reaches only %s%s, not %s://%s%s", BaseURL, transport.PathArtifacts, u.Scheme, u.Host, u.Path)
	}
	return digest, nil
}

// artifactReader yields exactly remain bytes of content.
type artifactReader struct {
	ctx     context.Context
	content io.ReadSeeker
	remain  int64
	etag    string
	whole   bool
}

var _ transport.ArtifactBody = (*artifactReader)(nil)

func (r *artifactReader) ETag() string { return r.etag }
func (r *artifactReader) Whole() bool  { return r.whole }

func (r *artifactReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if r.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.content.Read(p)
	r.remain -= int64(n)
	switch {
	case r.remain == 0:
		err = io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *artifactReader) Close() error {
	if c, ok := r.content.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
