package transport_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/upkeephq/upkeep/internal/jsonwire"
	"github.com/upkeephq/upkeep/transport"
)

// request is a protocol request as a server receives it.
type request interface {
	Validate() error
}

// fuzzDecode decodes data strictly into a new request, as the handler
// does, and validates it. It must never panic; an error from either step
// must be the kind the handler expects; and a request that passes must
// survive a round trip through JSON and pass again.
func fuzzDecode[R any, PR interface {
	*R
	request
}](t *testing.T, data []byte) {
	req := PR(new(R))
	if err := jsonwire.Unmarshal(data, req); err != nil {
		if !errors.Is(err, jsonwire.ErrMalformed) {
			t.Fatalf("decoding error %v is not ErrMalformed", err)
		}
		return
	}
	if err := req.Validate(); err != nil {
		if !errors.Is(err, transport.ErrBadRequest) {
			t.Fatalf("Validate error %v is not ErrBadRequest", err)
		}
		return
	}
	again, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("re-encoding a valid request: %v", err)
	}
	req2 := PR(new(R))
	if err := jsonwire.Unmarshal(again, req2); err != nil {
		t.Fatalf("decoding a re-encoded request %s: %v", again, err)
	}
	if err := req2.Validate(); err != nil {
		t.Fatalf("a valid request fails Validate after a round trip: %v\n%s", err, again)
	}
}

func FuzzRegisterRequest(f *testing.F) {
	for _, s := range []string{
		`{"enrollment":"e","serial":"SN1","model":"A920"}`,
		`{"enrollment":"e","serial":"SN1","model":"A920","hardware_revision":"r2","components":[{"name":"fw","version":"1.0.0","floor":"0.9.0"}]}`,
		`{"enrollment":"","serial":"SN1","model":"A920"}`,
		`{"enrollment":"e","serial":"SN1","model":"A920","x":1}`,
		`{"enrollment":"e"} {}`, `null`, `[]`, `{"components":[{"name":"a","version":"1.0.0-"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode[transport.RegisterRequest](t, data) })
}

func FuzzHeartbeatRequest(f *testing.F) {
	for _, s := range []string{
		`{"seq":1}`,
		`{"seq":2,"state":"idle","release":"app@1.0.0","waiting":"busy","components":[{"name":"app","version":"1.0.0"}],"battery":{"percent":40,"on_mains":true},"network":"wifi","last_result":{"release":"app@1.0.0","outcome":"committed","at":"2026-01-01T00:00:00Z"}}`,
		`{"seq":-1}`, `{"battery":{"percent":101}}`, `{"last_result":{"at":"yesterday"}}`, `{"seq":18446744073709551616}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode[transport.HeartbeatRequest](t, data) })
}

func FuzzCheckRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"A920","components":[]}`,
		`{"model":"A920","hardware_revision":"r2","channel":"beta","components":[{"name":"app","version":"2.0.0-rc.1"}]}`,
		`{"model":"A 920"}`, `{"model":"A920","components":null}`, `{"model":"A920","components":[{}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode[transport.CheckRequest](t, data) })
}

func FuzzReportRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":"r1","release":"app@1.1.0","from":"1.0.0","to":"1.1.0","phase":"verify","outcome":"committed","reason":"ok","at":"2026-01-01T00:00:00Z"}`,
		`{"id":"r1","outcome":"refused","reason":"signature_invalid","detail":"key 1234","at":"2026-01-01T00:00:00+08:00"}`,
		`{"id":"","outcome":"x"}`, `{"id":"r1"}`, `{"id":"r1","outcome":"x","at":"not a time"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode[transport.ReportRequest](t, data) })
}
