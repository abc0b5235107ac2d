package httptransport

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/transport"
)

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 0-99/100", "bytes 5-5/*", "bytes 10-9/100", "bytes 0-100/100", "bytes -1-5/10", "bytes 0-9223372036854775807/*",
		"bytes 0-9223372036854775808/*", "bytes 01-2/3", "bytes=0-1/2", "bytes 0-1", "bytes */100", "", "bytes +1-2/3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		first, last, size, err := parseContentRange(v)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v is not ErrBadResponse", err)
			}
			return
		}
		if first < 0 || last < first || size < -1 || size >= 0 && last >= size {
			t.Fatalf("parseContentRange(%q) = %d, %d, %d", v, first, last, size)
		}
		total := "*"
		if size >= 0 {
			total = strconv.FormatInt(size, 10)
		}
		again := fmt.Sprintf("bytes %d-%d/%s", first, last, total)
		f2, l2, s2, err := parseContentRange(again)
		if err != nil || f2 != first || l2 != last || s2 != size {
			t.Fatalf("%q parsed as %q, which parses as %d, %d, %d, %v", v, again, f2, l2, s2, err)
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"0", "7", " 120 ", "-1", "1.5", "99999999999999999999999", "31536001",
		now.Add(time.Minute).Format(http.TimeFormat), now.Add(-time.Hour).Format(http.TimeFormat),
		"Sunday, 01-Mar-26 12:01:00 GMT", "Sun Mar  1 12:01:00 2026", "soon", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if !ok {
			if d != 0 {
				t.Fatalf("parseRetryAfter(%q) = %s, false", v, d)
			}
			return
		}
		if d < 0 || d > maxRetryAfterHeader {
			t.Fatalf("parseRetryAfter(%q) = %s, out of [0, %s]", v, d, maxRetryAfterHeader)
		}
		if d%time.Second != 0 && !strings.ContainsAny(v, ":") {
			t.Fatalf("parseRetryAfter(%q) = %s, not whole seconds", v, d)
		}
		secs := strconv.FormatInt(int64(d/time.Second), 10)
		if d2, ok := parseRetryAfter(secs, now); !ok || d2 != d.Truncate(time.Second) {
			t.Fatalf("%q parsed as %s, whose seconds %q parse as %s, %v", v, d, secs, d2, ok)
		}
	})
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"Bearer abc", "bearer abc", "BEARER  abc ", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Bearer a\x00b",
		"Bearer \u7ec8\u7aef", "Bearer " + strings.Repeat("a", transport.MaxToken), "Bearer " + strings.Repeat("a", transport.MaxToken+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, ok := bearerToken(v)
		if !ok {
			if tok != "" {
				t.Fatalf("bearerToken(%q) = %q, false", v, tok)
			}
			return
		}
		if err := checkToken(tok); err != nil {
			t.Fatalf("bearerToken(%q) = %q, which a client would not send: %v", v, tok, err)
		}
		if again, ok := bearerToken("Bearer " + tok); !ok || again != tok {
			t.Fatalf("token %q from %q does not travel again: %q, %v", tok, v, again, ok)
		}
	})
}
