package gate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

// sleepUntil moves a synctest bubble's clock to t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// answer is what a gate said: go, wait (after, reason) or failed.
type answer struct {
	Go     bool
	After  time.Duration
	Reason string
	Err    error // neither go nor a *NotNowError
}

func ask(t *testing.T, g update.Gate, req update.GateRequest) answer {
	t.Helper()
	err := g(context.Background(), req)
	if err == nil {
		return answer{Go: true}
	}
	var wait *update.NotNowError
	if !errors.As(err, &wait) {
		return answer{Err: err}
	}
	if wait.Stage != req.Stage {
		t.Errorf("NotNowError.Stage = %q, want %q", wait.Stage, req.Stage)
	}
	if wait.After <= 0 {
		t.Errorf("NotNowError.After = %s, want a wait: gates never say not now without a time to ask again", wait.After)
	}
	return answer{After: wait.After, Reason: wait.Reason}
}

func wantGo(t *testing.T, a answer) {
	t.Helper()
	if !a.Go {
		t.Fatalf("gate said %+v, want go", a)
	}
}

func wantWait(t *testing.T, a answer, after time.Duration, reason string) {
	t.Helper()
	if a.Go || a.Err != nil || a.After != after || a.Reason != reason {
		t.Fatalf("gate said %+v,\nwant wait %s: %q", a, after, reason)
	}
}

func manifest(id string, size int64) *verify.Manifest {
	comp, ver, _ := cutAt(id)
	return &verify.Manifest{Component: comp, Version: ver, Kind: verify.KindApplication, Artifact: verify.Artifact{Size: size}}
}

func cutAt(id string) (string, string, bool) {
	for i := range id {
		if id[i] == '@' {
			return id[:i], id[i+1:], true
		}
	}
	return id, "", false
}

func install(m *verify.Manifest) update.GateRequest {
	return update.GateRequest{Stage: update.StageInstall, Manifest: m}
}

func download(m *verify.Manifest) update.GateRequest {
	return update.GateRequest{Stage: update.StageDownload, Manifest: m}
}
