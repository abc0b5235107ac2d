package transport_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/transport"
)

func validRegister() *transport.RegisterRequest {
	return &transport.RegisterRequest{
		Enrollment:       "enroll-me",
		Serial:           "SN-0001",
		Model:            "A920",
		HardwareRevision: "r2",
		Components:       []transport.Component{{Name: "firmware", Version: "1.2.3", Floor: "1.0.0"}},
	}
}

func components(n int) []transport.Component {
	cs := make([]transport.Component, n)
	for i := range cs {
		cs[i] = transport.Component{Name: "c", Version: "1.0.0"}
	}
	return cs
}

func TestRegisterRequestValidate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*transport.RegisterRequest)
		wantErr bool
	}{
		{"valid", func(*transport.RegisterRequest) {}, false},
		{"no hardware revision", func(r *transport.RegisterRequest) { r.HardwareRevision = "" }, false},
		{"no components", func(r *transport.RegisterRequest) { r.Components = nil }, false},
		{"longest enrollment", func(r *transport.RegisterRequest) { r.Enrollment = strings.Repeat("e", transport.MaxToken) }, false},
		{"no enrollment", func(r *transport.RegisterRequest) { r.Enrollment = "" }, true},
		{"enrollment too long", func(r *transport.RegisterRequest) { r.Enrollment = strings.Repeat("e", transport.MaxToken+1) }, true},
		{"no serial", func(r *transport.RegisterRequest) { r.Serial = "" }, true},
		{"serial with a slash", func(r *transport.RegisterRequest) { r.Serial = "a/b" }, true},
		{"no model", func(r *transport.RegisterRequest) { r.Model = "" }, true},
		{"model too long", func(r *transport.RegisterRequest) { r.Model = strings.Repeat("m", 65) }, true},
		{"hardware revision starting with a dot", func(r *transport.RegisterRequest) { r.HardwareRevision = ".r2" }, true},
		{"component version not semver", func(r *transport.RegisterRequest) { r.Components[0].Version = "1.2" }, true},
		{"component floor not semver", func(r *transport.RegisterRequest) { r.Components[0].Floor = "latest" }, true},
		{"component without a name", func(r *transport.RegisterRequest) { r.Components[0].Name = "" }, true},
		{"too many components", func(r *transport.RegisterRequest) { r.Components = components(transport.MaxComponents + 1) }, true},
		{"as many components as allowed", func(r *transport.RegisterRequest) { r.Components = components(transport.MaxComponents) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRegister()
			tt.modify(r)
			checkValidate(t, r.Validate(), tt.wantErr)
		})
	}
}

func TestHeartbeatRequestValidate(t *testing.T) {
	tests := []struct {
		name    string
		req     transport.HeartbeatRequest
		wantErr bool
	}{
		{"empty", transport.HeartbeatRequest{}, false},
		{"full", transport.HeartbeatRequest{
			Seq: 3, State: "idle", Release: "app@1.2.0", Waiting: "in a transaction",
			Components: []transport.Component{{Name: "app", Version: "1.0.0"}},
			Battery:    &transport.Battery{Percent: 100, OnMains: true}, Network: "4g",
			LastResult: &transport.Result{Release: "app@1.1.0", Outcome: transport.OutcomeCommitted},
		}, false},
		{"battery at 0", transport.HeartbeatRequest{Battery: &transport.Battery{Percent: 0}}, false},
		{"battery above 100", transport.HeartbeatRequest{Battery: &transport.Battery{Percent: 101}}, true},
		{"battery negative", transport.HeartbeatRequest{Battery: &transport.Battery{Percent: -1}}, true},
		{"state too long", transport.HeartbeatRequest{State: strings.Repeat("s", 129)}, true},
		{"release too long", transport.HeartbeatRequest{Release: strings.Repeat("r", 129)}, true},
		{"network too long", transport.HeartbeatRequest{Network: strings.Repeat("n", 129)}, true},
		{"waiting at the limit", transport.HeartbeatRequest{Waiting: strings.Repeat("w", transport.MaxDetail)}, false},
		{"waiting too long", transport.HeartbeatRequest{Waiting: strings.Repeat("w", transport.MaxDetail+1)}, true},
		{"bad component", transport.HeartbeatRequest{Components: []transport.Component{{Name: "app", Version: "v1"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, tt.req.Validate(), tt.wantErr)
		})
	}
}

func TestCheckRequestValidate(t *testing.T) {
	tests := []struct {
		name    string
		req     transport.CheckRequest
		wantErr bool
	}{
		{"minimal", transport.CheckRequest{Model: "A920"}, false},
		{"full", transport.CheckRequest{Model: "A920", HardwareRevision: "r2", Channel: "beta",
			Components: []transport.Component{{Name: "app", Version: "1.0.0-rc.1+build.5"}}}, false},
		{"no model", transport.CheckRequest{}, true},
		{"bad channel", transport.CheckRequest{Model: "A920", Channel: "beta channel"}, true},
		{"bad hardware revision", transport.CheckRequest{Model: "A920", HardwareRevision: "r2\n"}, true},
		{"too many components", transport.CheckRequest{Model: "A920", Components: components(transport.MaxComponents + 1)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, tt.req.Validate(), tt.wantErr)
		})
	}
}

func TestReportRequestValidate(t *testing.T) {
	valid := transport.ReportRequest{ID: "r1", Outcome: transport.OutcomeRefused, Reason: transport.ReasonSignature}
	tests := []struct {
		name    string
		modify  func(*transport.ReportRequest)
		wantErr bool
	}{
		{"valid", func(*transport.ReportRequest) {}, false},
		{"no id", func(r *transport.ReportRequest) { r.ID = "" }, true},
		{"id too long", func(r *transport.ReportRequest) { r.ID = strings.Repeat("i", 129) }, true},
		{"no outcome", func(r *transport.ReportRequest) { r.Outcome = "" }, true},
		{"release too long", func(r *transport.ReportRequest) { r.Release = strings.Repeat("r", 201) }, true},
		{"from too long", func(r *transport.ReportRequest) { r.From = strings.Repeat("f", 129) }, true},
		{"phase too long", func(r *transport.ReportRequest) { r.Phase = strings.Repeat("p", 65) }, true},
		{"reason too long", func(r *transport.ReportRequest) { r.Reason = transport.Reason(strings.Repeat("x", 65)) }, true},
		{"detail at the limit", func(r *transport.ReportRequest) { r.Detail = strings.Repeat("d", transport.MaxDetail) }, false},
		{"detail too long", func(r *transport.ReportRequest) { r.Detail = strings.Repeat("d", transport.MaxDetail+1) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid
			tt.modify(&r)
			checkValidate(t, r.Validate(), tt.wantErr)
		})
	}
}

// checkValidate checks that a Validate error is there when wanted, and is
// then a bad_request *Error.
func checkValidate(t *testing.T, err error, wantErr bool) {
	t.Helper()
	if !wantErr {
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		return
	}
	if !errors.Is(err, transport.ErrBadRequest) {
		t.Fatalf("Validate = %v, want ErrBadRequest", err)
	}
	var e *transport.Error
	if !errors.As(err, &e) || e.Code != transport.CodeBadRequest || e.HTTPStatus() != 400 {
		t.Fatalf("Validate = %#v, want a bad_request *Error", err)
	}
}
