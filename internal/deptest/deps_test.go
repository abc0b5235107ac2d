package deptest

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/upkeephq/upkeep"

// terminal lists the packages a terminal binary links.
var terminal = []string{
	"update", "update/release", "update/fileinstall", "heartbeat", "backup", "verify", "transport",
	"transport/httptransport", "durable", "update/download", "update/gate", "update/maint",
}

// serverSide are packages and modules a terminal must never link.
var serverSide = []string{
	module + "/update/server", module + "/update/rollout", module + "/verify/sign",
	module + "/examples", "go.etcd.io/bbolt", "github.com/jackc/pgx", "github.com/lib/pq",
}

// allowedModules are the third-party modules a terminal may link.
var allowedModules = map[string]bool{
	module:                                  true,
	"github.com/hashicorp/go-retryablehttp": true,
	"github.com/hashicorp/go-cleanhttp":     true,
	"github.com/Masterminds/semver/v3":      true,
	"github.com/minio/sha256-simd":          true,
	"github.com/klauspost/cpuid/v2":         true,
	"golang.org/x/sys":                      true,
	"golang.org/x/sync":                     true,
	"golang.org/x/crypto":                   true,
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	trackSources(t)
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.Fields(string(out))
}

func TestTerminalLinksNoServerCode(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	for _, pkg := range terminal {
		t.Run(pkg, func(t *testing.T) {
			for _, dep := range goList(t, "-deps", module+"/"+pkg) {
				for _, bad := range serverSide {
					if dep == bad || strings.HasPrefix(dep, bad+"/") {
						t.Errorf("%s imports %s, which is server-side", pkg, dep)
					}
				}
			}
			for _, mod := range goList(t, "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", module+"/"+pkg) {
				if !allowedModules[mod] {
					t.Errorf("%s links module %s, which a terminal does not need", pkg, mod)
				}
			}
		})
	}
}

// TestNoThirdPartyTypesInAPI reads every package's exported API (go doc)
// and looks for the names of the third-party packages we use: their types
// stay inside.
func TestNoThirdPartyTypesInAPI(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	foreign := []string{"retryablehttp.", "cleanhttp.", "semver.", "sha256simd.", "cpuid.", "errgroup.", "semaphore."}
	for _, pkg := range goList(t, module+"/...") {
		if strings.Contains(pkg, "/examples") || strings.Contains(pkg, "/internal/") {
			continue
		}
		out, err := exec.Command("go", "doc", "-all", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go doc %s: %v\n%s", pkg, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			for _, f := range foreign {
				if strings.Contains(line, f) {
					t.Errorf("%s exports a third-party type: %s", pkg, strings.TrimSpace(line))
				}
			}
		}
	}
}

var trackOnce sync.Once

// trackSources stats every source file of the module. The go command
// reads them behind the test's back; statting them here makes go test's
// cache notice when one changes, so a cached pass never hides a new import.
func trackSources(t *testing.T) {
	trackOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			t.Fatal(err)
		}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != root {
				return filepath.SkipDir
			}
			if strings.HasSuffix(p, ".go") || d.Name() == "go.mod" {
				os.Stat(p)
			}
			return nil
		})
	})
}
