package heartbeat

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func TestRegistryJudge(t *testing.T) {
	tests := []struct {
		name     string
		cfg      RegistryConfig
		interval time.Duration
		silent   time.Duration // now - last seen
		online   bool
		overdue  time.Duration
		wantIv   time.Duration
	}{
		{"just beat", RegistryConfig{}, time.Minute, 0, true, 0, time.Minute},
		{"not yet due", RegistryConfig{}, time.Minute, 59 * time.Second, true, 0, time.Minute},
		{"one beat late", RegistryConfig{}, time.Minute, 90 * time.Second, true, 30 * time.Second, time.Minute},
		{"at the limit: 2 misses + 1m grace", RegistryConfig{}, time.Minute, 3 * time.Minute, true, 2 * time.Minute, time.Minute},
		{"past the limit", RegistryConfig{}, time.Minute, 3*time.Minute + 1, false, 2*time.Minute + 1, time.Minute},
		{"three misses allowed", RegistryConfig{Misses: 3}, time.Minute, 3*time.Minute + 30*time.Second, true, 150 * time.Second, time.Minute},
		{"no grace", RegistryConfig{Grace: -1}, time.Minute, 2*time.Minute + 1, false, time.Minute + 1, time.Minute},
		{"longer grace", RegistryConfig{Grace: 10 * time.Minute}, time.Minute, 11 * time.Minute, true, 10 * time.Minute, time.Minute},
		{"default interval", RegistryConfig{}, 0, 11 * time.Minute, true, 6 * time.Minute, DefaultInterval},
		{"default interval past the limit", RegistryConfig{}, 0, 11*time.Minute + 1, false, 6*time.Minute + 1, DefaultInterval},
		{"configured default interval", RegistryConfig{DefaultInterval: time.Hour}, 0, 2 * time.Hour, true, time.Hour, time.Hour},
		{"clock skew: seen in the future", RegistryConfig{}, time.Minute, -time.Hour, true, 0, time.Minute},
		{"overflowing allowance", RegistryConfig{Misses: 10}, 1 << 62, 1 << 62, true, 0, 1 << 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRegistry(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r.Seen("t-1", t0, tt.interval)
			got, ok := r.Get("t-1", t0.Add(tt.silent))
			want := Liveness{DeviceID: "t-1", LastSeen: t0, Interval: tt.wantIv, Online: tt.online, Overdue: tt.overdue}
			if !ok || got != want {
				t.Fatalf("Get = %+v, %v; want %+v", got, ok, want)
			}
		})
	}
}

func TestRegistrySeen(t *testing.T) {
	tests := []struct {
		name  string
		beats []struct {
			at       time.Duration
			interval time.Duration
		}
		wantAt time.Duration
		wantIv time.Duration
	}{
		{"latest wins", []struct{ at, interval time.Duration }{{0, time.Minute}, {time.Minute, 2 * time.Minute}},
			time.Minute, 2 * time.Minute},
		{"out of order ignored", []struct{ at, interval time.Duration }{{time.Minute, time.Minute}, {0, time.Hour}},
			time.Minute, time.Minute},
		{"no interval keeps the previous", []struct{ at, interval time.Duration }{{0, 10 * time.Minute}, {time.Minute, 0}},
			time.Minute, 10 * time.Minute},
		{"never given an interval", []struct{ at, interval time.Duration }{{0, 0}, {time.Minute, -1}},
			time.Minute, DefaultInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Registry // the zero value works
			for _, b := range tt.beats {
				r.Seen("t-1", t0.Add(b.at), b.interval)
			}
			got, ok := r.Get("t-1", t0.Add(tt.wantAt))
			if !ok || !got.LastSeen.Equal(t0.Add(tt.wantAt)) || got.Interval != tt.wantIv {
				t.Fatalf("Get = %+v, %v; want last seen +%s, interval %s", got, ok, tt.wantAt, tt.wantIv)
			}
		})
	}
}

func TestRegistryListAndForget(t *testing.T) {
	var r Registry
	if got := r.List(t0); len(got) != 0 {
		t.Fatalf("empty registry lists %v", got)
	}
	if _, ok := r.Get("nobody", t0); ok {
		t.Fatal("Get of an unknown device reported true")
	}
	r.Seen("t-3", t0, time.Minute)
	r.Seen("t-1", t0.Add(-time.Hour), time.Minute)
	r.Seen("t-2", t0.Add(-2*time.Minute), time.Minute)
	var ids []string
	var online []bool
	for _, l := range r.List(t0) {
		ids = append(ids, l.DeviceID)
		online = append(online, l.Online)
	}
	if !reflect.DeepEqual(ids, []string{"t-1", "t-2", "t-3"}) || !reflect.DeepEqual(online, []bool{false, true, true}) {
		t.Fatalf("List: ids %v online %v", ids, online)
	}
	r.Forget("t-2")
	if r.Len() != 2 {
		t.Fatalf("Len after Forget = %d, want 2", r.Len())
	}
	if _, ok := r.Get("t-2", t0); ok {
		t.Fatal("forgotten device still known")
	}
}

func TestNewRegistryErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  RegistryConfig
	}{
		{"negative misses", RegistryConfig{Misses: -1}},
		{"negative default interval", RegistryConfig{DefaultInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRegistry(tt.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewRegistry = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestRegistryConcurrent(t *testing.T) {
	var r Registry
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				id := fmt.Sprintf("t-%d", j%50)
				r.Seen(id, t0.Add(time.Duration(i*j)*time.Second), time.Minute)
				r.Get(id, t0)
				if j%20 == 0 {
					r.List(t0)
				}
			}
		})
	}
	wg.Wait()
	if r.Len() != 50 {
		t.Fatalf("Len = %d, want 50", r.Len())
	}
}

func ExampleRegistry() {
	reg, _ := NewRegistry(RegistryConfig{Misses: 2, Grace: time.Minute})
	start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	reg.Seen("shop-12-till-1", start, 5*time.Minute)
	reg.Seen("shop-12-till-2", start.Add(-20*time.Minute), 5*time.Minute)

	for _, l := range reg.List(start.Add(7 * time.Minute)) {
		fmt.Printf("%s online=%v overdue=%s\n", l.DeviceID, l.Online, l.Overdue)
	}
	// Output:
	// shop-12-till-1 online=true overdue=2m0s
	// shop-12-till-2 online=false overdue=22m0s
}
