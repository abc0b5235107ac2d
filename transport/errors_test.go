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
	tests := []struct {
		name     string
		err      error
		wantCode transport.Code
		check    func(*testing.T, *transport.Error)
	}{
		{"an *Error as it is", given, transport.CodeConflict, func(t *testing.T, e *transport.Error) {
			if e != given {
				t.Errorf("AsError made a new *Error")
			}
		}},
		{"a wrapped *Error", fmt.Errorf("svc: %w", given), transport.CodeConflict, nil},
		{"a wrapped sentinel", fmt.Errorf("device d1: %w", transport.ErrForbidden), transport.CodeForbidden, nil},
		{"anything else", errors.New("db at 10.0.0.1: password expired"), transport.CodeInternal, func(t *testing.T, e *transport.Error) {
			if strings.Contains(e.Message, "password") {
				t.Errorf("internal text on the wire: %q", e.Message)
			}
		}},
		{"a context error", context.DeadlineExceeded, transport.CodeInternal, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := transport.AsError(tt.err)
			if e.Code != tt.wantCode {
				t.Fatalf("code %s, want %s", e.Code, tt.wantCode)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}
