package transport

import (
	"errors"
	"fmt"
	"net/http"
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

var codes = map[Code]struct {
	status int
	err    error
}{
	CodeBadRequest:   {http.StatusBadRequest, ErrBadRequest},
	CodeUnauthorized: {http.StatusUnauthorized, ErrUnauthorized},
	CodeForbidden:    {http.StatusForbidden, ErrForbidden},
	CodeNotFound:     {http.StatusNotFound, ErrNotFound},
	CodeConflict:     {http.StatusConflict, ErrConflict},
	CodeTooLarge:     {http.StatusRequestEntityTooLarge, ErrTooLarge},
	CodeRange:        {http.StatusRequestedRangeNotSatisfiable, ErrRange},
	CodeRateLimited:  {http.StatusTooManyRequests, ErrRateLimited},
	CodeInternal:     {http.StatusInternalServerError, ErrInternal},
	CodeUnavailable:  {http.StatusServiceUnavailable, ErrUnavailable},
}

// Status returns the HTTP status that carries c (500 for unknown codes).
func (c Code) Status() int {
	if e, ok := codes[c]; ok {
		return e.status
	}
	return http.StatusInternalServerError
}

// CodeForStatus returns the code conventionally carried by an HTTP status,
// for responses that came without an error body (a proxy's 502, a CDN's 404).
func CodeForStatus(status int) Code {
	for c, e := range codes {
		if e.status == status {
			return c
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
	c, ok := codes[e.Code]
	return ok && c.err == target
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

// AsError turns any error into the *Error a server sends for it: an *Error
// in err's chain as it is; a sentinel of this package as its code; anything
// else as CodeInternal, with its text withheld from the wire.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for c, v := range codes {
		if errors.Is(err, v.err) {
			return &Error{Code: c, Message: err.Error()}
		}
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}
