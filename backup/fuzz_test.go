package backup

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/internal/jsonwire"
)

func FuzzCheckID(f *testing.F) {
	for _, s := range []string{
		"000000000001-20250101T000000Z", "999999999999-20991231T235959Z", "../x", "",
		"000000000001-20250101T000000Z/..", "000000000000-20250101T000000Z", "-00000000001-20250101T000000Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		seq, ok := parseID(id)
		if (CheckID(id) == nil) != ok {
			t.Fatalf("CheckID and parseID disagree on %q", id)
		}
		if !ok {
			return
		}
		if !filepath.IsLocal(id) || strings.ContainsAny(id, `/\.`) || filepath.Base(id) != id {
			t.Fatalf("accepted ID %q could name a path", id)
		}
		if got := fmt.Sprintf("%0*d-%s", seqDigits, seq, id[seqDigits+1:]); got != id {
			t.Fatalf("ID %q does not round-trip: %q", id, got)
		}
	})
}

const seedManifest = `{"schema":1,"id":"000000000001-20250101T000000Z","label":"x","created":"2025-01-01T00:00:00Z",
"hooks":["journal"],"dirs":["journal","journal/a"],
"files":[{"path":"journal/a/f","size":1,"digest":"sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"}]}`

func FuzzManifest(f *testing.F) {
	f.Add(seedManifest)
	f.Add(strings.Replace(seedManifest, "journal/a/f", "journal/../../f", 1))
	f.Add(strings.Replace(seedManifest, `"journal/a"]`, `"journal/a","/etc"]`, 1))
	f.Add(`{"schema":1}`)
	f.Fuzz(func(t *testing.T, data string) {
		var m manifest
		if jsonwire.Unmarshal([]byte(data), &m) != nil {
			return
		}
		if checkManifest(&m, "000000000001-20250101T000000Z") != nil {
			return
		}
		for _, p := range append(append([]string(nil), m.Dirs...), filesOf(m)...) {
			if !filepath.IsLocal(filepath.FromSlash(p)) {
				t.Fatalf("accepted path %q escapes the snapshot", p)
			}
			hook, _, _ := strings.Cut(p, "/")
			found := false
			for _, h := range m.Hooks {
				found = found || h == hook
			}
			if !found {
				t.Fatalf("accepted path %q is in no hook's directory", p)
			}
		}
	})
}

func filesOf(m manifest) []string {
	var out []string
	for _, f := range m.Files {
		out = append(out, f.Path)
	}
	return out
}

const seedIndex = `{"schema":1,"paths":["/data/pos","/data/p.cfg"],"entries":[
{"path":"/data/pos","type":"dir","mode":493},
{"path":"/data/pos/j","type":"file","mode":384,"size":1,"digest":"sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
{"path":"/data/pos/l","type":"symlink","target":"/etc"},
{"path":"/data/p.cfg","type":"absent"}]}`

func FuzzFilesIndex(f *testing.F) {
	f.Add(seedIndex)
	f.Add(strings.Replace(seedIndex, "/data/pos/j", "/data/pos/l/j", 1))
	f.Add(strings.Replace(seedIndex, "/data/pos/j", "/data/pos/../etc/j", 1))
	f.Add(strings.Replace(seedIndex, "/data/pos/j", "/data/posx", 1))
	hook, err := NewFiles("pos", "/data/pos", "/data/p.cfg")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var idx filesIndex
		if jsonwire.Unmarshal([]byte(data), &idx) != nil || hook.checkIndex(&idx) != nil {
			return
		}
		types := map[string]string{}
		for _, e := range idx.Entries {
			inside := false
			for _, p := range hook.paths {
				inside = inside || e.Path == p || within(e.Path, p)
			}
			if !inside || filepath.Clean(e.Path) != e.Path {
				t.Fatalf("accepted entry %q outside the configured paths", e.Path)
			}
			if e.Path != hook.paths[0] && e.Path != hook.paths[1] && types[filepath.Dir(e.Path)] != typeDir {
				t.Fatalf("accepted entry %q below a non-directory", e.Path)
			}
			types[e.Path] = e.Type
		}
	})
}
