package transport

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Code is a stable, machine-readable error code carried in error bodies.
type Code string

const (
	CodeBadRequest   Code = "bad_request"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeTooLarge     Code = "too_large"
	CodeRange        Code = "range_not_satisfiable"
	CodeRateLimited  Code = "rate_limited"
	CodeInternal     Code = "internal"
	CodeUnavailable  Code = "unavailable"
)

// Sentinels matched by [*Error] through errors.Is, one per code.
var (
	ErrBadRequest   = errors.New("transport: bad request")
	ErrUnauthorized = errors.New("transport: unauthorized")
	ErrForbidden    = errors.New("transport: forbidden")
	ErrNotFound     = errors.New("transport: not found")
	ErrConflict     = errors.New("transport: conflict")
	ErrTooLarge     = errors.New("transport: too large")
	ErrRange        = errors.New("transport: range not satisfiable")
	ErrRateLimited  = errors.New("transport: rate limited")
	ErrInternal     = errors.New("transport: internal server error")
	ErrUnavailable  = errors.New("transport: unavailable")
)

// codes lists every code with its status and sentinel, in the fixed order
// in which [AsError] looks for a matching sentinel.
var codes = []struct {
	code   Code
	status int
	err    error
}{
	{CodeBadRequest, http.StatusBadRequest, ErrBadRequest},
	{CodeUnauthorized, http.StatusUnauthorized, ErrUnauthorized},
	{CodeForbidden, http.StatusForbidden, ErrForbidden},
	{CodeNotFound, http.StatusNotFound, ErrNotFound},
	{CodeConflict, http.StatusConflict, ErrConflict},
	{CodeTooLarge, http.StatusRequestEntityTooLarge, ErrTooLarge},
	{CodeRange, http.StatusRequestedRangeNotSatisfiable, ErrRange},
	{CodeRateLimited, http.StatusTooManyRequests, ErrRateLimited},
	{CodeInternal, http.StatusInternalServerError, ErrInternal},
	{CodeUnavailable, http.StatusServiceUnavailable, ErrUnavailable},
}

// lookup returns the index of c in codes, or -1 for an unknown code.
func lookup(c Code) int {
	for i, e := range codes {
		if e.code == c {
			return i
		}
	}
	return -1
}

// Known reports whether c is one of this package's codes.
func (c Code) Known() bool { return lookup(c) >= 0 }

// Status returns the HTTP status that carries c (500 for unknown codes).
func (c Code) Status() int {
	if i := lookup(c); i >= 0 {
		return codes[i].status
	}
	return http.StatusInternalServerError
}

// CodeForStatus returns the code conventionally carried by an HTTP status,
// for responses that came without an error body (a proxy's 502, a CDN's 404).
func CodeForStatus(status int) Code {
	for _, e := range codes {
		if e.status == status {
			return e.code
		}
	}
	switch {
	case status >= 500:
		return CodeUnavailable
	case status >= 400:
		return CodeBadRequest
	}
	return CodeInternal
}

// Error is a protocol error: from a server's error body, or made by a
// Service to be sent as one.
type Error struct {
	// Status is the HTTP status; zero means Code's own.
	Status  int
	Code    Code
	Message string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

// Errorf makes an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	s := fmt.Sprintf("transport: %s (%d)", e.Code, e.HTTPStatus())
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// HTTPStatus returns Status, or the status of Code when Status is zero.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.Status()
}

// Is matches the sentinel of e's code.
func (e *Error) Is(target error) bool {
	i := lookup(e.Code)
	return i >= 0 && codes[i].err == target
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an [ErrorBody].
type ErrorDetail struct {
	Code    Code   `json:"code"`
	Message string `json:"message,omitempty"`
}

// internalMessage is the only text an internal error carries on the wire.
const internalMessage = "internal error"

// AsError turns any error into the *Error a server sends for it, and never
// puts err's own text on the wire unless err chose it:
//
//   - the first *Error in err's chain as it is, when its code is known and
//     not CodeInternal;
//   - an *Error of CodeInternal with its message replaced by "internal
//     error" (its Status and RetryAfter kept);
//   - an *Error of a code this package does not know as a plain
//     CodeInternal (status 500, "internal error");
//   - an error wrapping a sentinel of this package as that sentinel's code,
//     carrying only the sentinel's text (what else err says, a query or a
//     DSN, stays in the server's log). When err wraps several, the first
//     in the order the codes are declared wins;
//   - anything else as CodeInternal with the message "internal error".
//
// Wrap an *Error, not a sentinel, to send a message of your own.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		switch {
		case e.Code == CodeInternal:
			return &Error{Status: e.Status, Code: CodeInternal, Message: internalMessage, RetryAfter: e.RetryAfter}
		case e.Code.Known():
			return e
		}
		return &Error{Code: CodeInternal, Message: internalMessage}
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			if c.code == CodeInternal {
				break
			}
			return &Error{Code: c.code, Message: strings.TrimPrefix(c.err.Error(), "transport: ")}
		}
	}
	return &Error{Code: CodeInternal, Message: internalMessage}
}
