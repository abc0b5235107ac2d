package maint_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/upkeephq/upkeep/update/maint"
)

func ExamplePassword() {
	dir, err := os.MkdirTemp("", "maint")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	pw, err := maint.NewPassword(maint.PasswordConfig{
		Path: filepath.Join(dir, "maintenance-password.json"),
		// Tiny costs keep the example fast. On a terminal keep the
		// defaults, or lower MemoryKiB to what its RAM allows.
		Params: maint.Params{Time: 1, MemoryKiB: 64, Threads: 1},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// No factory default: the first use sets the password.
	_, err = pw.Authorize(ctx, "00000000")
	fmt.Println(errors.Is(err, maint.ErrNotSet))
	fmt.Println(pw.SetPassword(ctx, "", "1234"))
	if err := pw.SetPassword(ctx, "", "correct horse"); err != nil {
		log.Fatal(err)
	}

	for _, try := range []string{"guess one", "guess two", "guess three", "correct horse"} {
		a, err := pw.Authorize(ctx, try)
		var wrong *maint.WrongPasswordError
		var locked *maint.LockedError
		switch {
		case errors.As(err, &wrong):
			fmt.Printf("%s: wrong, %d failed, locked: %v\n", try, wrong.Failures, !wrong.LockedUntil.IsZero())
		case errors.As(err, &locked):
			fmt.Printf("%s: refused, locked after %d failures\n", try, locked.Failures)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("%s: %s %s\n", try, a.Method, a.Credential)
		}
	}
	// Output:
	// true
	// maint: password refused by policy: 4 characters, at least 8 needed
	// guess one: wrong, 1 failed, locked: false
	// guess two: wrong, 2 failed, locked: false
	// guess three: wrong, 3 failed, locked: true
	// correct horse: refused, locked after 3 failures
}

func ExampleTokenVerifier() {
	// On the server: a signing key whose public half the terminals hold
	// under the key ID "tms-2025".
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	now := time.Now()
	token, err := maint.IssueToken(priv, "tms-2025", maint.Claims{
		Technician: "t-042",
		Serial:     "SN123456",
		IssuedAt:   now,
		ExpiresAt:  now.Add(4 * time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}

	// On the terminal whose serial is SN123456: each token opens the
	// maintenance menu once.
	var auth maint.Authorizer = &maint.TokenVerifier{
		Keys:   map[string]ed25519.PublicKey{"tms-2025": pub},
		Serial: "SN123456",
		Leeway: time.Minute,
		Replay: &maint.ReplayGuard{},
	}
	ctx := context.Background()
	a, err := auth.Authorize(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Method, a.Credential)
	_, err = auth.Authorize(ctx, token)
	fmt.Println(err)

	// Another terminal refuses it.
	other := &maint.TokenVerifier{Keys: map[string]ed25519.PublicKey{"tms-2025": pub}, Serial: "SN654321"}
	_, err = other.Verify(token)
	fmt.Println(errors.Is(err, maint.ErrWrongDevice))
	// Output:
	// token token:t-042/tms-2025
	// maint: token already used
	// true
}
