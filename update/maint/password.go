package maint

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/upkeephq/upkeep/durable"
)

// The defaults of [Params] and [PasswordConfig].
const (
	// DefaultTime is argon2id's default number of passes.
	DefaultTime = 1
	// DefaultMemoryKiB is argon2id's default memory, 64 MiB. A terminal
	// with little RAM should lower it (and may raise Time to compensate):
	// the hash needs the whole of it at once, at every try.
	DefaultMemoryKiB = 64 * 1024
	// DefaultThreads is argon2id's default parallelism.
	DefaultThreads = 2
	// DefaultMinLength is the shortest password, in characters, that
	// SetPassword accepts by default.
	DefaultMinLength = 8
	// MaxLength is the longest password, in bytes, that SetPassword
	// accepts. Longer tries are refused as wrong without being hashed.
	MaxLength = 128
	// DefaultFreeTries is how many tries may fail in a row, by default,
	// before each further one has to wait.
	DefaultFreeTries = 3
	// DefaultLockBase is the first wait, by default; it doubles with each
	// further failure.
	DefaultLockBase = 30 * time.Second
	// DefaultLockMax caps the wait by default.
	DefaultLockMax = time.Hour
)

// The bounds a stored hash's parameters must keep, so that a tampered or
// corrupt file cannot make a try take all of a terminal's memory or time.
const (
	maxTime      = 64
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxThreads   = 64
	maxLockMax   = 30 * 24 * time.Hour
	keyLen       = 32
	saltLen      = 16
	maxFileSize  = 4 << 10
	fileVersion  = 1
	algorithm    = "argon2id"
)

// Params are the costs of argon2id (RFC 9106), the slow hash the password
// is kept as. They are stored beside each hash, so they can be raised
// later: a password is rehashed with the configured Params the next time
// it is entered correctly.
type Params struct {
	// Time is the number of passes over the memory. Zero means
	// [DefaultTime].
	Time uint32
	// MemoryKiB is the memory each hash takes, in KiB. Zero means
	// [DefaultMemoryKiB]; it must be at least 8 × Threads.
	MemoryKiB uint32
	// Threads is the number of lanes hashed in parallel. Zero means
	// [DefaultThreads].
	Threads uint8
}

func (p Params) withDefaults() Params {
	if p.Time == 0 {
		p.Time = DefaultTime
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = DefaultMemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = DefaultThreads
	}
	return p
}

func (p Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2id time %d is outside 1..%d", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("argon2id threads %d is outside 1..%d", p.Threads, maxThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB is outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxMemoryKiB)
	}
	return nil
}

// PasswordConfig configures a [Password].
type PasswordConfig struct {
	// Path is the file the password's hash and the lockout state are kept
	// in. It is replaced atomically at each change; its directory is
	// created if missing. Required.
	Path string
	// FS is the filesystem Path is on. Nil means durable.OS.
	FS durable.FS
	// Params are the costs of new hashes. Zero fields take their defaults.
	Params Params
	// MinLength is the shortest password SetPassword accepts, in
	// characters. Zero means [DefaultMinLength].
	MinLength int
	// FreeTries is how many tries may fail in a row before each further
	// try has to wait. Zero means [DefaultFreeTries].
	FreeTries int
	// LockBase is the wait after FreeTries failures; each further failure
	// doubles it. Zero means [DefaultLockBase].
	LockBase time.Duration
	// LockMax caps the wait. Zero means [DefaultLockMax], or LockBase if
	// that is longer; at most 30 days.
	LockMax time.Duration
	// Logger receives failed tries and lockouts, never a password. Nil
	// discards.
	Logger *slog.Logger
}

// Password is the terminal's master maintenance password (主控维护密码).
// Only a salted argon2id hash of it is kept, in one small file with the
// count of failed tries and the time the next try is allowed, so that a
// reboot resets nothing. There is no factory default: until
// [Password.SetPassword] sets one, [Password.Authorize] returns
// [ErrNotSet].
//
// After FreeTries failures in a row every further try waits: LockBase
// after the FreeTries-th, twice that after the next, and so on up to
// LockMax. A try made while waiting is refused with a [*LockedError]
// without the password being looked at, and is not counted. A success
// clears the count. Each try is recorded as failed, durably, before the
// password is compared, and cleared after it matched: cutting the power
// at the moment a wrong password is detected never earns a free try.
//
// The wait is measured with the wall clock (time.Now), as it must survive
// reboots: a terminal whose clock can be set forward by whoever holds it
// is only as locked as its clock. A clock that goes back (an RTC reset)
// shortens a wait longer than the failures call for to what they call for.
//
// The file is trusted as far as the filesystem is: whoever can write it
// can replace the hash. A file that cannot be parsed returns [ErrCorrupt]
// and is never taken for "not set".
//
// A Password is safe for concurrent use. Two Passwords, in one process or
// two, must not share a file.
type Password struct {
	fsys      durable.FS
	path      string
	params    Params
	minLen    int
	freeTries int
	lockBase  time.Duration
	lockMax   time.Duration
	log       *slog.Logger

	mu      sync.Mutex
	cleaned bool // temporary files a crash left were removed
}

// NewPassword validates cfg and returns a Password kept at cfg.Path. It
// does no I/O.
func NewPassword(cfg PasswordConfig) (*Password, error) {
	p := &Password{
		fsys:      durable.Or(cfg.FS),
		path:      filepath.Clean(cfg.Path),
		params:    cfg.Params.withDefaults(),
		minLen:    cfg.MinLength,
		freeTries: cfg.FreeTries,
		lockBase:  cfg.LockBase,
		lockMax:   cfg.LockMax,
		log:       cfg.Logger,
	}
	if cfg.Path == "" {
		return nil, errors.New("maint: PasswordConfig.Path is required")
	}
	if err := p.params.validate(); err != nil {
		return nil, fmt.Errorf("maint: PasswordConfig.Params: %v", err)
	}
	if p.minLen == 0 {
		p.minLen = DefaultMinLength
	}
	if p.freeTries == 0 {
		p.freeTries = DefaultFreeTries
	}
	if p.lockBase == 0 {
		p.lockBase = DefaultLockBase
	}
	if p.lockMax == 0 {
		p.lockMax = max(DefaultLockMax, p.lockBase)
	}
	switch {
	case p.minLen < 1 || p.minLen > MaxLength:
		return nil, fmt.Errorf("maint: PasswordConfig.MinLength %d is outside 1..%d", p.minLen, MaxLength)
	case p.freeTries < 1:
		return nil, fmt.Errorf("maint: PasswordConfig.FreeTries %d is below 1", p.freeTries)
	case p.lockBase < 0:
		return nil, fmt.Errorf("maint: PasswordConfig.LockBase %v is negative", p.lockBase)
	case p.lockMax < p.lockBase || p.lockMax > maxLockMax:
		return nil, fmt.Errorf("maint: PasswordConfig.LockMax %v is outside LockBase (%v)..%v", p.lockMax, p.lockBase, maxLockMax)
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Status is what a maintenance menu shows before asking for the password.
type Status struct {
	// Set is whether a password is set.
	Set bool
	// Failures is how many tries have failed in a row.
	Failures int
	// LockedUntil is when the next try is allowed; zero when it is
	// allowed now.
	LockedUntil time.Time
	// Params are the costs of the stored hash.
	Params Params
}

// Status reads the password file. A file that is not there is a Status
// with Set false, not an error.
func (p *Password) Status(ctx context.Context) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.load()
	if errors.Is(err, ErrNotSet) {
		return Status{}, nil
	}
	if err != nil {
		return Status{}, err
	}
	s := Status{Set: true, Failures: st.Failures, Params: st.params()}
	now := time.Now()
	if until := p.lockedUntil(st, now); now.Before(until) {
		s.LockedUntil = until
	}
	return s, nil
}

// Authorize checks pw against the maintenance password. It returns
// [ErrNotSet] before one is set, a [*LockedError] while tries must wait,
// and a [*WrongPasswordError] (matching [ErrWrongPassword]) once a wrong
// pw is recorded. The hash takes the memory and time its Params say; ctx
// is looked at only before it starts.
func (p *Password) Authorize(ctx context.Context, pw string) (Authorization, error) {
	if err := ctx.Err(); err != nil {
		return Authorization{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.load()
	if err != nil {
		return Authorization{}, err
	}
	if err := p.try(st, pw); err != nil {
		return Authorization{}, err
	}
	ok := *st
	if st.params() != p.params {
		ok = *p.hash(pw)
		p.log.Info("maint: maintenance password rehashed with new parameters",
			"time", p.params.Time, "memory_kib", p.params.MemoryKiB, "threads", p.params.Threads)
	}
	ok.Failures, ok.LockedUntil = 0, time.Time{}
	if err := p.store(&ok); err != nil {
		return Authorization{}, err
	}
	return Authorization{Method: MethodPassword, Credential: CredentialPassword, At: time.Now()}, nil
}

// SetPassword sets the maintenance password to newPW. The first time, when
// none is set, old must be empty; after that old must be the current
// password, and is tried as [Password.Authorize] tries it, lockout
// included. newPW must have MinLength characters, at most [MaxLength]
// bytes, be valid UTF-8 and differ from old, or [ErrWeakPassword] is
// returned and no try is spent. ctx is looked at only before it starts.
func (p *Password) SetPassword(ctx context.Context, old, newPW string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.policy(old, newPW); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.load()
	switch {
	case errors.Is(err, ErrNotSet):
		if old != "" {
			return err
		}
	case err != nil:
		return err
	default:
		if err := p.try(st, old); err != nil {
			return err
		}
	}
	if err := p.store(p.hash(newPW)); err != nil {
		return err
	}
	if st == nil {
		p.log.Info("maint: maintenance password set")
	} else {
		p.log.Info("maint: maintenance password changed")
	}
	return nil
}

func (p *Password) policy(old, newPW string) error {
	switch n := utf8.RuneCountInString(newPW); {
	case !utf8.ValidString(newPW):
		return fmt.Errorf("%w: not valid UTF-8", ErrWeakPassword)
	case n < p.minLen:
		return fmt.Errorf("%w: %d characters, at least %d needed", ErrWeakPassword, n, p.minLen)
	case len(newPW) > MaxLength:
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrWeakPassword, len(newPW), MaxLength)
	case newPW == old:
		return fmt.Errorf("%w: the same as the old one", ErrWeakPassword)
	}
	return nil
}

// try spends a try of pw on st: refused while locked; recorded as failed,
// durably, before pw is compared, so that no power cut between the
// comparison and the record gives a free try. On a match the caller
// stores the cleared state.
func (p *Password) try(st *state, pw string) error {
	now := time.Now()
	if until := p.lockedUntil(st, now); now.Before(until) {
		if !until.Equal(st.LockedUntil) {
			// The clock went back: keep the shorter wait, so that it ends.
			st.LockedUntil = until
			if err := p.store(st); err != nil {
				return err
			}
		}
		return &LockedError{Until: until, Failures: st.Failures}
	}
	spent := *st
	spent.Failures++
	spent.LockedUntil = time.Time{}
	if d := p.delay(spent.Failures); d > 0 {
		spent.LockedUntil = now.Add(d)
	}
	if err := p.store(&spent); err != nil {
		return err
	}
	if !st.matches(pw) {
		p.log.Warn("maint: wrong maintenance password", "failures", spent.Failures, "locked_until", spent.LockedUntil)
		return &WrongPasswordError{Failures: spent.Failures, LockedUntil: spent.LockedUntil}
	}
	return nil
}

// lockedUntil is when st allows the next try: its LockedUntil, shortened
// to now plus the wait its failures call for should the clock have gone
// back. Zero when it never locked.
func (p *Password) lockedUntil(st *state, now time.Time) time.Time {
	if st.LockedUntil.IsZero() {
		return time.Time{}
	}
	if limit := now.Add(p.delay(st.Failures)); st.LockedUntil.After(limit) {
		return limit
	}
	return st.LockedUntil
}

// delay is the wait after failures tries failed in a row.
func (p *Password) delay(failures int) time.Duration {
	if failures < p.freeTries {
		return 0
	}
	d := p.lockBase
	for i := p.freeTries; i < failures && d < p.lockMax; i++ {
		d *= 2
	}
	return min(d, p.lockMax)
}

// hash returns the state of a newly set pw: a fresh salt, the configured
// Params, no failures.
func (p *Password) hash(pw string) *state {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	st := &state{
		Version:   fileVersion,
		Algorithm: algorithm,
		Argon2:    argon2.Version,
		Time:      p.params.Time,
		MemoryKiB: p.params.MemoryKiB,
		Threads:   p.params.Threads,
		Salt:      salt,
	}
	st.Key = st.derive(pw, keyLen)
	return st
}

func (p *Password) load() (*state, error) {
	b, err := durable.ReadFile(p.fsys, p.path, maxFileSize, ErrCorrupt)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotSet
	}
	if err != nil {
		return nil, err
	}
	st, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p.path, err)
	}
	return st, nil
}

func (p *Password) store(st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p.path)
	if err := durable.MkdirAll(p.fsys, dir, 0o700); err != nil {
		return err
	}
	if !p.cleaned {
		p.removeTemp(dir)
		p.cleaned = true
	}
	return durable.WriteFile(p.fsys, p.path, append(b, '\n'), 0o600)
}

// removeTemp removes the temporary files that a write of the password
// file cut short by a crash left, and only those: the directory may be
// shared.
func (p *Password) removeTemp(dir string) {
	entries, err := p.fsys.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := "." + filepath.Base(p.path) + ".tmp-"
	for _, e := range entries {
		if !e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			durable.Remove(p.fsys, filepath.Join(dir, e.Name()))
		}
	}
}

// state is the password file: the hash, its parameters, and the lockout.
type state struct {
	Version     int       `json:"version"`
	Algorithm   string    `json:"alg"`
	Argon2      int       `json:"argon2_version"`
	Time        uint32    `json:"time"`
	MemoryKiB   uint32    `json:"memory_kib"`
	Threads     uint8     `json:"threads"`
	Salt        []byte    `json:"salt"`
	Key         []byte    `json:"key"`
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

func (st *state) params() Params {
	return Params{Time: st.Time, MemoryKiB: st.MemoryKiB, Threads: st.Threads}
}

func (st *state) derive(pw string, n int) []byte {
	return argon2.IDKey([]byte(pw), st.Salt, st.Time, st.MemoryKiB, st.Threads, uint32(n))
}

// matches compares pw's hash with st's in constant time.
func (st *state) matches(pw string) bool {
	if len(pw) > MaxLength {
		return false
	}
	return subtle.ConstantTimeCompare(st.derive(pw, len(st.Key)), st.Key) == 1
}

// parseState reads a password file, refusing anything it would not write.
func parseState(b []byte) (*state, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var st state
	if err := d.Decode(&st); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil {
		return nil, errors.New("data after the JSON object")
	}
	switch {
	case st.Version != fileVersion:
		return nil, fmt.Errorf("version %d, want %d", st.Version, fileVersion)
	case st.Algorithm != algorithm || st.Argon2 != argon2.Version:
		return nil, fmt.Errorf("algorithm %q version %d, want %s version %d", st.Algorithm, st.Argon2, algorithm, argon2.Version)
	case len(st.Salt) < 16 || len(st.Salt) > 64:
		return nil, fmt.Errorf("salt of %d bytes", len(st.Salt))
	case len(st.Key) < 16 || len(st.Key) > 64:
		return nil, fmt.Errorf("key of %d bytes", len(st.Key))
	case st.Failures < 0:
		return nil, fmt.Errorf("%d failures", st.Failures)
	}
	if err := st.params().validate(); err != nil {
		return nil, err
	}
	return &st, nil
}
