package httptransport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// discardBufferSize is the buffer used to skip the head of a 200 answer to
// a Range request.
const discardBufferSize = 256 << 10

// OpenArtifact fetches bytes of an artifact: from req.URL when set (an
// absolute URL, or a path under BaseURL, its path prefix kept: see
// transport.ResolveArtifactURL), else from the update server's
// transport.PathArtifacts + req.Digest. A range that fails
// req.Validate (a negative offset, a length below -1, an end past the
// largest int64) is a *transport.Error of CodeBadRequest. It asks with a
// Range header when req.Offset > 0 or req.Length > 0 and checks that a 206
// answer carries exactly that range; a server that ignores Range and
// answers 200 is handled by skipping to Offset. A range that starts at or
// runs past the end is transport.ErrRange. A request of Length 0 returns
// an empty reader without asking anything.
//
// The device token is sent only when the URL is on BaseURL's scheme and
// host. Errors name a URL off that origin without its query and
// userinfo. The returned reader passes each Read straight to the response
// body (read it in large pieces), yields exactly the bytes asked for and
// reports a body that ends early as io.ErrUnexpectedEOF. The caller
// closes it.
func (c *Client) OpenArtifact(ctx context.Context, req transport.ArtifactRequest) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	u, err := c.artifactURL(req)
	if err != nil {
		return nil, err
	}
	if req.Length == 0 {
		return emptyBody{}, nil
	}
	hr, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("httptransport: %w", err)
	}
	// Identity, so that sizes and offsets are the artifact's own bytes.
	hr.Header.Set("Accept-Encoding", "identity")
	ranged := req.Offset > 0 || req.Length > 0
	if ranged {
		if req.Length > 0 {
			hr.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", req.Offset, req.Offset+req.Length-1))
		} else {
			hr.Header.Set("Range", fmt.Sprintf("bytes=%d-", req.Offset))
		}
		if req.IfRange != "" {
			hr.Header.Set("If-Range", req.IfRange)
		}
	}
	if c.sameOrigin(u) {
		if err := c.authorize(hr.Request); err != nil {
			return nil, err
		}
	}
	resp, err := c.do(ctx, hr)
	if err != nil {
		return nil, err
	}
	body, err := c.artifactBody(ctx, resp, req, ranged)
	if err != nil {
		return nil, err
	}
	return body, nil
}

// artifactURL resolves where req's bytes are.
func (c *Client) artifactURL(req transport.ArtifactRequest) (*url.URL, error) {
	if req.URL == "" {
		if err := verify.Digest(req.Digest).Validate(); err != nil {
			return nil, transport.Errorf(transport.CodeBadRequest, "artifact digest: %v", err)
		}
		return c.endpoint(transport.PathArtifacts + req.Digest), nil
	}
	return transport.ResolveArtifactURL(c.base, req.URL)
}

// artifactBody checks resp against what was asked and returns the reader
// of exactly those bytes, or an error (closing resp's body).
func (c *Client) artifactBody(ctx context.Context, resp *http.Response, req transport.ArtifactRequest, ranged bool) (io.ReadCloser, error) {
	var remain int64 // bytes the reader must yield; -1: to the body's end
	whole := false
	body := io.ReadCloser(resp.Body)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !ranged {
			drain(resp.Body)
			return nil, fmt.Errorf("%w: 206 answer to a request without Range", ErrBadResponse)
		}
		first, last, size, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			drain(resp.Body)
			return nil, err
		}
		switch {
		case first != req.Offset:
			drain(resp.Body)
			return nil, fmt.Errorf("%w: asked bytes from %d, got Content-Range %q", ErrBadResponse, req.Offset, resp.Header.Get("Content-Range"))
		case req.Length > 0 && last != req.Offset+req.Length-1:
			drain(resp.Body)
			if size >= 0 && last == size-1 && last < req.Offset+req.Length-1 {
				return nil, pastEnd(req, size)
			}
			return nil, fmt.Errorf("%w: asked %d bytes from %d, got Content-Range %q", ErrBadResponse, req.Length, req.Offset, resp.Header.Get("Content-Range"))
		case req.Length < 0 && size >= 0 && last != size-1:
			drain(resp.Body)
			return nil, fmt.Errorf("%w: asked bytes from %d to the end, got Content-Range %q", ErrBadResponse, req.Offset, resp.Header.Get("Content-Range"))
		}
		remain = last - first + 1
		if resp.ContentLength >= 0 && resp.ContentLength != remain {
			drain(resp.Body)
			return nil, fmt.Errorf("%w: Content-Length %d for a range of %d bytes", ErrBadResponse, resp.ContentLength, remain)
		}
	case http.StatusOK:
		size := resp.ContentLength
		remain = size
		if !ranged {
			break
		}
		// The server ignored Range: skip to Offset, stop after Length.
		whole = true
		if size >= 0 && (req.Offset >= size || req.Length > 0 && req.Offset+req.Length > size) {
			drain(resp.Body)
			return nil, pastEnd(req, size)
		}
		rest, err := skip(ctx, resp.Body, req, size < 0)
		if err != nil {
			_ = resp.Body.Close()
			return nil, err
		}
		body = readCloser{rest, resp.Body}
		switch {
		case req.Length > 0:
			remain = req.Length
		case size >= 0:
			remain = size - req.Offset
		}
	default:
		return nil, c.responseError(resp)
	}
	return &artifactReader{ctx: ctx, body: body, remain: remain, etag: resp.Header.Get("ETag"), whole: whole}, nil
}

func pastEnd(req transport.ArtifactRequest, size int64) error {
	if req.Length < 0 {
		return transport.Errorf(transport.CodeRange, "artifact of %d bytes has no bytes from %d", size, req.Offset)
	}
	return transport.Errorf(transport.CodeRange, "bytes %d-%d are past the end of an artifact of %d bytes",
		req.Offset, req.Offset+req.Length-1, size)
}

// skip discards the bytes of body before req.Offset and returns the reader
// of the rest. A body that ends cleanly before Offset is an artifact too
// short for the range: transport.ErrRange. With peek (the body's length
// is unknown) so is one that ends right at Offset, found by reading a byte
// ahead.
func skip(ctx context.Context, body io.Reader, req transport.ArtifactRequest, peek bool) (io.Reader, error) {
	n := req.Offset
	if n == 0 {
		return body, nil
	}
	fail := func(err error) (io.Reader, error) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("httptransport: skipping to offset %d: %w", n, err)
	}
	buf := make([]byte, min(n, discardBufferSize))
	got, err := io.CopyBuffer(io.Discard, io.LimitReader(onlyReader{body}, n), buf)
	switch {
	case err != nil:
		return fail(err)
	case got < n:
		return nil, pastEnd(req, got)
	case !peek:
		return body, nil
	}
	var first [1]byte
	if _, err := io.ReadFull(body, first[:]); err != nil {
		if err == io.EOF {
			return nil, pastEnd(req, n)
		}
		return fail(err)
	}
	return io.MultiReader(bytes.NewReader(first[:]), body), nil
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// emptyBody is an artifact reader of zero bytes.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }
func (emptyBody) ETag() string             { return "" }
func (emptyBody) Whole() bool              { return false }

// onlyReader hides any WriterTo/ReaderFrom so io.CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }

// parseContentRange parses "bytes first-last/size" (size may be "*", -1).
func parseContentRange(v string) (first, last, size int64, err error) {
	bad := func() (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("%w: 206 with Content-Range %.80q", ErrBadResponse, v)
	}
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return bad()
	}
	rng, total, ok := strings.Cut(rest, "/")
	if !ok {
		return bad()
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return bad()
	}
	if first, err = parseNonNegative(a); err != nil {
		return bad()
	}
	if last, err = parseNonNegative(b); err != nil || last < first {
		return bad()
	}
	size = -1
	if total != "*" {
		if size, err = parseNonNegative(total); err != nil || last >= size {
			return bad()
		}
	}
	return first, last, size, nil
}

func parseNonNegative(s string) (int64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, errors.New("not a number")
	}
	return strconv.ParseInt(s, 10, 64)
}

// artifactReader yields exactly remain bytes of body (all of it when
// remain is -1), each Read going straight to the body.
type artifactReader struct {
	ctx    context.Context
	body   io.ReadCloser
	remain int64
	etag   string
	whole  bool
}

var _ transport.ArtifactBody = (*artifactReader)(nil)

func (r *artifactReader) ETag() string { return r.etag }
func (r *artifactReader) Whole() bool  { return r.whole }

func (r *artifactReader) Read(p []byte) (int, error) {
	if r.remain == 0 {
		return 0, io.EOF
	}
	if r.remain > 0 && int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.body.Read(p)
	if r.remain > 0 {
		r.remain -= int64(n)
		if r.remain == 0 && err == nil {
			err = io.EOF
		}
	}
	switch {
	case err == nil, err == io.EOF && r.remain <= 0:
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	default:
		if ctxErr := r.ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
	}
	return n, err
}

func (r *artifactReader) Close() error { return r.body.Close() }
