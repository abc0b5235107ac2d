package update_test

import (
	"context"
	"testing"

	"github.com/upkeephq/upkeep/transport"
	"github.com/upkeephq/upkeep/transport/transporttest"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

// nopInstaller installs nothing, so the benchmark measures the agent:
// check, verify, download with per-chunk hashing into the state directory,
// journal, commit.
type nopInstaller struct{}

func (nopInstaller) Install(context.Context, *update.Artifact) error  { return nil }
func (nopInstaller) Rollback(context.Context, *update.Artifact) error { return nil }

// BenchmarkUpdatePass runs whole update passes of a 64 MiB release in 1 MiB
// chunks from the in-memory fake server:
//
//	go test -run X -bench UpdatePass -count 6 ./update
func BenchmarkUpdatePass(b *testing.B) {
	keys, err := transporttest.NewKeys(transporttest.DefaultIssued(), transporttest.DefaultExpires())
	if err != nil {
		b.Fatal(err)
	}
	ring, _ := keys.KeyRing()
	art := make([]byte, 64<<20)
	rel, err := keys.NewRelease(verify.Manifest{Component: "app", Version: "2.0.0", Artifact: verify.Artifact{ChunkSize: 1 << 20}}, art)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(art)))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		srv := transporttest.NewServer(transporttest.Config{})
		srv.Publish(rel.Bundle, rel.Artifact, transport.Policy{})
		client := srv.Client()
		client.Register(ctx, &transport.RegisterRequest{Enrollment: transporttest.DefaultEnrollment, Serial: "SN1", Model: "P300"})
		a, err := update.New(update.Config{Source: client, Keys: ring, Installer: nopInstaller{}, StateDir: b.TempDir(),
			Device: update.Device{Model: "P300"}, Installed: map[string]string{"app": "1.0.0"}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := a.Update(ctx)
		if err != nil || res.Outcome != transport.OutcomeCommitted {
			b.Fatalf("Update = %+v, %v", res, err)
		}
	}
}
