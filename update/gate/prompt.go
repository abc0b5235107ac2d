package gate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/durable"
	"github.com/upkeephq/upkeep/update"
	"github.com/upkeephq/upkeep/verify"
)

// Prompt defaults and limits: the defaults are those of PromptConfig's
// fields of the same names.
const (
	DefaultMaxDeferrals = 3
	DefaultDeferFor     = time.Hour
	DefaultAskTimeout   = time.Minute
	DefaultNoticeAhead  = 5 * time.Minute
	// NoticeStale is how long after its wait a notice still counts: an
	// install held back longer (a sale started meanwhile) notifies again.
	NoticeStale = 15 * time.Minute
	// maxPromptState bounds the releases a state file remembers.
	maxPromptState = 16
	// maxPromptFile bounds the state file read back.
	maxPromptFile = 64 << 10
)

// Answer is the merchant's answer to the update prompt.
type Answer int

const (
	// AnswerNone: no answer (the prompt timed out or was dismissed). It
	// counts as a deferral, so an unattended terminal installs once its
	// deferrals run out.
	AnswerNone Answer = iota
	// AnswerLater defers the update for PromptConfig.DeferFor.
	AnswerLater
	// AnswerNow lets the update install.
	AnswerNow
)

// String returns "none", "later" or "now".
func (a Answer) String() string {
	switch a {
	case AnswerNone:
		return "none"
	case AnswerLater:
		return "later"
	case AnswerNow:
		return "now"
	}
	return fmt.Sprintf("Answer(%d)", int(a))
}

// PromptRequest is what the merchant is asked about.
type PromptRequest struct {
	// Manifest is the release waiting to install.
	Manifest *verify.Manifest
	// Deferrals is how many times the merchant has deferred it already;
	// Left how many more times they may.
	Deferrals, Left int
	// Deadline is when the release becomes required and installs without
	// asking; the zero time if it has none.
	Deadline time.Time
}

// NoticeRequest is the notice shown before an install ("updating at
// 01:35, the terminal will be unavailable for a few minutes").
type NoticeRequest struct {
	Manifest *verify.Manifest
	// At is when the install will start, if nothing else holds it back.
	At time.Time
	// Required is true when the release installs without the merchant's
	// consent (blocking, past its deadline, or deferred to the limit).
	Required bool
}

// PromptConfig configures [NewPrompt]. Ask is required.
type PromptConfig struct {
	// Ask shows the on-screen confirmation and returns the merchant's
	// answer. It is given a context that ends after AskTimeout, and an
	// answer not given by then is AnswerNone.
	Ask func(ctx context.Context, req PromptRequest) (Answer, error)
	// AskTimeout bounds how long a prompt waits for an answer; 0 means
	// [DefaultAskTimeout].
	AskTimeout time.Duration
	// MaxDeferrals is how many times the merchant may defer a release; 0
	// means [DefaultMaxDeferrals], negative means never (releases install
	// without asking, after the notice).
	MaxDeferrals int
	// DeferFor is how long a deferral lasts (never past the deadline); 0
	// means [DefaultDeferFor].
	DeferFor time.Duration
	// Notice, if set, tells the customers ahead of an install: once the
	// update may go, the gate calls Notice, then holds the install back
	// for NoticeAhead. It is called for required releases too. An error is
	// returned as the gate's, and it is called again at the next ask.
	Notice func(ctx context.Context, n NoticeRequest) error
	// NoticeAhead is how long before installing Notice is called; 0 means
	// [DefaultNoticeAhead].
	NoticeAhead time.Duration
	// StatePath, if set, is a small JSON file in which deferral counts
	// survive a reboot (written atomically); its directory must exist. ""
	// keeps them in memory: a reboot gives the merchant their deferrals
	// back.
	StatePath string
	// FS is the filesystem StatePath is on; nil means durable.OS.
	FS durable.FS
	// Logger receives warnings about the state file; nil discards.
	Logger *slog.Logger
}

// NewPrompt returns the merchant-prompt gate, for installs: it asks the
// merchant (Ask) whether to install now, and lets them defer a release up
// to MaxDeferrals times, DeferFor each, never past the offer's deadline.
// A release is required, and installs without asking, when its policy is
// Blocking, once its deadline has passed, or once its deferrals have run
// out. Either way, Notice is then sent and the install waits NoticeAhead:
// "customers notified; installing in 5m (required: deadline passed)".
//
// Put it after the other gates with [Then], so that the merchant is asked
// only when the update could otherwise start.
func NewPrompt(cfg PromptConfig) (update.Gate, error) {
	if cfg.Ask == nil {
		return nil, invalid("prompt: Ask is required")
	}
	if err := checkDurations("prompt", map[string]time.Duration{
		"AskTimeout": cfg.AskTimeout, "DeferFor": cfg.DeferFor, "NoticeAhead": cfg.NoticeAhead,
	}); err != nil {
		return nil, err
	}
	p := &prompt{
		cfg:         cfg,
		askTimeout:  or(cfg.AskTimeout, DefaultAskTimeout),
		maxDefer:    or(cfg.MaxDeferrals, DefaultMaxDeferrals),
		deferFor:    or(cfg.DeferFor, DefaultDeferFor),
		noticeAhead: or(cfg.NoticeAhead, DefaultNoticeAhead),
		fs:          durable.Or(cfg.FS),
		log:         cfg.Logger,
		releases:    map[string]*promptState{},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.load()
	return p.gate, nil
}

type prompt struct {
	cfg         PromptConfig
	askTimeout  time.Duration
	maxDefer    int
	deferFor    time.Duration
	noticeAhead time.Duration
	fs          durable.FS
	log         *slog.Logger

	mu       sync.Mutex
	releases map[string]*promptState
}

// promptState is what the gate knows of one release.
type promptState struct {
	Deferrals int       `json:"deferrals"`
	NextAsk   time.Time `json:"next_ask,omitzero"`
	Updated   time.Time `json:"updated"`

	confirmed bool      // the merchant answered now
	noticeAt  time.Time // when Notice was last called
}

type promptFile struct {
	Version  int                     `json:"version"`
	Releases map[string]*promptState `json:"releases"`
}

func (p *prompt) gate(ctx context.Context, req update.GateRequest) error {
	if req.Stage != update.StageInstall {
		return nil
	}
	if req.Manifest == nil {
		return ErrNoManifest
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	id := req.Manifest.ID()
	s := p.releases[id]
	if s == nil {
		s = &promptState{Updated: now}
		p.releases[id] = s
		p.prune(id)
	}
	deadline := req.Policy.Deadline
	required := ""
	switch {
	case req.Policy.Blocking:
		required = "blocking release"
	case !deadline.IsZero() && !now.Before(deadline):
		required = "deadline passed"
	case p.maxDefer < 0:
		required = "deferral not allowed"
	case s.Deferrals >= p.maxDefer && !now.Before(s.NextAsk):
		required = fmt.Sprintf("deferred %s, the limit", plural(s.Deferrals, "time"))
	}
	if limit := now.Add(p.deferFor); s.NextAsk.After(limit) {
		// Saved while the clock ran ahead (an RTC set wrong, then fixed):
		// a deferral never lasts longer than DeferFor from now.
		s.NextAsk = limit
	}
	if required == "" && !s.confirmed {
		if now.Before(s.NextAsk) {
			wait := s.NextAsk.Sub(now)
			if s.Deferrals >= p.maxDefer {
				return notNow(req, wait, "the merchant deferred the update (%d of %d deferrals); it becomes required in %s",
					s.Deferrals, p.maxDefer, formatDuration(wait))
			}
			return notNow(req, wait, "the merchant deferred the update (%d of %d deferrals); asking again in %s",
				s.Deferrals, p.maxDefer, formatDuration(wait))
		}
		actx, cancel := context.WithTimeout(ctx, p.askTimeout)
		ans, err := p.cfg.Ask(actx, PromptRequest{Manifest: req.Manifest, Deferrals: s.Deferrals,
			Left: p.maxDefer - s.Deferrals, Deadline: deadline})
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		var askErr error
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && timedOut:
			ans = AnswerNone
		case err != nil:
			// A prompt that cannot be shown counts as no answer: were it an
			// error, a broken screen would hold a release back for ever.
			ans, askErr = AnswerNone, err
		}
		switch ans {
		case AnswerNow:
			s.confirmed = true
		case AnswerLater, AnswerNone:
			s.Deferrals++
			next := now.Add(p.deferFor)
			if !deadline.IsZero() && deadline.Before(next) {
				next = deadline
			}
			s.NextAsk, s.Updated = next, now
			p.save()
			what := "the merchant chose later"
			switch {
			case askErr != nil:
				what = "the update prompt failed: " + askErr.Error()
			case ans == AnswerNone:
				what = "no answer to the update prompt"
			}
			wait := next.Sub(now)
			if s.Deferrals >= p.maxDefer {
				return notNow(req, wait, "%s (%d of %d deferrals); the update becomes required in %s",
					what, s.Deferrals, p.maxDefer, formatDuration(wait))
			}
			return notNow(req, wait, "%s (%d of %d deferrals); asking again in %s", what, s.Deferrals, p.maxDefer, formatDuration(wait))
		default:
			return fmt.Errorf("gate: prompt: Ask returned an unknown answer %d", int(ans))
		}
	}
	if p.cfg.Notice == nil {
		return nil
	}
	why := "the merchant agreed"
	if required != "" {
		why = "required: " + required
	}
	if s.noticeAt.IsZero() || now.Sub(s.noticeAt) > p.noticeAhead+NoticeStale {
		nctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := p.cfg.Notice(nctx, NoticeRequest{Manifest: req.Manifest, At: now.Add(p.noticeAhead), Required: required != ""})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("gate: prompt: notifying customers: %w", err)
		}
		s.noticeAt = now
	}
	if wait := s.noticeAt.Add(p.noticeAhead).Sub(now); wait > 0 {
		return notNow(req, wait, "customers notified; installing in %s (%s)", formatDuration(wait), why)
	}
	return nil
}

// load reads the deferral counts kept in StatePath. A file that cannot be
// read is logged and ignored: the merchant gets deferrals back, which
// delays an update but never forces one.
func (p *prompt) load() {
	if p.cfg.StatePath == "" {
		return
	}
	data, err := durable.ReadFile(p.fs, p.cfg.StatePath, maxPromptFile, errStateTooLarge)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var f promptFile
	if err == nil {
		err = json.Unmarshal(data, &f)
	}
	if err == nil && f.Version != 1 {
		err = fmt.Errorf("version %d, want 1", f.Version)
	}
	if err != nil {
		p.log.Warn("gate: prompt state unreadable; starting afresh", "path", p.cfg.StatePath, "err", err)
		return
	}
	for id, s := range f.Releases {
		if s != nil && s.Deferrals >= 0 {
			p.releases[id] = s
		}
	}
}

var errStateTooLarge = errors.New("gate: prompt state file too large")

// prune forgets all but keep and the most recently updated releases.
func (p *prompt) prune(keep string) {
	if len(p.releases) <= maxPromptState {
		return
	}
	ids := slices.DeleteFunc(slices.Collect(maps.Keys(p.releases)), func(id string) bool { return id == keep })
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(p.releases[b].Updated.Compare(p.releases[a].Updated), strings.Compare(a, b))
	})
	for _, id := range ids[maxPromptState-1:] {
		delete(p.releases, id)
	}
}

// save writes the deferral counts to StatePath. A failure is logged: the
// counts still hold in memory.
func (p *prompt) save() {
	if p.cfg.StatePath == "" {
		return
	}
	data, err := json.Marshal(promptFile{Version: 1, Releases: p.releases})
	if err == nil {
		err = durable.WriteFile(p.fs, p.cfg.StatePath, data, 0o600)
	}
	if err != nil {
		p.log.Warn("gate: saving the prompt state failed", "path", p.cfg.StatePath, "err", err)
	}
}
