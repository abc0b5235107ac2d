package httptransport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/verify"
)

// HandlerConfig configures [NewHandler].
type HandlerConfig struct {
	// Service answers the calls. Required.
	Service transport.Service
	// Logger receives errors (Service failures at Error level, refused
	// requests at Debug). Nil discards them.
	Logger *slog.Logger
	// MaxRequestSize bounds a request body; larger ones are refused with
	// 413 too_large. 0 means transport.MaxRequestSize.
	MaxRequestSize int64
}

// authRealm is the realm of the WWW-Authenticate challenge.
const authRealm = "upkeep"

// maxDecodeMessage bounds the decoder's message echoed to a client.
const maxDecodeMessage = 256

// NewHandler returns the http.Handler of protocol v1 for cfg.Service:
//
//	POST /v1/register             no token
//	POST /v1/heartbeat            token
//	POST /v1/check                token
//	POST /v1/report               token
//	GET, HEAD /v1/artifacts/{digest}  token
//
// POST bodies must be Content-Type application/json (else 415
// bad_request), at most MaxRequestSize (else 413 too_large), one JSON
// value with no unknown fields (else 400 bad_request), and pass the
// request's Validate before the Service sees them. The token travels as
// "Authorization: Bearer <token>" and is checked with
// Service.Authenticate; without a valid one the answer is 401 with a
// WWW-Authenticate challenge.
//
// Service errors become a JSON transport.ErrorBody with the status of
// their code (see transport.AsError) and, when their RetryAfter is set, a
// Retry-After header in whole seconds, rounded up. Only a
// *transport.Error's own message is sent: an error that merely wraps a
// sentinel (fmt.Errorf("query on %s: %w", dsn, transport.ErrNotFound))
// sends the sentinel's text alone. The text of an internal error, or of an
// *Error whose code the protocol does not know (sent as internal), is
// logged, never sent. JSON answers carry Cache-Control: no-store.
//
// Artifacts are served with http.ServeContent: Range, If-Range, 206 and
// 416 behave as HTTP says. The ETag is the Service's, or the quoted digest
// when it gives none. When ArtifactContent.Size is positive it is the
// artifact's size, whatever the Content's end: content that ends before it
// cuts the response short, which a client sees as an unexpected EOF rather
// than as a smaller artifact. The Content is closed when it is an
// io.Closer.
//
// Unknown paths get 404 not_found and known paths with another method 405,
// both as JSON error bodies.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Service == nil {
		return nil, fmt.Errorf("%w: HandlerConfig.Service is required", ErrConfig)
	}
	if cfg.MaxRequestSize < 0 {
		return nil, fmt.Errorf("%w: negative MaxRequestSize", ErrConfig)
	}
	h := &handler{svc: cfg.Service, log: cfg.Logger, maxBody: cfg.MaxRequestSize}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody == 0 {
		h.maxBody = transport.MaxRequestSize
	}
	svc := cfg.Service
	mux := http.NewServeMux()
	mux.Handle("POST "+transport.PathRegister, serveJSON(h, false,
		func(ctx context.Context, _ string, req *transport.RegisterRequest) (*transport.RegisterResponse, error) {
			return svc.Register(ctx, req)
		}))
	mux.Handle("POST "+transport.PathHeartbeat, serveJSON(h, true, svc.Heartbeat))
	mux.Handle("POST "+transport.PathCheck, serveJSON(h, true, svc.Check))
	mux.Handle("POST "+transport.PathReport, serveJSON(h, true, svc.Report))
	artifacts := transport.PathArtifacts + "{digest}"
	mux.HandleFunc("GET "+artifacts, h.artifact) // GET patterns match HEAD too
	for _, p := range []string{transport.PathRegister, transport.PathHeartbeat, transport.PathCheck, transport.PathReport} {
		mux.HandleFunc(p, h.methodNotAllowed("POST"))
	}
	mux.HandleFunc(artifacts, h.methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, transport.Errorf(transport.CodeNotFound, "no such path"))
	})
	return mux, nil
}

type handler struct {
	svc     transport.Service
	log     *slog.Logger
	maxBody int64
}

// validator is a request that checks its own fields.
type validator interface{ Validate() error }

// serveJSON serves one POST call: token, content type, size-limited strict
// decoding, validation, the Service, the JSON answer.
func serveJSON[Req any, PReq interface {
	*Req
	validator
}, Resp any](h *handler, auth bool, call func(ctx context.Context, deviceID string, req PReq) (*Resp, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var deviceID string
		if auth {
			var ok bool
			if deviceID, ok = h.authenticate(w, r); !ok {
				return
			}
		}
		if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
			h.writeError(w, r, err)
			return
		}
		req := PReq(new(Req))
		if err := h.decode(w, r, req); err != nil {
			h.writeError(w, r, err)
			return
		}
		if err := req.Validate(); err != nil {
			h.writeError(w, r, err)
			return
		}
		resp, err := call(r.Context(), deviceID, req)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if resp == nil {
			h.writeError(w, r, errors.New("service returned no response and no error"))
			return
		}
		h.writeJSON(w, r, http.StatusOK, resp)
	})
}

func checkContentType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	return &transport.Error{
		Status:  http.StatusUnsupportedMediaType,
		Code:    transport.CodeBadRequest,
		Message: fmt.Sprintf("Content-Type %.80q: want application/json", ct),
	}
}

// decode reads the limited body into v, strictly.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > h.maxBody {
		return tooLarge(h.maxBody)
	}
	body := http.MaxBytesReader(w, r.Body, h.maxBody)
	err := jsonwire.Decode(body, h.maxBody, v)
	var maxErr *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &maxErr), errors.Is(err, jsonwire.ErrTooLarge):
		return tooLarge(h.maxBody)
	case errors.Is(err, jsonwire.ErrMalformed):
		return transport.Errorf(transport.CodeBadRequest, "%s", truncate(err.Error(), maxDecodeMessage))
	}
	return transport.Errorf(transport.CodeBadRequest, "reading the body: %s", truncate(err.Error(), maxDecodeMessage))
}

func tooLarge(limit int64) error {
	return transport.Errorf(transport.CodeTooLarge, "request body above %d bytes", limit)
}

// authenticate checks the bearer token and returns the device ID, or
// writes the 401 (or the Service's error) and returns false.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", authRealm))
		h.writeError(w, r, transport.Errorf(transport.CodeUnauthorized, "a device token is required"))
		return "", false
	}
	id, err := h.svc.Authenticate(r.Context(), tok)
	if err == nil && id == "" {
		err = errors.New("service authenticated a token as an empty device ID")
	}
	if err != nil {
		if errors.Is(err, transport.ErrUnauthorized) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q, error=\"invalid_token\"", authRealm))
		}
		h.writeError(w, r, err)
		return "", false
	}
	return id, true
}

// bearerToken extracts the token of an "Authorization: Bearer" header: a
// token the client would send (see checkToken), nothing else.
func bearerToken(v string) (string, bool) {
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if checkToken(tok) != nil {
		return "", false
	}
	return tok, true
}

func (h *handler) artifact(w http.ResponseWriter, r *http.Request) {
	deviceID, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	digest := r.PathValue("digest")
	if err := verify.Digest(digest).Validate(); err != nil {
		h.writeError(w, r, transport.Errorf(transport.CodeBadRequest, "artifact digest: %v", err))
		return
	}
	ac, err := h.svc.Artifact(r.Context(), deviceID, digest)
	if err == nil && (ac == nil || ac.Content == nil) {
		err = errors.New("service returned no artifact content and no error")
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if c, ok := ac.Content.(io.Closer); ok {
		defer c.Close()
	}
	etag := ac.ETag
	if etag == "" {
		etag = `"` + digest + `"`
	} else if !strings.HasPrefix(etag, `"`) && !strings.HasPrefix(etag, `W/"`) {
		etag = strconv.Quote(etag)
	}
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("X-Content-Type-Options", "nosniff")
	content := ac.Content
	if ac.Size > 0 {
		content = &sizedContent{ReadSeeker: ac.Content, size: ac.Size}
	}
	http.ServeContent(w, r, "", ac.ModTime, content)
}

// sizedContent answers seeks from the end against a known size, so the
// response announces the artifact's size even when Content ends early.
type sizedContent struct {
	io.ReadSeeker
	size int64
}

func (s *sizedContent) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekEnd {
		return s.ReadSeeker.Seek(s.size+offset, io.SeekStart)
	}
	return s.ReadSeeker.Seek(offset, whence)
}

func (h *handler) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		h.writeError(w, r, &transport.Error{
			Status:  http.StatusMethodNotAllowed,
			Code:    transport.CodeBadRequest,
			Message: fmt.Sprintf("method %.20s not allowed, want %s", r.Method, allow),
		})
	}
}

// writeError writes err as a JSON error body. Internal errors are logged
// and their text withheld.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := *transport.AsError(err)
	switch {
	case e.Code == transport.CodeInternal:
		if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
			// The client went away; nobody reads this answer.
			h.log.Debug("httptransport: request cancelled", "method", r.Method, "path", r.URL.Path, "err", err)
			e = transport.Error{Code: transport.CodeUnavailable, Message: "request cancelled"}
			break
		}
		h.log.Error("httptransport: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e.Message = "internal error"
	default:
		h.log.Debug("httptransport: request refused", "method", r.Method, "path", r.URL.Path,
			"code", e.Code, "err", err)
	}
	status := e.HTTPStatus()
	if status < 400 || status > 599 {
		status = e.Code.Status()
	}
	if e.RetryAfter > 0 {
		secs := (e.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", authRealm))
	}
	h.writeJSON(w, r, status, transport.ErrorBody{Error: transport.ErrorDetail{Code: e.Code, Message: e.Message}})
}

func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("httptransport: encoding a response", "path", r.URL.Path, "err", err)
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	b = append(b, '\n')
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
