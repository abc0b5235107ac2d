package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
)

func TestCodes(t *testing.T) {
	tests := []struct {
		code     transport.Code
		status   int
		sentinel error
	}{
		{transport.CodeBadRequest, 400, transport.ErrBadRequest},
		{transport.CodeUnauthorized, 401, transport.ErrUnauthorized},
		{transport.CodeForbidden, 403, transport.ErrForbidden},
		{transport.CodeNotFound, 404, transport.ErrNotFound},
		{transport.CodeConflict, 409, transport.ErrConflict},
		{transport.CodeTooLarge, 413, transport.ErrTooLarge},
		{transport.CodeRange, 416, transport.ErrRange},
		{transport.CodeRateLimited, 429, transport.ErrRateLimited},
		{transport.CodeInternal, 500, transport.ErrInternal},
		{transport.CodeUnavailable, 503, transport.ErrUnavailable},
	}
	all := make([]error, len(tests))
	for i, tt := range tests {
		all[i] = tt.sentinel
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			if got := tt.code.Status(); got != tt.status {
				t.Errorf("Status() = %d, want %d", got, tt.status)
			}
			if got := transport.CodeForStatus(tt.status); got != tt.code {
				t.Errorf("CodeForStatus(%d) = %s, want %s", tt.status, got, tt.code)
			}
			e := transport.Errorf(tt.code, "x")
			for _, s := range all {
				if got, want := errors.Is(e, s), s == tt.sentinel; got != want {
					t.Errorf("errors.Is(%s, %v) = %v", tt.code, s, got)
				}
			}
			// Wrapped, it still matches.
			if !errors.Is(fmt.Errorf("calling: %w", e), tt.sentinel) {
				t.Errorf("wrapped %s does not match its sentinel", tt.code)
			}
			if got := transport.AsError(tt.sentinel).Code; got != tt.code {
				t.Errorf("AsError(%v).Code = %s", tt.sentinel, got)
			}
		})
	}
}

func TestCodeForStatusFallback(t *testing.T) {
	tests := []struct {
		status int
		want   transport.Code
	}{
		{502, transport.CodeUnavailable},
		{504, transport.CodeUnavailable},
		{599, transport.CodeUnavailable},
		{405, transport.CodeBadRequest},
		{418, transport.CodeBadRequest},
		{302, transport.CodeInternal},
		{200, transport.CodeInternal},
	}
	for _, tt := range tests {
		if got := transport.CodeForStatus(tt.status); got != tt.want {
			t.Errorf("CodeForStatus(%d) = %s, want %s", tt.status, got, tt.want)
		}
	}
	if got := transport.Code("teapot").Status(); got != http.StatusInternalServerError {
		t.Errorf("unknown code's status %d, want 500", got)
	}
	if errors.Is(&transport.Error{Code: "teapot"}, transport.ErrInternal) {
		t.Errorf("an unknown code matched a sentinel")
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *transport.Error
		want string
	}{
		{&transport.Error{Code: transport.CodeNotFound}, "transport: not_found (404)"},
		{&transport.Error{Code: transport.CodeNotFound, Message: "no artifact"}, "transport: not_found (404): no artifact"},
		{&transport.Error{Status: 502, Code: transport.CodeUnavailable, RetryAfter: 3 * time.Second},
			"transport: unavailable (502) (retry after 3s)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestAsError(t *testing.T) {
	given := &transport.Error{Code: transport.CodeConflict, Message: "busy", RetryAfter: time.Second}
	secret := []string{"postgres", "user:pw", "10.0.0.1", "password", "teapot detail", "stack"}
	tests := []struct {
		name        string
		err         error
		wantCode    transport.Code
		wantMessage string // "" means any
		wantStatus  int
		check       func(*testing.T, *transport.Error)
	}{
		{"an *Error as it is", given, transport.CodeConflict, "busy", 409, func(t *testing.T, e *transport.Error) {
			if e != given {
				t.Errorf("AsError made a new *Error")
			}
		}},
		{"a wrapped *Error", fmt.Errorf("svc: %w", given), transport.CodeConflict, "busy", 409, nil},
		{"a wrapped sentinel", fmt.Errorf("device d1: %w", transport.ErrForbidden), transport.CodeForbidden, "forbidden", 403, nil},
		{"a sentinel wrapped with a DSN", fmt.Errorf("query on postgres://user:pw@db: %w", transport.ErrNotFound),
			transport.CodeNotFound, "not found", 404, nil},
		{"a bare sentinel", transport.ErrRange, transport.CodeRange, "range not satisfiable", 416, nil},
		{"a wrapped internal sentinel", fmt.Errorf("db at 10.0.0.1: %w", transport.ErrInternal),
			transport.CodeInternal, "internal error", 500, nil},
		{"an internal *Error", &transport.Error{Code: transport.CodeInternal, Message: "stack: db password", RetryAfter: 3 * time.Second},
			transport.CodeInternal, "internal error", 500, func(t *testing.T, e *transport.Error) {
				if e.RetryAfter != 3*time.Second {
					t.Errorf("RetryAfter %s, want 3s kept", e.RetryAfter)
				}
			}},
		{"an unknown code", &transport.Error{Status: 418, Code: "teapot", Message: "teapot detail", RetryAfter: time.Second},
			transport.CodeInternal, "internal error", 500, func(t *testing.T, e *transport.Error) {
				if errors.Is(e, transport.ErrBadRequest) || !errors.Is(e, transport.ErrInternal) {
					t.Errorf("an unknown code does not match ErrInternal alone")
				}
			}},
		{"an unknown code, wrapped", fmt.Errorf("svc: %w", &transport.Error{Code: "teapot", Message: "teapot detail"}),
			transport.CodeInternal, "internal error", 500, nil},
		{"anything else", errors.New("db at 10.0.0.1: password expired"), transport.CodeInternal, "internal error", 500, nil},
		{"a context error", context.DeadlineExceeded, transport.CodeInternal, "internal error", 500, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := transport.AsError(tt.err)
			if e.Code != tt.wantCode || e.HTTPStatus() != tt.wantStatus {
				t.Fatalf("code %s status %d, want %s %d", e.Code, e.HTTPStatus(), tt.wantCode, tt.wantStatus)
			}
			if tt.wantMessage != "" && e.Message != tt.wantMessage {
				t.Errorf("message %q, want %q", e.Message, tt.wantMessage)
			}
			for _, s := range secret {
				if strings.Contains(e.Message, s) {
					t.Errorf("%q on the wire: %q", s, e.Message)
				}
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

// TestAsErrorDeterministic: an error wrapping several sentinels maps to
// the same code every time, the first in the declared order.
func TestAsErrorDeterministic(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want transport.Code
	}{
		{"not found and forbidden", errors.Join(transport.ErrNotFound, transport.ErrForbidden), transport.CodeForbidden},
		{"unavailable and bad request", errors.Join(transport.ErrUnavailable, transport.ErrBadRequest), transport.CodeBadRequest},
		{"range and conflict", fmt.Errorf("%w, %w", transport.ErrRange, transport.ErrConflict), transport.CodeConflict},
		{"internal and too large", errors.Join(transport.ErrInternal, transport.ErrTooLarge), transport.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 { // map order would differ within a hundred tries
				if got := transport.AsError(tt.err).Code; got != tt.want {
					t.Fatalf("AsError code %s, want %s", got, tt.want)
				}
			}
		})
	}
}

func TestCodeKnown(t *testing.T) {
	tests := []struct {
		code transport.Code
		want bool
	}{
		{transport.CodeNotFound, true},
		{transport.CodeInternal, true},
		{transport.CodeUnavailable, true},
		{"", false},
		{"teapot", false},
		{"NOT_FOUND", false},
	}
	for _, tt := range tests {
		if got := tt.code.Known(); got != tt.want {
			t.Errorf("Code(%q).Known() = %v, want %v", tt.code, got, tt.want)
		}
	}
}
