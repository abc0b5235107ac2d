package transport

import (
	"errors"
	"math"
	"net/url"
	"strings"
)

// Validate checks the range of r: Offset at least 0, Length at least -1
// (to the end), and Offset+Length within an int64. A failure is an
// [*Error] of [CodeBadRequest], as every [Client] returns it before asking
// anything.
func (r ArtifactRequest) Validate() error {
	switch {
	case r.Offset < 0:
		return badRequest("artifact offset %d is negative", r.Offset)
	case r.Length < -1:
		return badRequest("artifact length %d: want -1 (to the end) or more", r.Length)
	case r.Length > math.MaxInt64-r.Offset:
		return badRequest("artifact range of %d bytes from %d overflows", r.Length, r.Offset)
	}
	return nil
}

// ResolveArtifactURL resolves an [Offer]'s ArtifactURL against the update
// server's base URL (its scheme, host and optional path prefix, as a
// client is configured with):
//
//   - an absolute URL ("https://cdn.example.com/a.bin?sig=…") is used as
//     it is, and a scheme-relative one ("//cdn.example.com/a.bin") takes
//     base's scheme;
//   - any other reference is a path under base, base being taken as a
//     directory whatever its trailing slash: with base
//     https://tms.example.com/upkeep, "v1/artifacts/x" and
//     "/v1/artifacts/x" both resolve to
//     https://tms.example.com/upkeep/v1/artifacts/x.
//
// The fragment is dropped. A reference that does not parse, has no path,
// or resolves to anything but an http or https URL with a host is an
// [*Error] of [CodeBadRequest] whose message does not repeat the
// reference (its query may be a presigned URL's signature).
func ResolveArtifactURL(base *url.URL, ref string) (*url.URL, error) {
	r, err := url.Parse(ref)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL
		}
		return nil, badRequest("artifact URL: %v", err)
	}
	var u *url.URL
	if r.Scheme == "" && r.Host == "" {
		if r.Path == "" {
			return nil, badRequest("artifact URL has no path")
		}
		dir := *base
		dir.Path = strings.TrimSuffix(base.Path, "/") + "/"
		if base.RawPath != "" {
			dir.RawPath = strings.TrimSuffix(base.RawPath, "/") + "/"
		}
		rel := *r
		rel.Path = strings.TrimLeft(r.Path, "/")
		rel.RawPath = strings.TrimLeft(r.RawPath, "/")
		u = dir.ResolveReference(&rel)
	} else {
		u = base.ResolveReference(r)
	}
	u.Fragment, u.RawFragment = "", ""
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, badRequest("artifact URL of scheme %.16q: want http or https with a host", u.Scheme)
	}
	return u, nil
}
