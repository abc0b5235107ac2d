package gate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// merchant is a fake terminal screen: it answers prompts from a script
// and logs what it was asked and shown.
type merchant struct {
	answers []Answer // the next answers; AnswerNone when empty
	hang    bool     // never answer: wait for the prompt to time out
	askErr  error
	asked   []PromptRequest
	notices []NoticeRequest
	noticed error
}

func (m *merchant) Ask(ctx context.Context, req PromptRequest) (Answer, error) {
	m.asked = append(m.asked, req)
	if m.hang {
		<-ctx.Done()
		return AnswerNone, ctx.Err()
	}
	if m.askErr != nil {
		return AnswerNone, m.askErr
	}
	if len(m.answers) == 0 {
		return AnswerNone, nil
	}
	a := m.answers[0]
	m.answers = m.answers[1:]
	return a, nil
}

func (m *merchant) Notice(_ context.Context, n NoticeRequest) error {
	m.notices = append(m.notices, n)
	return m.noticed
}

func TestPromptDeferralsRunOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := &merchant{answers: []Answer{AnswerLater, AnswerLater, AnswerLater}}
		g, err := NewPrompt(PromptConfig{Ask: mc.Ask, Notice: mc.Notice})
		if err != nil {
			t.Fatal(err)
		}
		m := manifest("payment-app@2.1.0", 1)
		wantGo(t, ask(t, g, download(m)))
		wantWait(t, ask(t, g, install(m)), time.Hour, "the merchant chose later (1 of 3 deferrals); asking again in 1h")
		time.Sleep(20 * time.Minute)
		wantWait(t, ask(t, g, install(m)), 40*time.Minute, "the merchant deferred the update (1 of 3 deferrals); asking again in 40m")
		time.Sleep(40 * time.Minute)
		wantWait(t, ask(t, g, install(m)), time.Hour, "the merchant chose later (2 of 3 deferrals); asking again in 1h")
		time.Sleep(time.Hour)
		wantWait(t, ask(t, g, install(m)), time.Hour, "the merchant chose later (3 of 3 deferrals); the update becomes required in 1h")
		time.Sleep(59 * time.Minute)
		wantWait(t, ask(t, g, install(m)), time.Minute, "the merchant deferred the update (3 of 3 deferrals); it becomes required in 1m")
		time.Sleep(time.Minute)
		// Required now: not asked, but customers are told first.
		wantWait(t, ask(t, g, install(m)), 5*time.Minute, "customers notified; installing in 5m (required: deferred 3 times, the limit)")
		time.Sleep(3 * time.Minute)
		wantWait(t, ask(t, g, install(m)), 2*time.Minute, "customers notified; installing in 2m (required: deferred 3 times, the limit)")
		time.Sleep(2 * time.Minute)
		wantGo(t, ask(t, g, install(m)))

		if len(mc.asked) != 3 {
			t.Fatalf("asked %d times, want 3", len(mc.asked))
		}
		for i, req := range mc.asked {
			if req.Deferrals != i || req.Left != 3-i || req.Manifest != m || !req.Deadline.IsZero() {
				t.Errorf("prompt %d: %+v, want %d deferrals, %d left", i, req, i, 3-i)
			}
		}
		if len(mc.notices) != 1 || !mc.notices[0].Required || !mc.notices[0].At.Equal(time.Now()) {
			t.Errorf("notices %+v, want one, required, for now", mc.notices)
		}
	})
}

func TestPromptAnswers(t *testing.T) {
	deadline := time.Date(2000, 1, 1, 0, 30, 0, 0, time.UTC) // 30 minutes into the bubble
	for _, tc := range []struct {
		name    string
		cfg     PromptConfig
		mc      *merchant
		policy  func(*update.GateRequest)
		want    []string // the gate's answers, one per ask after the previous wait; "" is go
		asked   int
		notices int
	}{
		{
			name: "now", mc: &merchant{answers: []Answer{AnswerNow}},
			want:  []string{"customers notified; installing in 5m (the merchant agreed)", ""},
			asked: 1, notices: 1,
		},
		{
			name: "now without notice", mc: &merchant{answers: []Answer{AnswerNow}}, cfg: PromptConfig{Notice: nil},
			want: []string{""}, asked: 1,
		},
		{
			name: "blocking", mc: &merchant{}, policy: func(r *update.GateRequest) { r.Policy.Blocking = true },
			want:    []string{"customers notified; installing in 5m (required: blocking release)", ""},
			notices: 1,
		},
		{
			name: "deferral cut short by the deadline", mc: &merchant{answers: []Answer{AnswerLater}},
			policy: func(r *update.GateRequest) { r.Policy.Deadline = deadline },
			want: []string{
				"the merchant chose later (1 of 3 deferrals); asking again in 30m",
				"customers notified; installing in 5m (required: deadline passed)", "",
			},
			asked: 1, notices: 1,
		},
		{
			name: "no answer", mc: &merchant{}, cfg: PromptConfig{MaxDeferrals: 1, NoticeAhead: time.Minute},
			want: []string{
				"no answer to the update prompt (1 of 1 deferrals); the update becomes required in 1h",
				"customers notified; installing in 1m (required: deferred 1 time, the limit)", "",
			},
			asked: 1, notices: 1,
		},
		{
			name: "the prompt times out", mc: &merchant{hang: true}, cfg: PromptConfig{AskTimeout: 30 * time.Second, DeferFor: 10 * time.Minute},
			want: []string{
				"no answer to the update prompt (1 of 3 deferrals); asking again in 10m",
				"no answer to the update prompt (2 of 3 deferrals); asking again in 10m",
			},
			asked: 2,
		},
		{
			name: "no deferrals allowed", mc: &merchant{}, cfg: PromptConfig{MaxDeferrals: -1},
			want:    []string{"customers notified; installing in 5m (required: deferral not allowed)", ""},
			notices: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := tc.cfg
				cfg.Ask = tc.mc.Ask
				if tc.name != "now without notice" {
					cfg.Notice = tc.mc.Notice
				}
				g, err := NewPrompt(cfg)
				if err != nil {
					t.Fatal(err)
				}
				req := install(manifest("payment-app@2.1.0", 1))
				if tc.policy != nil {
					tc.policy(&req)
				}
				for i, want := range tc.want {
					a := ask(t, g, req)
					if a.Err != nil || a.Go != (want == "") || a.Reason != want {
						t.Fatalf("ask %d: %+v, want %q", i, a, want)
					}
					time.Sleep(a.After)
				}
				if len(tc.mc.asked) != tc.asked || len(tc.mc.notices) != tc.notices {
					t.Errorf("asked %d times and noticed %d, want %d and %d", len(tc.mc.asked), len(tc.mc.notices), tc.asked, tc.notices)
				}
			})
		})
	}
}

func TestPromptNoticeGoesStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := &merchant{answers: []Answer{AnswerNow}}
		g, _ := NewPrompt(PromptConfig{Ask: mc.Ask, Notice: mc.Notice})
		m := manifest("payment-app@2.1.0", 1)
		wantWait(t, ask(t, g, install(m)), 5*time.Minute, "customers notified; installing in 5m (the merchant agreed)")
		// A sale held the install back (another gate) for an hour: the
		// customers are told again. The merchant is not asked again.
		time.Sleep(time.Hour)
		wantWait(t, ask(t, g, install(m)), 5*time.Minute, "customers notified; installing in 5m (the merchant agreed)")
		time.Sleep(5 * time.Minute)
		wantGo(t, ask(t, g, install(m)))
		if len(mc.asked) != 1 || len(mc.notices) != 2 {
			t.Errorf("asked %d times, noticed %d; want 1 and 2", len(mc.asked), len(mc.notices))
		}
	})
}

func TestPromptPerRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc := &merchant{answers: []Answer{AnswerLater, AnswerNow}}
		g, _ := NewPrompt(PromptConfig{Ask: mc.Ask})
		wantWait(t, ask(t, g, install(manifest("payment-app@2.1.0", 1))), time.Hour, "the merchant chose later (1 of 3 deferrals); asking again in 1h")
		wantGo(t, ask(t, g, install(manifest("payment-app@2.1.1", 1))))
		if mc.asked[1].Deferrals != 0 {
			t.Errorf("a new release starts with %d deferrals", mc.asked[1].Deferrals)
		}
	})
}

func TestPromptErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := manifest("payment-app@2.1.0", 1)
		mc := &merchant{askErr: errors.New("screen locked by the payment app")}
		g, _ := NewPrompt(PromptConfig{Ask: mc.Ask, Notice: mc.Notice})
		// A prompt that cannot be shown counts as a deferral, saying why:
		// a broken screen must not hold a release back for ever.
		wantWait(t, ask(t, g, install(m)), time.Hour,
			"the update prompt failed: screen locked by the payment app (1 of 3 deferrals); asking again in 1h")
		for range 2 {
			time.Sleep(time.Hour)
			ask(t, g, install(m))
		}
		time.Sleep(time.Hour)
		wantWait(t, ask(t, g, install(m)), 5*time.Minute, "customers notified; installing in 5m (required: deferred 3 times, the limit)")
		mc = &merchant{answers: []Answer{Answer(7)}}
		g, _ = NewPrompt(PromptConfig{Ask: mc.Ask})
		if a := ask(t, g, install(m)); a.Err == nil {
			t.Errorf("gate said %+v for an unknown answer, want an error", a)
		}
		mc = &merchant{answers: []Answer{AnswerNow}, noticed: errors.New("display off")}
		g, _ = NewPrompt(PromptConfig{Ask: mc.Ask, Notice: mc.Notice})
		if a := ask(t, g, install(m)); !errors.Is(a.Err, mc.noticed) {
			t.Errorf("gate said %+v, want Notice's error", a)
		}
		mc.noticed = nil
		wantWait(t, ask(t, g, install(m)), 5*time.Minute, "customers notified; installing in 5m (the merchant agreed)")
		if a := ask(t, g, install(nil)); !errors.Is(a.Err, ErrNoManifest) {
			t.Errorf("gate said %+v without a manifest", a)
		}
	})
	for _, cfg := range []PromptConfig{
		{}, {Ask: (&merchant{}).Ask, DeferFor: -1}, {Ask: (&merchant{}).Ask, AskTimeout: -1}, {Ask: (&merchant{}).Ask, NoticeAhead: -1},
	} {
		if _, err := NewPrompt(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewPrompt(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if AnswerNone.String() != "none" || AnswerLater.String() != "later" || AnswerNow.String() != "now" || Answer(9).String() != "Answer(9)" {
		t.Error("Answer.String")
	}
}

// TestPromptStateSurvivesReboot defers twice, reboots (a new gate on the
// same state file), and finds the count and the next ask kept.
func TestPromptStateSurvivesReboot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "prompt.json")
		m := manifest("payment-app@2.1.0", 1)
		mc := &merchant{answers: []Answer{AnswerLater, AnswerLater}}
		g, err := NewPrompt(PromptConfig{Ask: mc.Ask, StatePath: path})
		if err != nil {
			t.Fatal(err)
		}
		wantWait(t, ask(t, g, install(m)), time.Hour, "the merchant chose later (1 of 3 deferrals); asking again in 1h")
		time.Sleep(time.Hour)
		wantWait(t, ask(t, g, install(m)), time.Hour, "the merchant chose later (2 of 3 deferrals); asking again in 1h")
		time.Sleep(10 * time.Minute)

		mc = &merchant{answers: []Answer{AnswerLater}}
		g, err = NewPrompt(PromptConfig{Ask: mc.Ask, StatePath: path})
		if err != nil {
			t.Fatal(err)
		}
		wantWait(t, ask(t, g, install(m)), 50*time.Minute, "the merchant deferred the update (2 of 3 deferrals); asking again in 50m")
		time.Sleep(50 * time.Minute)
		wantWait(t, ask(t, g, install(m)), time.Hour, "the merchant chose later (3 of 3 deferrals); the update becomes required in 1h")
		if len(mc.asked) != 1 || mc.asked[0].Deferrals != 2 {
			t.Errorf("after the reboot asked %+v, want once with 2 deferrals", mc.asked)
		}
	})
}

func TestPromptStateFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		m := manifest("payment-app@2.1.0", 1)
		for _, content := range []string{"{not json", `{"version":2,"releases":{}}`, string(make([]byte, maxPromptFile+1))} {
			path := filepath.Join(dir, "prompt.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			mc := &merchant{answers: []Answer{AnswerLater}}
			g, err := NewPrompt(PromptConfig{Ask: mc.Ask, StatePath: path})
			if err != nil {
				t.Fatal(err)
			}
			// An unreadable file is set aside: the merchant starts afresh.
			wantWait(t, ask(t, g, install(m)), time.Hour, "the merchant chose later (1 of 3 deferrals); asking again in 1h")
		}

		// Only the most recent releases are remembered.
		path := filepath.Join(dir, "many.json")
		mc := &merchant{}
		g, _ := NewPrompt(PromptConfig{Ask: mc.Ask, StatePath: path})
		for i := range maxPromptState + 4 {
			ask(t, g, install(manifest("app@1.0."+string(rune('a'+i)), 1)))
			time.Sleep(time.Second)
		}
		g, _ = NewPrompt(PromptConfig{Ask: mc.Ask, StatePath: path})
		first, last := manifest("app@1.0.a", 1), manifest("app@1.0."+string(rune('a'+maxPromptState+3)), 1)
		if a := ask(t, g, install(last)); a.Reason == "" || a.Reason[:26] != "the merchant deferred the " {
			t.Errorf("the last release forgot: %+v", a)
		}
		if a := ask(t, g, install(first)); a.Reason != "no answer to the update prompt (1 of 3 deferrals); asking again in 1h" {
			t.Errorf("the first release remembered: %+v", a)
		}
	})
}

// TestPromptClockRanAhead: a deferral saved while the clock ran years ahead
// lasts no longer than DeferFor once the clock is right again.
func TestPromptClockRanAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "prompt.json")
		m := manifest("payment-app@2.1.0", 1)
		state := fmt.Sprintf(`{"version":1,"releases":{%q:{"deferrals":1,"next_ask":%q,"updated":%q}}}`,
			m.ID(), time.Now().AddDate(10, 0, 0).Format(time.RFC3339), time.Now().Format(time.RFC3339))
		if err := os.WriteFile(path, []byte(state), 0o600); err != nil {
			t.Fatal(err)
		}
		g, err := NewPrompt(PromptConfig{Ask: (&merchant{answers: []Answer{AnswerNow}}).Ask, StatePath: path})
		if err != nil {
			t.Fatal(err)
		}
		wantWait(t, ask(t, g, install(m)), time.Hour, "the merchant deferred the update (1 of 3 deferrals); asking again in 1h")
	})
}
