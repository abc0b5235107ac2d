package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/upkeephq/upkeep/transport"
)

// maxOperatorBody bounds an operator request's body.
const maxOperatorBody = 1 << 20

// Pages of the operator API's lists: a request that names no limit gets
// DefaultPage items, and one that asks for more than MaxPage gets
// MaxPage, so that no request reads a whole fleet into memory.
const (
	DefaultPage = 100
	MaxPage     = 1000
)

// opFunc serves one operator request for an authenticated operator. It
// returns the value to send as JSON, or handled when it wrote the response
// itself.
type opFunc func(w http.ResponseWriter, r *http.Request, op Operator) (any, error)

// handled is what an opFunc returns when it wrote the response itself.
var handled = new(struct{})

// OperatorHandler returns the operator API: JSON over HTTP under
// /v1/operator/, authenticated by a bearer token from Config.Operators
// (or Config.OperatorToken). Viewers may GET; admins may also POST and
// PUT. An admin action, and a known operator's attempt at one that their
// role refuses, land in the audit log; a request with no or an unknown
// token is refused (401) and only logged. Without operators every request
// is refused (403). [Server.Handler] mounts it.
//
//	GET  /v1/operator/whoami                   the operator the token names
//	GET  /v1/operator/terminals                a page of terminals (?after=ID&limit=N&reports=N)
//	GET  /v1/operator/terminals/{id}           one terminal with its latest reports
//	POST /v1/operator/terminals/{id}/nudge     admin: check at the next heartbeat
//	PUT  /v1/operator/terminals/{id}/labels    admin: {"group": "...", "tags": [...]}
//	GET  /v1/operator/inventory.csv            every terminal as CSV
//	GET  /v1/operator/releases                 published releases
//	POST /v1/operator/releases                 admin: {"dir": "rel-1.1.0", "channel": "...", "policy": {...}}
//	GET  /v1/operator/rollouts                 rollouts with per-stage counts
//	POST /v1/operator/rollouts                 admin: a RolloutSpec
//	GET  /v1/operator/rollouts/{id}            one rollout
//	POST /v1/operator/rollouts/{id}/pause      admin: {"note": "..."}; also resume, abort
//	GET  /v1/operator/audit                    a page of the audit log (?after=SEQ&limit=N)
//
// Lists are pages: DefaultPage items unless limit says otherwise, at most
// MaxPage. A full page carries a Link header naming the next one
// (rel="next"); the last page has none. Errors are transport error
// bodies: {"error": {"code": ..., "message": ...}}.
func (s *Server) OperatorHandler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, need Role, action string, h opFunc) {
		mux.Handle(pattern, s.operator(need, action, h))
	}
	route("GET /v1/operator/whoami", RoleViewer, "whoami", func(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
		return op, nil
	})
	route("GET /v1/operator/terminals", RoleViewer, "terminals.list", s.opTerminals)
	route("GET /v1/operator/terminals/{id}", RoleViewer, "terminal.get", func(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
		return s.Terminal(r.Context(), r.PathValue("id"))
	})
	route("POST /v1/operator/terminals/{id}/nudge", RoleAdmin, "terminal.nudge", s.opNudge)
	route("PUT /v1/operator/terminals/{id}/labels", RoleAdmin, "terminal.labels", s.opLabels)
	route("GET /v1/operator/inventory.csv", RoleViewer, "inventory.export", s.opInventory)
	route("GET /v1/operator/releases", RoleViewer, "releases.list", func(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
		return s.ListReleases(r.Context())
	})
	route("POST /v1/operator/releases", RoleAdmin, "release.publish", s.opPublish)
	route("GET /v1/operator/rollouts", RoleViewer, "rollouts.list", func(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
		return s.Rollouts(r.Context())
	})
	route("POST /v1/operator/rollouts", RoleAdmin, "rollout.create", s.opCreateRollout)
	route("GET /v1/operator/rollouts/{id}", RoleViewer, "rollout.get", func(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
		return s.Rollout(r.Context(), r.PathValue("id"))
	})
	commands := map[string]func(context.Context, Operator, string, string) (RolloutStatus, error){
		"pause": s.PauseRollout, "resume": s.ResumeRollout, "abort": s.AbortRollout,
	}
	for name, command := range commands {
		route("POST /v1/operator/rollouts/{id}/"+name, RoleAdmin, "rollout."+name,
			func(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
				var body struct {
					Note string `json:"note"`
				}
				if err := decodeBody(r, &body, true); err != nil {
					s.audit(r.Context(), op, "rollout."+name, r.PathValue("id"), err, "")
					return nil, err
				}
				return command(r.Context(), op, r.PathValue("id"), body.Note)
			})
	}
	route("GET /v1/operator/audit", RoleViewer, "audit.list", s.opAudit)
	route("/v1/operator/", RoleViewer, "unknown", func(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
		return nil, transport.Errorf(transport.CodeNotFound, "no operator endpoint %s %s", r.Method, r.URL.Path)
	})
	return mux
}

// operator authenticates a request, checks the operator's role, serves it
// with h and writes the JSON answer or error.
func (s *Server) operator(need Role, action string, h opFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, err := s.operatorOf(r)
		switch {
		case err != nil:
			if errors.Is(err, transport.ErrUnauthorized) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="upkeep-operator"`)
				if need == RoleAdmin {
					s.log.Warn("server: operator request without a valid token", "method", r.Method, "path", r.URL.Path,
						"remote", r.RemoteAddr)
				}
			}
		case !op.Role.can(need):
			err = denied(op, action)
			s.audit(r.Context(), op, action, r.PathValue("id"), err, r.Method+" "+r.URL.Path)
		}
		var v any
		if err == nil {
			v, err = h(w, r, op)
			if err == nil && v == handled {
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			e := transport.AsError(err)
			if e.Code == transport.CodeInternal {
				s.log.Error("server: operator request failed", "path", r.URL.Path, "err", err)
			}
			w.WriteHeader(e.HTTPStatus())
			v = transport.ErrorBody{Error: transport.ErrorDetail{Code: e.Code, Message: e.Message}}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	})
}

// operatorOf returns the operator a request's bearer token names.
func (s *Server) operatorOf(r *http.Request) (Operator, error) {
	if len(s.operators) == 0 {
		return Operator{}, transport.Errorf(transport.CodeForbidden, "the operator API is disabled")
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return Operator{}, transport.Errorf(transport.CodeUnauthorized, "operator token required")
	}
	op, ok := s.operators[sha256.Sum256([]byte(tok))]
	if !ok {
		return Operator{}, transport.Errorf(transport.CodeUnauthorized, "operator token required")
	}
	return op, nil
}

// decodeBody reads a JSON request body into v, refusing unknown fields;
// an empty body is fine when optional.
func decodeBody(r *http.Request, v any, optional bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxOperatorBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil, optional && errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &tooLarge):
		return transport.Errorf(transport.CodeTooLarge, "request body over %d bytes", maxOperatorBody)
	}
	return transport.Errorf(transport.CodeBadRequest, "request body: %v", err)
}

func intParam(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, transport.Errorf(transport.CodeBadRequest, "%s=%q: want a number, 0 or more", name, v)
	}
	return n, nil
}

// pageLimit reads a list's limit parameter: DefaultPage when absent or 0,
// at most MaxPage.
func pageLimit(r *http.Request) (int, error) {
	limit, err := intParam(r, "limit")
	if err != nil {
		return 0, err
	}
	if limit == 0 {
		return DefaultPage, nil
	}
	return int(min(limit, MaxPage)), nil
}

// linkNext names the page after a full one in a Link header.
func linkNext(w http.ResponseWriter, r *http.Request, after string, limit int) {
	q := r.URL.Query()
	q.Set("after", after)
	q.Set("limit", strconv.Itoa(limit))
	w.Header().Set("Link", "<"+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
}

func (s *Server) opTerminals(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
	limit, err := pageLimit(r)
	if err != nil {
		return nil, err
	}
	reports, err := intParam(r, "reports")
	if err != nil {
		return nil, err
	}
	ts, err := s.ListTerminals(r.Context(), TerminalQuery{After: r.URL.Query().Get("after"), Limit: limit,
		Reports: int(min(reports, maxHistory))})
	if err == nil && len(ts) == limit {
		linkNext(w, r, ts[len(ts)-1].DeviceID, limit)
	}
	return ts, err
}

func (s *Server) opNudge(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
	id := r.PathValue("id")
	if err := s.nudge(r.Context(), op, id); err != nil {
		return nil, err
	}
	return map[string]string{"device_id": id, "directive": string(transport.DirectiveCheck)}, nil
}

func (s *Server) opLabels(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
	var body struct {
		Group string   `json:"group"`
		Tags  []string `json:"tags"`
	}
	id := r.PathValue("id")
	if err := decodeBody(r, &body, false); err != nil {
		s.audit(r.Context(), op, "terminal.labels", id, err, "")
		return nil, err
	}
	if err := s.SetLabels(r.Context(), op, id, body.Group, body.Tags); err != nil {
		return nil, err
	}
	return s.Terminal(r.Context(), id)
}

func (s *Server) opInventory(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="inventory.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := s.WriteInventory(r.Context(), w); err != nil {
		// The header is sent: all that is left is to cut the export short.
		s.log.Error("server: inventory export failed", "err", err)
		panic(http.ErrAbortHandler)
	}
	return handled, nil
}

func (s *Server) opPublish(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
	var body struct {
		Dir     string           `json:"dir"`
		Channel string           `json:"channel"`
		Policy  transport.Policy `json:"policy"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		s.audit(r.Context(), op, "release.publish", "", err, "")
		return nil, err
	}
	var err error
	switch {
	case s.cfg.ReleaseRoot == "":
		err = transport.Errorf(transport.CodeForbidden, "publishing over the operator API is off (no release root)")
	case !filepath.IsLocal(body.Dir):
		err = transport.Errorf(transport.CodeBadRequest, "dir %q: want a relative path inside the release root", body.Dir)
	}
	if err != nil {
		s.audit(r.Context(), op, "release.publish", body.Dir, err, "")
		return nil, err
	}
	rel, err := s.publishAs(r.Context(), filepath.Join(s.cfg.ReleaseRoot, body.Dir), body.Dir,
		PublishOptions{Channel: body.Channel, Policy: body.Policy, By: op})
	if err != nil {
		var pe *PublishError
		if errors.As(err, &pe) {
			// Why a release directory does not verify is the operator's
			// to know, by the name they gave it.
			err = transport.Errorf(transport.CodeBadRequest, "%s", pe.shown())
		}
		return nil, err
	}
	rels, err := s.ListReleases(r.Context())
	if err != nil {
		return nil, err
	}
	for _, p := range rels {
		if p.ID == rel.ID() && p.Channel == rel.Channel {
			return p, nil
		}
	}
	return nil, transport.Errorf(transport.CodeConflict, "release %s was replaced meanwhile", rel.ID())
}

func (s *Server) opCreateRollout(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
	var spec RolloutSpec
	if err := decodeBody(r, &spec, false); err != nil {
		s.audit(r.Context(), op, "rollout.create", spec.ID, err, "")
		return nil, err
	}
	return s.CreateRollout(r.Context(), op, spec)
}

func (s *Server) opAudit(w http.ResponseWriter, r *http.Request, op Operator) (any, error) {
	after, err := intParam(r, "after")
	if err != nil {
		return nil, err
	}
	limit, err := pageLimit(r)
	if err != nil {
		return nil, err
	}
	evs, err := s.Audit(r.Context(), after, limit)
	if err == nil && len(evs) == limit {
		linkNext(w, r, strconv.FormatInt(evs[len(evs)-1].Seq, 10), limit)
	}
	return evs, err
}
