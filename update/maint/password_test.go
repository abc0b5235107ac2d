package maint

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/durable/durabletest"
)

const testPath = "/maint/password.json"

// fastParams keep argon2id cheap in tests.
var fastParams = Params{Time: 1, MemoryKiB: 64, Threads: 1}

func newTestPassword(t *testing.T, fsys durable.FS, modify ...func(*PasswordConfig)) *Password {
	t.Helper()
	cfg := PasswordConfig{Path: testPath, FS: fsys, Params: fastParams}
	for _, m := range modify {
		m(&cfg)
	}
	p, err := NewPassword(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPasswordValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  PasswordConfig
		ok   bool
	}{
		{"zero values take defaults", PasswordConfig{Path: "p"}, true},
		{"no path", PasswordConfig{}, false},
		{"small params", PasswordConfig{Path: "p", Params: fastParams}, true},
		{"memory below 8 per thread", PasswordConfig{Path: "p", Params: Params{MemoryKiB: 8, Threads: 2}}, false},
		{"memory above 1 GiB", PasswordConfig{Path: "p", Params: Params{MemoryKiB: 2 << 20}}, false},
		{"time above the bound", PasswordConfig{Path: "p", Params: Params{Time: 1000}}, false},
		{"negative min length", PasswordConfig{Path: "p", MinLength: -1}, false},
		{"min length above the max", PasswordConfig{Path: "p", MinLength: MaxLength + 1}, false},
		{"negative free tries", PasswordConfig{Path: "p", FreeTries: -1}, false},
		{"negative base", PasswordConfig{Path: "p", LockBase: -time.Second}, false},
		{"max below base", PasswordConfig{Path: "p", LockBase: time.Hour, LockMax: time.Minute}, false},
		{"max above 30 days", PasswordConfig{Path: "p", LockMax: 31 * 24 * time.Hour}, false},
		{"base above the default max", PasswordConfig{Path: "p", LockBase: 2 * time.Hour}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPassword(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewPassword: %v, want ok %v", err, tt.ok)
			}
			if err == nil && p.params.withDefaults() != p.params {
				t.Errorf("params %+v have zero fields", p.params)
			}
		})
	}
}

func TestPasswordNotSet(t *testing.T) {
	ctx := context.Background()
	fsys := durabletest.NewCrashFS(1)
	p := newTestPassword(t, fsys)
	if _, err := p.Authorize(ctx, ""); !errors.Is(err, ErrNotSet) {
		t.Errorf("Authorize before any is set: %v, want ErrNotSet", err)
	}
	if _, err := p.Authorize(ctx, "12345678"); !errors.Is(err, ErrNotSet) {
		t.Errorf("Authorize before any is set: %v, want ErrNotSet", err)
	}
	if s, err := p.Status(ctx); err != nil || s.Set {
		t.Errorf("Status = %+v, %v; want not set", s, err)
	}
	if err := p.SetPassword(ctx, "guessed1", "12345678"); !errors.Is(err, ErrNotSet) {
		t.Errorf("SetPassword with an old password when none is set: %v, want ErrNotSet", err)
	}
	if err := p.SetPassword(ctx, "", "12345678"); err != nil {
		t.Fatalf("first SetPassword: %v", err)
	}
	if s, err := p.Status(ctx); err != nil || !s.Set || s.Params != fastParams {
		t.Errorf("Status = %+v, %v; want set with %+v", s, err, fastParams)
	}
	if _, err := p.Authorize(ctx, "12345678"); err != nil {
		t.Errorf("Authorize: %v", err)
	}
	if err := p.SetPassword(ctx, "", "abcdefgh"); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("SetPassword without the old one once set: %v, want ErrWrongPassword", err)
	}
}

func TestSetPasswordPolicy(t *testing.T) {
	tests := []struct {
		name   string
		min    int
		old    string
		newPW  string
		wantOK bool
	}{
		{"eight characters", 0, "", "12345678", true},
		{"seven characters", 0, "", "1234567", false},
		{"empty", 0, "", "", false},
		{"eight runes of two bytes", 0, "", "éééééééé", true},
		{"seven runes of two bytes", 0, "", "ééééééé", false},
		{"custom minimum", 12, "", "12345678901", false},
		{"custom minimum met", 12, "", "123456789012", true},
		{"at the byte limit", 0, "", strings.Repeat("x", MaxLength), true},
		{"over the byte limit", 0, "", strings.Repeat("x", MaxLength+1), false},
		{"not UTF-8", 0, "", "abcdefg\xff", false},
		{"same as old", 0, "12345678", "12345678", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPassword(t, durabletest.NewCrashFS(1), func(c *PasswordConfig) { c.MinLength = tt.min })
			ctx := context.Background()
			if tt.old != "" {
				if err := p.SetPassword(ctx, "", tt.old); err != nil {
					t.Fatal(err)
				}
			}
			err := p.SetPassword(ctx, tt.old, tt.newPW)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("SetPassword(%q): %v", tt.newPW, err)
				}
				if _, err := p.Authorize(ctx, tt.newPW); err != nil {
					t.Errorf("Authorize(%q): %v", tt.newPW, err)
				}
				return
			}
			if !errors.Is(err, ErrWeakPassword) {
				t.Fatalf("SetPassword(%q): %v, want ErrWeakPassword", tt.newPW, err)
			}
			if s, _ := p.Status(ctx); s.Failures != 0 {
				t.Errorf("a refused new password spent a try: %d failures", s.Failures)
			}
		})
	}
}

func TestPasswordChange(t *testing.T) {
	ctx := context.Background()
	p := newTestPassword(t, durabletest.NewCrashFS(1))
	if err := p.SetPassword(ctx, "", "first-password"); err != nil {
		t.Fatal(err)
	}
	a, err := p.Authorize(ctx, "first-password")
	if err != nil {
		t.Fatal(err)
	}
	if a.Method != MethodPassword || a.Credential != CredentialPassword || a.At.IsZero() {
		t.Errorf("Authorization = %+v", a)
	}
	if err := p.SetPassword(ctx, "wrong-password", "second-password"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("SetPassword with a wrong old one: %v", err)
	}
	if err := p.SetPassword(ctx, "first-password", "second-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Authorize(ctx, "first-password"); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("the old password after a change: %v, want ErrWrongPassword", err)
	}
	if _, err := p.Authorize(ctx, "second-password"); err != nil {
		t.Errorf("the new password: %v", err)
	}
	var wrong *WrongPasswordError
	_, err = p.Authorize(ctx, strings.Repeat("x", 10*MaxLength))
	if !errors.As(err, &wrong) || wrong.Failures != 1 {
		t.Errorf("an overlong try: %v, want the first failure", err)
	}
}

// TestLockout walks a password through failures, waits and successes on a
// fake clock, rebooting (a new Password on the same files) between some
// steps.
func TestLockout(t *testing.T) {
	const right, wrong = "right-password", "wrong-password"
	type step struct {
		wait   time.Duration // before the try
		reboot bool          // a new Password before the try
		pw     string
		// want: "ok", "wrong" or "locked", with the failures and the wait
		// (from the try) the error reports.
		want     string
		failures int
		locked   time.Duration
	}
	tests := []struct {
		name      string
		freeTries int
		base, max time.Duration
		steps     []step
	}{{
		name: "defaults: 30s, 1m, 2m ... capped at 1h",
		steps: []step{
			{pw: wrong, want: "wrong", failures: 1},
			{pw: wrong, want: "wrong", failures: 2},
			{pw: wrong, want: "wrong", failures: 3, locked: 30 * time.Second},
			{pw: right, want: "locked", failures: 3, locked: 30 * time.Second},
			{wait: 29 * time.Second, pw: right, want: "locked", failures: 3, locked: time.Second},
			{wait: time.Second, pw: wrong, want: "wrong", failures: 4, locked: time.Minute},
			{wait: time.Minute, reboot: true, pw: wrong, want: "wrong", failures: 5, locked: 2 * time.Minute},
			{wait: time.Minute, reboot: true, pw: right, want: "locked", failures: 5, locked: time.Minute},
			{wait: time.Minute, pw: wrong, want: "wrong", failures: 6, locked: 4 * time.Minute},
			{wait: 4 * time.Minute, pw: wrong, want: "wrong", failures: 7, locked: 8 * time.Minute},
			{wait: 8 * time.Minute, pw: wrong, want: "wrong", failures: 8, locked: 16 * time.Minute},
			{wait: 16 * time.Minute, pw: wrong, want: "wrong", failures: 9, locked: 32 * time.Minute},
			{wait: 32 * time.Minute, pw: wrong, want: "wrong", failures: 10, locked: time.Hour},
			{wait: time.Hour, pw: wrong, want: "wrong", failures: 11, locked: time.Hour},
			{wait: time.Hour, reboot: true, pw: right, want: "ok"},
			{pw: wrong, want: "wrong", failures: 1},
		},
	}, {
		name:      "one free try, capped at 2m",
		freeTries: 1, base: time.Minute, max: 2 * time.Minute,
		steps: []step{
			{pw: wrong, want: "wrong", failures: 1, locked: time.Minute},
			{wait: time.Minute, pw: wrong, want: "wrong", failures: 2, locked: 2 * time.Minute},
			{wait: 2 * time.Minute, pw: wrong, want: "wrong", failures: 3, locked: 2 * time.Minute},
			{wait: 2 * time.Minute, pw: right, want: "ok"},
			{pw: right, want: "ok"},
		},
	}, {
		name:      "a success before the lock clears the count",
		freeTries: 3,
		steps: []step{
			{pw: wrong, want: "wrong", failures: 1},
			{pw: wrong, want: "wrong", failures: 2},
			{pw: right, want: "ok"},
			{pw: wrong, want: "wrong", failures: 1},
			{reboot: true, pw: wrong, want: "wrong", failures: 2},
			{reboot: true, pw: wrong, want: "wrong", failures: 3, locked: 30 * time.Second},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				fsys := durabletest.NewCrashFS(1)
				cfg := func(c *PasswordConfig) { c.FreeTries, c.LockBase, c.LockMax = tt.freeTries, tt.base, tt.max }
				p := newTestPassword(t, fsys, cfg)
				if err := p.SetPassword(ctx, "", right); err != nil {
					t.Fatal(err)
				}
				for i, s := range tt.steps {
					time.Sleep(s.wait)
					if s.reboot {
						fsys.Restart(durabletest.LoseUnsynced)
						p = newTestPassword(t, fsys, cfg)
					}
					_, err := p.Authorize(ctx, s.pw)
					var got string
					var failures int
					var until time.Time
					var wrongErr *WrongPasswordError
					var lockedErr *LockedError
					switch {
					case err == nil:
						got = "ok"
					case errors.As(err, &wrongErr):
						got, failures, until = "wrong", wrongErr.Failures, wrongErr.LockedUntil
					case errors.As(err, &lockedErr):
						got, failures, until = "locked", lockedErr.Failures, lockedErr.Until
					default:
						t.Fatalf("step %d: %v", i, err)
					}
					var locked time.Duration
					if !until.IsZero() {
						locked = until.Sub(time.Now())
					}
					if got != s.want || failures != s.failures || locked != s.locked {
						t.Fatalf("step %d: %s, %d failures, locked for %v (%v); want %s, %d, %v",
							i, got, failures, locked, err, s.want, s.failures, s.locked)
					}
					st, err := p.Status(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if st.Failures != s.failures || !st.LockedUntil.Equal(until) {
						t.Fatalf("step %d: Status = %+v, want %d failures locked until %v", i, st, s.failures, until)
					}
				}
			})
		})
	}
}

// TestClockWentBack: a lock recorded far in the future, as after the
// clock was reset, lasts only as long as its failures call for.
func TestClockWentBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		fsys := durabletest.NewCrashFS(1)
		p := newTestPassword(t, fsys)
		if err := p.SetPassword(ctx, "", "right-password"); err != nil {
			t.Fatal(err)
		}
		st, err := p.load()
		if err != nil {
			t.Fatal(err)
		}
		st.Failures, st.LockedUntil = 4, time.Now().AddDate(25, 0, 0)
		if err := p.store(st); err != nil {
			t.Fatal(err)
		}
		want := time.Now().Add(time.Minute)
		if s, err := p.Status(ctx); err != nil || !s.LockedUntil.Equal(want) {
			t.Fatalf("Status = %+v, %v; want locked until %v", s, err, want)
		}
		var locked *LockedError
		if _, err := p.Authorize(ctx, "right-password"); !errors.As(err, &locked) || !locked.Until.Equal(want) {
			t.Fatalf("Authorize: %v, want locked until %v", err, want)
		}
		if st, err := p.load(); err != nil || !st.LockedUntil.Equal(want) {
			t.Fatalf("the shorter lock was not stored: %+v, %v", st, err)
		}
		time.Sleep(time.Minute)
		if _, err := p.Authorize(ctx, "right-password"); err != nil {
			t.Fatalf("Authorize after the wait: %v", err)
		}
	})
}

func TestRehashWithNewParams(t *testing.T) {
	ctx := context.Background()
	fsys := durabletest.NewCrashFS(1)
	p := newTestPassword(t, fsys)
	if err := p.SetPassword(ctx, "", "right-password"); err != nil {
		t.Fatal(err)
	}
	stronger := Params{Time: 2, MemoryKiB: 128, Threads: 2}
	p = newTestPassword(t, fsys, func(c *PasswordConfig) { c.Params = stronger })
	if s, _ := p.Status(ctx); s.Params != fastParams {
		t.Fatalf("params before the rehash: %+v", s.Params)
	}
	if _, err := p.Authorize(ctx, "wrong-password"); !errors.Is(err, ErrWrongPassword) {
		t.Fatal(err)
	}
	if s, _ := p.Status(ctx); s.Params != fastParams {
		t.Fatalf("a wrong password rehashed: %+v", s.Params)
	}
	if _, err := p.Authorize(ctx, "right-password"); err != nil {
		t.Fatal(err)
	}
	if s, _ := p.Status(ctx); s.Params != stronger || s.Failures != 0 {
		t.Fatalf("Status after the rehash: %+v, want params %+v", s, stronger)
	}
	if _, err := p.Authorize(ctx, "right-password"); err != nil {
		t.Fatalf("after the rehash: %v", err)
	}
}

func TestCorruptFile(t *testing.T) {
	valid := func() string {
		fsys := durabletest.NewCrashFS(1)
		p := newTestPassword(t, fsys)
		if err := p.SetPassword(context.Background(), "", "right-password"); err != nil {
			t.Fatal(err)
		}
		b, err := durable.ReadFile(fsys, testPath, maxFileSize, ErrCorrupt)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}()
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"not JSON", "hello"},
		{"truncated", valid[:len(valid)/2]},
		{"unknown field", strings.Replace(valid, `"version"`, `"extra":1,"version"`, 1)},
		{"trailing data", valid + "{}"},
		{"other version", strings.Replace(valid, `"version":1`, `"version":2`, 1)},
		{"other algorithm", strings.Replace(valid, `"argon2id"`, `"argon2i"`, 1)},
		{"huge memory", strings.Replace(valid, `"memory_kib":64`, `"memory_kib":4000000`, 1)},
		{"zero time", strings.Replace(valid, `"time":1`, `"time":0`, 1)},
		{"negative failures", strings.Replace(valid, `"failures":0`, `"failures":-1`, 1)},
		{"no salt", strings.Replace(valid, `"salt"`, `"salt":null,"x"`, 1)},
		{"too large", valid + strings.Repeat(" ", maxFileSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			fsys := durabletest.NewCrashFS(1)
			if err := durable.MkdirAll(fsys, "/maint", 0o700); err != nil {
				t.Fatal(err)
			}
			if err := durable.WriteFile(fsys, testPath, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			p := newTestPassword(t, fsys)
			if _, err := p.Authorize(ctx, "right-password"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Authorize: %v, want ErrCorrupt", err)
			}
			if err := p.SetPassword(ctx, "", "new-password"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("SetPassword: %v, want ErrCorrupt", err)
			}
			if _, err := p.Status(ctx); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Status: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestPasswordCanceled(t *testing.T) {
	fsys := durabletest.NewCrashFS(1)
	p := newTestPassword(t, fsys)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.SetPassword(ctx, "", "right-password"); !errors.Is(err, context.Canceled) {
		t.Errorf("SetPassword: %v", err)
	}
	if _, err := p.Authorize(ctx, "right-password"); !errors.Is(err, context.Canceled) {
		t.Errorf("Authorize: %v", err)
	}
	if _, err := fsys.Stat(testPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a canceled call wrote: %v", err)
	}
}

func TestPasswordConcurrent(t *testing.T) {
	ctx := context.Background()
	p := newTestPassword(t, durabletest.NewCrashFS(1), func(c *PasswordConfig) { c.FreeTries = 100 })
	if err := p.SetPassword(ctx, "", "right-password"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			pw := "right-password"
			if i%2 == 1 {
				pw = "wrong-password"
			}
			_, errs[i] = p.Authorize(ctx, pw)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%2 == 1; errors.Is(err, ErrWrongPassword) != want || (!want && err != nil) {
			t.Errorf("try %d: %v", i, err)
		}
	}
}

// TestPowerCut cuts the power at every write of a try and of a change, and
// checks, after the reboot, that a reported failure was not forgotten, no
// try was free, the password was never lost (a lost file would let anyone
// set a new one), and a reported change stuck.
func TestPowerCut(t *testing.T) {
	const old, newPW, wrong = "old-password", "new-password", "wrong-password"
	type call struct {
		name string
		run  func(p *Password) error
	}
	calls := []call{
		{"wrong try", func(p *Password) error { _, err := p.Authorize(context.Background(), wrong); return err }},
		{"right try", func(p *Password) error { _, err := p.Authorize(context.Background(), old); return err }},
		{"change", func(p *Password) error { return p.SetPassword(context.Background(), old, newPW) }},
		{"rehash", func(p *Password) error {
			p.params = Params{Time: 2, MemoryKiB: 64, Threads: 1}
			_, err := p.Authorize(context.Background(), old)
			return err
		}},
	}
	losses := []durabletest.Loss{durabletest.LoseUnsynced, durabletest.LoseSome, durabletest.LoseAny}
	const before = 2 // failures recorded before the call
	for _, c := range calls {
		for _, loss := range losses {
			t.Run(c.name+"/"+loss.String(), func(t *testing.T) {
				for n := 1; ; n++ {
					fsys := durabletest.NewCrashFS(uint64(n))
					p := newTestPassword(t, fsys, func(c *PasswordConfig) { c.FreeTries = 100 })
					if err := p.SetPassword(context.Background(), "", old); err != nil {
						t.Fatal(err)
					}
					for range before {
						p.Authorize(context.Background(), wrong)
					}
					fsys.Restart(loss) // all of that was synced: it must survive
					p = newTestPassword(t, fsys, func(c *PasswordConfig) { c.FreeTries = 100 })
					fsys.CrashAfter(n)
					err := c.run(p)
					crashed := fsys.Crashed()
					fsys.Restart(loss)
					p = newTestPassword(t, fsys, func(c *PasswordConfig) { c.FreeTries = 100 })
					s, serr := p.Status(context.Background())
					if serr != nil || !s.Set {
						t.Fatalf("crash at write %d: after the reboot Status = %+v, %v\n%s", n, s, serr, strings.Join(fsys.Trace(), "\n"))
					}
					oldOK := s.Failures == 0 || s.Failures == before || s.Failures == before+1
					if c.name == "wrong try" {
						oldOK = s.Failures == before || s.Failures == before+1
					}
					if !oldOK {
						t.Fatalf("crash at write %d: %d failures after the reboot, had %d", n, s.Failures, before)
					}
					if errors.Is(err, ErrWrongPassword) && s.Failures != before+1 {
						t.Fatalf("crash at write %d: a reported failure was forgotten: %d failures", n, s.Failures)
					}
					if err == nil && c.name != "change" && s.Failures != 0 {
						t.Fatalf("crash at write %d: a reported success left %d failures", n, s.Failures)
					}
					_, oldErr := p.Authorize(context.Background(), old)
					_, newErr := p.Authorize(context.Background(), newPW)
					if (oldErr == nil) == (newErr == nil) {
						t.Fatalf("crash at write %d: old password: %v, new: %v; want exactly one", n, oldErr, newErr)
					}
					if c.name == "change" && err == nil && newErr != nil {
						t.Fatalf("crash at write %d: a reported change was lost", n)
					}
					if c.name != "change" && oldErr != nil {
						t.Fatalf("crash at write %d: the password changed: %v", n, oldErr)
					}
					entries, _ := fsys.ReadDir("/maint")
					if len(entries) != 1 {
						t.Fatalf("crash at write %d: temporary files left after two writes: %v", n, entries)
					}
					if !crashed {
						if err != nil && !errors.Is(err, ErrWrongPassword) {
							t.Fatalf("without a crash: %v", err)
						}
						if n < 3 {
							t.Fatalf("only %d writes", n)
						}
						return
					}
				}
			})
		}
	}
}

func TestDelay(t *testing.T) {
	p := newTestPassword(t, durabletest.NewCrashFS(1))
	want := []time.Duration{0, 0, 0, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}
	for i, w := range want {
		if got := p.delay(i); got != w {
			t.Errorf("delay(%d) = %v, want %v", i, got, w)
		}
	}
	for _, n := range []int{11, 100, 1 << 40} {
		if got := p.delay(n); got != time.Hour {
			t.Errorf("delay(%d) = %v, want 1h", n, got)
		}
	}
}
