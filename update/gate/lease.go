package gate

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upkeephq/upkeep/update"
)

// Lease defaults and limits.
const (
	// DefaultLeaseTTL is a lease's time to live when Begin or Renew is
	// given 0.
	DefaultLeaseTTL = 2 * time.Minute
	// MaxLeaseTTL bounds a lease's time to live: a holder that dies holds
	// updates back for at most this long.
	MaxLeaseTTL = 15 * time.Minute
	// DefaultSaleWait is SaleConfig.MaxWait's default.
	DefaultSaleWait = time.Minute
)

// Leases is the register of work an update must not interrupt: a sale, a
// settlement, a sign-in. The payment app takes a lease when a transaction
// starts ([Leases.Begin]), renews it while the transaction runs, and ends
// it when the transaction is done; the gate from [NewSale] holds installs
// back while any lease is live. A lease that is never ended (its holder
// crashed) expires by itself at the end of its time to live, so a dead
// app cannot hold updates back for ever.
//
// Leases also remembers when the last lease ended ([Leases.LastActive]),
// the terminal's last activity, for [NewIdle].
//
// The zero value is ready to use. A Leases is safe for concurrent use and
// must not be copied after first use.
type Leases struct {
	mu    sync.Mutex
	next  uint64
	live  map[uint64]*lease
	ended time.Time // when the last lease ended or expired
	// updating is why new leases are refused: an install is under way.
	updating string
}

type lease struct {
	holder string
	until  time.Time
}

// Lease is one holder's claim on the terminal, from [Leases.Begin].
// Its methods are safe for concurrent use.
type Lease struct {
	ls     *Leases
	id     uint64
	holder string
}

// Begin takes a lease for holder (a name an operator recognises, such as
// "pos-app": it appears in the gate's reason) that lives for ttl unless
// renewed or ended; ttl 0 means [DefaultLeaseTTL]. It fails for an empty
// holder or a ttl outside 0..[MaxLeaseTTL].
func (ls *Leases) Begin(holder string, ttl time.Duration) (*Lease, error) {
	ttl, err := leaseTTL(ttl)
	if err != nil {
		return nil, err
	}
	if holder == "" || len(holder) > 64 {
		return nil, fmt.Errorf("gate: lease holder must be 1 to 64 bytes, not %d", len(holder))
	}
	now := time.Now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.updating != "" {
		return nil, fmt.Errorf("%w: %s", ErrUpdating, ls.updating)
	}
	ls.sweep(now)
	if ls.live == nil {
		ls.live = map[uint64]*lease{}
	}
	ls.next++
	ls.live[ls.next] = &lease{holder: holder, until: now.Add(ttl)}
	return &Lease{ls: ls, id: ls.next, holder: holder}, nil
}

func leaseTTL(ttl time.Duration) (time.Duration, error) {
	if ttl < 0 || ttl > MaxLeaseTTL {
		return 0, fmt.Errorf("gate: lease ttl %s outside 0..%s", ttl, MaxLeaseTTL)
	}
	return or(ttl, DefaultLeaseTTL), nil
}

// Holder returns the name the lease was taken for.
func (l *Lease) Holder() string { return l.holder }

// Renew extends the lease to live ttl from now (0 means
// [DefaultLeaseTTL]). It returns [ErrLeaseEnded] if the lease was ended or
// has expired: an update may have started meanwhile, and the holder must
// not assume it was protected.
func (l *Lease) Renew(ttl time.Duration) error {
	ttl, err := leaseTTL(ttl)
	if err != nil {
		return err
	}
	now := time.Now()
	l.ls.mu.Lock()
	defer l.ls.mu.Unlock()
	l.ls.sweep(now)
	x, ok := l.ls.live[l.id]
	if !ok {
		return ErrLeaseEnded
	}
	x.until = now.Add(ttl)
	return nil
}

// End releases the lease and records now as the terminal's last
// activity. Ending a lease that ended or expired does nothing.
func (l *Lease) End() {
	now := time.Now()
	l.ls.mu.Lock()
	defer l.ls.mu.Unlock()
	l.ls.sweep(now)
	if _, ok := l.ls.live[l.id]; ok {
		delete(l.ls.live, l.id)
		l.ls.ended = later(l.ls.ended, now)
	}
}

// SetUpdating refuses new leases while an install is under way: Begin
// returns [ErrUpdating] with reason, so the payment app can say "updating,
// please wait" instead of starting a sale the install would cut short. ""
// accepts leases again. [ObserveInstalls] sets it from the agent's status.
func (ls *Leases) SetUpdating(reason string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.updating = reason
}

// ObserveInstalls returns an update.Config.Observe function that refuses
// new leases from the moment an install begins (the backup before it)
// until the update has committed or rolled back, then calls next (if not
// nil) with the same status. The install gate ([NewSale]) and this close
// the door from both sides: no install starts during a sale, and no sale
// starts during an install. What remains is the instant between the
// gate's go and the backup's start, in which a sale that begins is cut
// short.
//
// An agent that starts after a power cut in the middle of an install
// resumes it without a state change to observe: call the returned function
// once with the agent's Status after update.New, before taking sales.
// Health checks run while leases are refused: a check must not need one.
func (ls *Leases) ObserveInstalls(next func(update.Status)) func(update.Status) {
	return func(st update.Status) {
		switch st.State {
		case update.StateBackingUp, update.StateInstalling, update.StateMigrating, update.StateVerifying,
			update.StateCommitting, update.StateRollingBack:
			ls.SetUpdating(fmt.Sprintf("%s is %s", st.Release, st.State))
		default:
			ls.SetUpdating("")
		}
		if next != nil {
			next(st)
		}
	}
}

// LastActive returns when the last lease ended (or expired), or the zero
// time if none has yet. While a lease is live the terminal is active now,
// which [Leases.Held] tells.
func (ls *Leases) LastActive() time.Time {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.sweep(time.Now())
	return ls.ended
}

// LeaseInfo describes a live lease.
type LeaseInfo struct {
	Holder string
	// Left is how long the lease lives unless renewed or ended.
	Left time.Duration
}

// Held returns the live leases, longest-lived first (ties by holder).
func (ls *Leases) Held() []LeaseInfo {
	now := time.Now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.sweep(now)
	held := make([]LeaseInfo, 0, len(ls.live))
	for _, x := range ls.live {
		held = append(held, LeaseInfo{Holder: x.holder, Left: x.until.Sub(now)})
	}
	slices.SortFunc(held, func(a, b LeaseInfo) int {
		return cmp.Or(cmp.Compare(b.Left, a.Left), strings.Compare(a.Holder, b.Holder))
	})
	return held
}

// sweep forgets expired leases, recording their expiry as activity.
func (ls *Leases) sweep(now time.Time) {
	for id, x := range ls.live {
		if !now.Before(x.until) {
			delete(ls.live, id)
			ls.ended = later(ls.ended, x.until)
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// describeLeases writes the live leases for a reason:
// "lease held by pos-app for 40s more" or
// "leases held by pos-app (40s more), pinpad (10s more)".
func describeLeases(held []LeaseInfo) string {
	if len(held) == 1 {
		return fmt.Sprintf("lease held by %s for %s more", held[0].Holder, formatDuration(held[0].Left))
	}
	parts := make([]string, len(held))
	for i, h := range held {
		parts[i] = fmt.Sprintf("%s (%s more)", h.Holder, formatDuration(h.Left))
	}
	return "leases held by " + strings.Join(parts, ", ")
}

// SaleConfig configures [NewSale]. Leases is required.
type SaleConfig struct {
	// Leases is the register the payment app takes its leases in.
	Leases *Leases
	// MaxWait caps the wait the gate asks for while a lease is live: the
	// longest lease's remaining time, at most MaxWait, so an update starts
	// soon after a sale ends early. 0 means [DefaultSaleWait].
	MaxWait time.Duration
	// Stages are the stages the gate holds back; nil means
	// update.StageInstall only (a download does not disturb a sale).
	Stages []update.Stage
}

// NewSale returns the gate that never lets an install start while a lease
// is live: "in a sale: lease held by pos-app for 40s more".
func NewSale(cfg SaleConfig) (update.Gate, error) {
	if cfg.Leases == nil {
		return nil, invalid("sale: Leases is required")
	}
	if err := checkDurations("sale", map[string]time.Duration{"MaxWait": cfg.MaxWait}); err != nil {
		return nil, err
	}
	st, err := stagesOr(cfg.Stages, update.StageInstall)
	if err != nil {
		return nil, err
	}
	maxWait := or(cfg.MaxWait, DefaultSaleWait)
	return func(ctx context.Context, req update.GateRequest) error {
		if !st.has(req.Stage) {
			return nil
		}
		held := cfg.Leases.Held()
		if len(held) == 0 {
			return nil
		}
		return notNow(req, min(held[0].Left, maxWait), "in a sale: %s", describeLeases(held))
	}, nil
}
