package transport_test

import (
	"errors"
	"math"
	"net/url"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/transport"
)

func TestArtifactRequestValidate(t *testing.T) {
	tests := []struct {
		name           string
		offset, length int64
		ok             bool
	}{
		{"whole", 0, -1, true},
		{"from an offset to the end", 5, -1, true},
		{"a range", 5, 10, true},
		{"zero length", 5, 0, true},
		{"up to the largest end", 5, math.MaxInt64 - 5, true},
		{"negative offset", -1, 10, false},
		{"length below -1", 0, -2, false},
		{"most negative length", 0, math.MinInt64, false},
		{"end overflows", 5, math.MaxInt64, false},
		{"end overflows by one", math.MaxInt64, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := transport.ArtifactRequest{Offset: tt.offset, Length: tt.length}.Validate()
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var e *transport.Error
			if !errors.As(err, &e) || e.Code != transport.CodeBadRequest {
				t.Fatalf("Validate = %v, want a bad_request *Error", err)
			}
		})
	}
}

func TestResolveArtifactURL(t *testing.T) {
	tests := []struct {
		base, ref string
		want      string // "" means a bad request
	}{
		{"https://tms.test/upkeep", "v1/artifacts/x", "https://tms.test/upkeep/v1/artifacts/x"},
		{"https://tms.test/upkeep", "/v1/artifacts/x", "https://tms.test/upkeep/v1/artifacts/x"},
		{"https://tms.test/upkeep/", "/v1/artifacts/x", "https://tms.test/upkeep/v1/artifacts/x"},
		{"https://tms.test/upkeep/", "v1/artifacts/x", "https://tms.test/upkeep/v1/artifacts/x"},
		{"https://tms.test", "/v1/artifacts/x", "https://tms.test/v1/artifacts/x"},
		{"https://tms.test", "v1/artifacts/x", "https://tms.test/v1/artifacts/x"},
		{"https://tms.test/a/b", "//v1/x?q=1#frag", "https://v1/x?q=1"}, // scheme-relative: v1 is a host
		{"https://tms.test/upkeep", "/files/a.bin?token=abc", "https://tms.test/upkeep/files/a.bin?token=abc"},
		{"https://tms.test/upkeep", "https://cdn.test/a.bin?sig=s#f", "https://cdn.test/a.bin?sig=s"},
		{"https://tms.test/upkeep", "http://cdn.test/a.bin", "http://cdn.test/a.bin"},
		{"https://tms.test/upkeep", "//cdn.test/a.bin", "https://cdn.test/a.bin"},
		{"https://tms.test/up%2Fkeep", "v1/x", "https://tms.test/up%2Fkeep/v1/x"},
		{"https://tms.test/upkeep", "ftp://cdn.test/a.bin", ""},
		{"https://tms.test/upkeep", "https:///a.bin", ""},
		{"https://tms.test/upkeep", "mailto:ops@example.com", ""},
		{"https://tms.test/upkeep", "?sig=secret", ""},
		{"https://tms.test/upkeep", "%zz?sig=secret", ""},
		{"https://tms.test/upkeep", "https://cdn test/a?sig=secret", ""},
	}
	for _, tt := range tests {
		t.Run(tt.base+" "+tt.ref, func(t *testing.T) {
			base, err := url.Parse(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			u, err := transport.ResolveArtifactURL(base, tt.ref)
			if tt.want == "" {
				if !errors.Is(err, transport.ErrBadRequest) {
					t.Fatalf("ResolveArtifactURL = %v, %v; want ErrBadRequest", u, err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("the error repeats the query: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveArtifactURL: %v", err)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("ResolveArtifactURL = %s, want %s", got, tt.want)
			}
		})
	}
}

func FuzzResolveArtifactURL(f *testing.F) {
	for _, ref := range []string{"v1/artifacts/x", "/v1/artifacts/x", "https://cdn.test/a?sig=s", "//cdn.test/a",
		"../x", "%zz", "?q", "ftp://x/y", "https:///a"} {
		f.Add("https://tms.test/upkeep", ref)
	}
	f.Fuzz(func(t *testing.T, baseStr, ref string) {
		base, err := url.Parse(baseStr)
		if err != nil || base.Scheme != "https" || base.Host == "" || base.RawQuery != "" || base.Fragment != "" {
			return
		}
		u, err := transport.ResolveArtifactURL(base, ref)
		if err != nil {
			if !errors.Is(err, transport.ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Fragment != "" {
			t.Fatalf("resolved %q to %s", ref, u)
		}
		r, _ := url.Parse(ref)
		// Dot segments may climb out of the base path; others must not.
		dots := strings.Contains(ref, ".") || strings.Contains(base.Path, ".")
		if r.Scheme == "" && r.Host == "" && !dots &&
			!strings.HasPrefix(u.Path, strings.TrimSuffix(base.Path, "/")+"/") {
			t.Fatalf("relative %q lost the base path %q: %s", ref, base.Path, u)
		}
	})
}
