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

// Link is the kind of network link the terminal is on.
type Link string

// Links a Read function reports. Any other value is a link of another
// kind, allowed only where a rule lists it.
const (
	LinkWiFi     Link = "wifi"
	LinkEthernet Link = "ethernet"
	// LinkCellular is metered by default (see NetworkConfig.Metered).
	LinkCellular Link = "cellular"
	// LinkNone means no connection.
	LinkNone Link = "none"
)

// LinkRule allows payloads of MinSize bytes or more only on the links
// listed. Of a config's rules, the one that applies to a payload is the
// one with the largest MinSize not above the payload's size.
type LinkRule struct {
	MinSize int64
	Links   []Link
}

// DefaultBudgetPeriod is Budget.Period's default.
const DefaultBudgetPeriod = 24 * time.Hour

// Budget is a cap on the bytes downloaded over metered links per period,
// which the gate from [NewNetwork] consults. Feed it every byte received
// on a metered link: a release's download with [Budget.AddRelease] (from
// the growth of update.Progress.Fetched, whose Release names it), other
// traffic with [Budget.Add].
//
// Periods are Period long and start at Anchor plus a whole number of
// periods: with the zero Anchor, daily budgets reset at 00:00 UTC; set
// Anchor to a local midnight, or to the day a data plan renews, to move
// the reset. A Budget lives in memory: a restarted terminal starts a fresh
// period.
//
// The rule: a release may download on a metered link while its remaining
// bytes fit what is left of the period's budget. Remaining is its
// artifact's size less the bytes added for it with AddRelease (bytes
// fetched on an unmetered link are not added, so remaining errs high);
// left is Limit less all the bytes added this period. While the download
// runs both shrink together, so a download that fits when it starts keeps
// fitting; other metered traffic shrinks only what is left, and can pause
// it until the next period, when it resumes if the rest fits. A release
// larger than Limit waits for an unmetered link.
//
// The zero Budget allows no metered bytes at all. A Budget is safe for
// concurrent use and must not be copied after first use.
type Budget struct {
	// Limit is how many bytes may be downloaded over metered links per
	// period.
	Limit int64
	// Period is how long a budget lasts; 0 means [DefaultBudgetPeriod].
	Period time.Duration
	// Anchor is when a period starts; the zero time means the Unix epoch.
	Anchor time.Time

	mu      sync.Mutex
	period  int64 // which period used counts
	used    int64
	release string // the release whose bytes fetched counts
	fetched int64
}

// Add records n bytes received on a metered link, other than a release's
// download.
func (b *Budget) Add(n int64) { b.add("", n) }

// AddRelease records n bytes of release's download (its manifest's ID,
// component@version) received on a metered link. Only the last release
// added is remembered.
func (b *Budget) AddRelease(release string, n int64) { b.add(release, n) }

func (b *Budget) add(release string, n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(time.Now())
	b.used += n
	if release == "" {
		return
	}
	if release != b.release {
		b.release, b.fetched = release, 0
	}
	b.fetched += n
}

// Used returns the bytes counted in the current period and when it ends.
func (b *Budget) Used() (used int64, resets time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.roll(time.Now())
}

// roll starts a new period if now is past the current one, and returns
// when the current one ends.
func (b *Budget) roll(now time.Time) time.Time {
	period := cmp.Or(b.Period, DefaultBudgetPeriod)
	anchor := b.Anchor
	if anchor.IsZero() {
		anchor = time.Unix(0, 0)
	}
	since := now.Sub(anchor)
	k := int64(since / period)
	if since < 0 && since%period != 0 {
		k-- // floor
	}
	if k != b.period {
		b.period, b.used = k, 0
	}
	return anchor.Add(time.Duration(k+1) * period)
}

// take decides whether release, of size bytes, may download now on a
// metered link: remaining ≤ left. It returns what it compared.
func (b *Budget) take(release string, size int64) (ok bool, remaining, left int64, resets time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	resets = b.roll(time.Now())
	remaining = size
	if release == b.release {
		remaining = max(size-b.fetched, 0)
	}
	left = b.Limit - b.used
	return remaining <= left, remaining, left, resets
}

// NetworkConfig configures [NewNetwork]. Read is required.
type NetworkConfig struct {
	// Read returns the link the terminal is on now. It is called with a
	// context bounded to a few seconds.
	Read func(ctx context.Context) (Link, error)
	// Rules restrict the links large payloads may use (see [LinkRule]),
	// e.g. only Wi-Fi or Ethernet from 20 MiB. Nil, or no rule for a
	// payload's size, means any link but LinkNone.
	Rules []LinkRule
	// Metered are the links whose bytes Budget caps; nil means
	// LinkCellular only.
	Metered []Link
	// Budget, if set, caps the bytes downloaded over metered links per
	// period. Nil means no cap.
	Budget *Budget
	// Recheck is how soon the gate asks to be asked again when the link
	// does not suit (the terminal may be moved, Wi-Fi may come back); 0
	// means [DefaultRecheck].
	Recheck time.Duration
	// Stages are the stages the gate holds back; nil means
	// update.StageDownload only.
	Stages []update.Stage
}

// NewNetwork returns the network gate: a link, one the rules allow for
// the payload's size (the artifact's size in the release's manifest), and
// on a metered link room in the budget. The agent asks the download gate
// before every piece, so a terminal that leaves Wi-Fi for cellular pauses
// its download. "on cellular: payloads of 20.0 MiB or more need wifi or
// ethernet (this one is 48.2 MiB)".
func NewNetwork(cfg NetworkConfig) (update.Gate, error) {
	if cfg.Read == nil {
		return nil, invalid("network: Read is required")
	}
	if err := checkDurations("network", map[string]time.Duration{"Recheck": cfg.Recheck}); err != nil {
		return nil, err
	}
	rules := slices.Clone(cfg.Rules)
	slices.SortFunc(rules, func(a, b LinkRule) int { return cmp.Compare(a.MinSize, b.MinSize) })
	for i, r := range rules {
		if r.MinSize < 0 || len(r.Links) == 0 || i > 0 && rules[i-1].MinSize == r.MinSize {
			return nil, invalid("network: each rule needs MinSize ≥ 0, unique, and at least one link")
		}
	}
	if cfg.Budget != nil && (cfg.Budget.Limit < 0 || cfg.Budget.Period < 0) {
		return nil, invalid("network: Budget.Limit and Budget.Period must not be negative")
	}
	st, err := stagesOr(cfg.Stages, update.StageDownload)
	if err != nil {
		return nil, err
	}
	metered := cfg.Metered
	if metered == nil {
		metered = []Link{LinkCellular}
	}
	recheck := or(cfg.Recheck, DefaultRecheck)
	return func(ctx context.Context, req update.GateRequest) error {
		if !st.has(req.Stage) {
			return nil
		}
		if req.Manifest == nil {
			return ErrNoManifest
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		link, err := cfg.Read(cctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("gate: network: reading the link: %w", err)
		case link == LinkNone || link == "":
			return notNow(req, recheck, "no network connection")
		}
		size := req.Manifest.Artifact.Size
		if i := ruleFor(rules, size); i >= 0 && !slices.Contains(rules[i].Links, link) {
			return notNow(req, recheck, "on %s: payloads of %s or more need %s (this one is %s)",
				link, formatBytes(rules[i].MinSize), joinLinks(rules[i].Links), formatBytes(size))
		}
		if cfg.Budget == nil || !slices.Contains(metered, link) {
			return nil
		}
		ok, remaining, left, resets := cfg.Budget.take(req.Manifest.ID(), size)
		switch {
		case ok:
			return nil
		case remaining > cfg.Budget.Limit:
			return notNow(req, recheck, "on metered %s: %s to download exceeds the whole budget of %s per %s; waiting for an unmetered link",
				link, formatBytes(remaining), formatBytes(cfg.Budget.Limit), formatDuration(cmp.Or(cfg.Budget.Period, DefaultBudgetPeriod)))
		}
		wait := time.Until(resets)
		return notNow(req, min(wait, recheck), "on metered %s: %s to download, %s left of the budget this period; resets in %s",
			link, formatBytes(remaining), formatBytes(max(left, 0)), formatDuration(wait))
	}, nil
}

// ruleFor returns the index of the rule for a payload of size bytes in
// rules sorted by MinSize, or -1.
func ruleFor(rules []LinkRule, size int64) int {
	i := -1
	for j, r := range rules {
		if r.MinSize <= size {
			i = j
		}
	}
	return i
}

func joinLinks(links []Link) string {
	s := make([]string, len(links))
	for i, l := range links {
		s[i] = string(l)
	}
	return strings.Join(s, " or ")
}
