package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/upkeephq/upkeep/transport"
)

// TestRollout runs a small fleet through a rollout both ways: with few
// failures it opens every batch; with many it halts by itself in its
// first batch, before the second opens. Batches start at 10% so that the
// first holds enough terminals for the failure limit to judge.
func TestRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of 300 over HTTP")
	}
	tests := []struct {
		name, fail string
		want       []string
	}{
		{"advances", "0.05", []string{"PASS: advanced through every batch", "batch 3 (100%)"}},
		{"halts", "0.2", []string{"PASS: halted by itself in batch 1 (10%)", "0 terminals of later batches offered"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := []string{"-terminals", "300", "-store", "memory", "-batches", "10,50,100", "-fail", tt.fail,
				"-every", "100ms", "-timeout", "2m", "-speed", "150"}
			if code := run(context.Background(), args, &out, &errs); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out.String(), errs.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if testing.Verbose() {
				t.Log("\n" + out.String())
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		bad  bool
		want func(o options) bool
	}{
		{"defaults", nil, false, func(o options) bool {
			return o.terminals == 10000 && o.speed == 30 && len(o.batches) == 4 && o.store == "memory"
		}},
		{"small fleets run faster", []string{"-terminals", "300"}, false, func(o options) bool { return o.speed == 300 }},
		{"remote runs at the wall's pace", []string{"-server", "http://x", "-enrollment", "e", "-operator-token", "t"}, false,
			func(o options) bool { return o.speed == 1 }},
		{"bench at the wall's pace", []string{"-bench"}, false, func(o options) bool { return o.speed == 1 }},
		{"remote without credentials", []string{"-server", "http://x"}, true, nil},
		{"direct and remote", []string{"-server", "http://x", "-enrollment", "e", "-operator-token", "t", "-direct"}, true, nil},
		{"share above 1", []string{"-fail", "1.5"}, true, nil},
		{"offline and crash above 1", []string{"-offline", "0.6", "-crash", "0.6"}, true, nil},
		{"bad batches", []string{"-batches", "1,x"}, true, nil},
		{"unknown store", []string{"-store", "redis"}, true, nil},
		{"measure one kind", []string{"-bench", "-measure", "checks"}, false, func(o options) bool {
			return slices.Equal(o.measure, []string{"checks"})
		}},
		{"measure an unknown kind", []string{"-bench", "-measure", "reports"}, true, nil},
		{"pilot larger than the fleet", []string{"-terminals", "3", "-pilot", "5"}, true, nil},
		{"stray argument", []string{"extra"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.bad {
				t.Fatalf("err = %v, want error %v", err, tt.bad)
			}
			if !tt.bad && !tt.want(o) {
				t.Errorf("options %+v", o)
			}
		})
	}
}

// TestOutcomes: the fail share of a stage's reports fails, evenly spread
// from the start; lab terminals and the pilot never fail.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		fail      float64
		reports   int
		wantFails []int64 // which reports fail, from 1
	}{
		{0, 20, nil},
		{0.05, 60, []int64{20, 40, 60}},
		{0.2, 15, []int64{5, 10, 15}},
		{1, 3, []int64{1, 2, 3}},
	}
	for _, tt := range tests {
		o := newOutcomes(3, tt.fail)
		var fails []int64
		for k := 1; k <= tt.reports; k++ {
			if v := o.next(1, false); v.outcome != transport.OutcomeCommitted {
				if v.reason == transport.ReasonOK {
					t.Errorf("fail %g: report %d failed with reason ok", tt.fail, k)
				}
				fails = append(fails, v.turn)
			}
		}
		if !slices.Equal(fails, tt.wantFails) {
			t.Errorf("fail %g: reports %v failed, want %v", tt.fail, fails, tt.wantFails)
		}
		if v := o.next(0, false); v.outcome != transport.OutcomeCommitted {
			t.Errorf("fail %g: a pilot terminal failed", tt.fail)
		}
		if v := o.next(2, true); v.outcome != transport.OutcomeCommitted {
			t.Errorf("fail %g: a lab terminal failed", tt.fail)
		}
	}
}

// TestOutcomesWait: a failure waits until the server has acknowledged the
// reports before it, whichever order they were acknowledged in; a
// success never waits.
func TestOutcomesWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		o := newOutcomes(2, 0.25)
		vs := make([]verdict, 4)
		for i := range vs {
			vs[i] = o.next(1, false)
		}
		if vs[3].outcome == transport.OutcomeCommitted {
			t.Fatalf("report 4 of a 25%% share: %+v, want a failure", vs[3])
		}
		if err := o.wait(ctx, vs[0]); err != nil {
			t.Fatalf("a success waited: %v", err)
		}
		sent := make(chan struct{})
		go func() {
			if err := o.wait(ctx, vs[3]); err == nil {
				close(sent)
			}
		}()
		for n, i := range []int{2, 0} { // out of order, and one short
			o.ack(vs[i])
			synctest.Wait()
			select {
			case <-sent:
				t.Fatalf("the failure went after %d acknowledgements, want 3", n+1)
			default:
			}
		}
		o.ack(vs[1])
		synctest.Wait()
		select {
		case <-sent:
		default:
			t.Fatal("the failure still waits after the 3 reports before it were acknowledged")
		}

		cancelled, cancel := context.WithCancel(ctx)
		o.next(1, false) // 5th: a success
		o.next(1, false) // 6th
		o.next(1, false) // 7th
		v := o.next(1, false)
		cancel()
		if err := o.wait(cancelled, v); err == nil {
			t.Errorf("wait with a cancelled context = nil, want its error")
		}
	})
}

func TestRoles(t *testing.T) {
	ts := roles(options{terminals: 1000, pilot: 5, offline: 0.1, crash: 0.01, seed: 7}, "r")
	n := map[role]int{}
	for i, tm := range ts {
		n[tm.role]++
		if (i < 5) != (tm.role == roleLab) {
			t.Errorf("terminal %d is %v", i, tm.role)
		}
	}
	if n[roleLab] != 5 || n[roleOffline] != 100 || n[roleCrash] != 10 || n[roleNormal] != 885 {
		t.Errorf("roles %v", n)
	}
}
