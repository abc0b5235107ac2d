package verify_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/upkeephq/upkeep/verify"
)

func TestManifestValidate(t *testing.T) {
	many := func(n int, f func(i int) string) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return s
	}
	tests := []struct {
		name    string
		edit    func(m *verify.Manifest)
		wantErr error
	}{
		{"valid", func(*verify.Manifest) {}, nil},
		{"minimal application", func(m *verify.Manifest) {
			m.Models, m.HardwareRevisions, m.From, m.Floor = nil, nil, nil, ""
		}, nil},
		{"firmware with models", func(m *verify.Manifest) { m.Kind = verify.KindFirmware }, nil},
		{"parameters", func(m *verify.Manifest) { m.Kind = verify.KindParameters }, nil},
		{"floor equal to version", func(m *verify.Manifest) { m.Floor = m.Version }, nil},
		{"prerelease version", func(m *verify.Manifest) { m.Version, m.Floor = "2.1.0-rc.1", "2.0.0" }, nil},
		{"downgrade allowed", func(m *verify.Manifest) { m.Downgrade = true }, nil},
		{"security category", func(m *verify.Manifest) { m.Category = verify.CategorySecurity }, nil},
		{"feature category", func(m *verify.Manifest) { m.Category = verify.CategoryFeature }, nil},
		{"maintenance category", func(m *verify.Manifest) { m.Category = verify.CategoryMaintenance }, nil},
		{"requires", func(m *verify.Manifest) {
			m.Requires = []verify.Requirement{{Component: "firmware", Version: ">=1.4"}, {Component: "params", Version: ">=3.0.0, <4.0.0"}}
		}, nil},
		{"32 requirements", func(m *verify.Manifest) {
			for i := range verify.MaxRequires {
				m.Requires = append(m.Requires, verify.Requirement{Component: fmt.Sprint("c", i), Version: "^1"})
			}
		}, nil},
		{"256 models", func(m *verify.Manifest) { m.Models = many(256, func(i int) string { return fmt.Sprint("m", i) }) }, nil},

		{"schema 0", func(m *verify.Manifest) { m.Schema = 0 }, verify.ErrMalformed},
		{"schema 2", func(m *verify.Manifest) { m.Schema = 2 }, verify.ErrMalformed},
		{"no component", func(m *verify.Manifest) { m.Component = "" }, verify.ErrMalformed},
		{"component with space", func(m *verify.Manifest) { m.Component = "payment app" }, verify.ErrMalformed},
		{"component with slash", func(m *verify.Manifest) { m.Component = "a/b" }, verify.ErrMalformed},
		{"component starting with a dot", func(m *verify.Manifest) { m.Component = ".app" }, verify.ErrMalformed},
		{"component starting with a dash", func(m *verify.Manifest) { m.Component = "-app" }, verify.ErrMalformed},
		{"component of 65 bytes", func(m *verify.Manifest) { m.Component = strings.Repeat("a", 65) }, verify.ErrMalformed},
		{"component of 64 bytes", func(m *verify.Manifest) { m.Component = strings.Repeat("a", 64) }, nil},
		{"no version", func(m *verify.Manifest) { m.Version = "" }, verify.ErrMalformed},
		{"version without patch", func(m *verify.Manifest) { m.Version = "2.1" }, verify.ErrMalformed},
		{"version with v", func(m *verify.Manifest) { m.Version = "v2.1.0" }, verify.ErrMalformed},
		{"no kind", func(m *verify.Manifest) { m.Kind = "" }, verify.ErrMalformed},
		{"unknown kind", func(m *verify.Manifest) { m.Kind = "driver" }, verify.ErrMalformed},
		{"firmware for any model", func(m *verify.Manifest) { m.Kind, m.Models = verify.KindFirmware, nil }, verify.ErrMalformed},
		{"bad model", func(m *verify.Manifest) { m.Models = []string{"A920", "A 80"} }, verify.ErrMalformed},
		{"empty model", func(m *verify.Manifest) { m.Models = []string{""} }, verify.ErrMalformed},
		{"257 models", func(m *verify.Manifest) { m.Models = many(257, func(i int) string { return fmt.Sprint("m", i) }) }, verify.ErrMalformed},
		{"bad hardware revision", func(m *verify.Manifest) { m.HardwareRevisions = []string{"rev b"} }, verify.ErrMalformed},
		{"257 hardware revisions", func(m *verify.Manifest) {
			m.HardwareRevisions = many(257, func(i int) string { return fmt.Sprint("r", i) })
		}, verify.ErrMalformed},
		{"bad from constraint", func(m *verify.Manifest) { m.From = []string{">=one"} }, verify.ErrMalformed},
		{"257 from constraints", func(m *verify.Manifest) { m.From = many(257, func(int) string { return "~1.0" }) }, verify.ErrMalformed},
		{"unknown category", func(m *verify.Manifest) { m.Category = "urgent" }, verify.ErrMalformed},
		{"category in capitals", func(m *verify.Manifest) { m.Category = "Security" }, verify.ErrMalformed},
		{"33 requirements", func(m *verify.Manifest) {
			for i := range verify.MaxRequires + 1 {
				m.Requires = append(m.Requires, verify.Requirement{Component: fmt.Sprint("c", i), Version: "^1"})
			}
		}, verify.ErrMalformed},
		{"requirement without a component", func(m *verify.Manifest) {
			m.Requires = []verify.Requirement{{Version: ">=1.4"}}
		}, verify.ErrMalformed},
		{"requirement on a bad name", func(m *verify.Manifest) {
			m.Requires = []verify.Requirement{{Component: "fw ware", Version: ">=1.4"}}
		}, verify.ErrMalformed},
		{"requirement without a constraint", func(m *verify.Manifest) {
			m.Requires = []verify.Requirement{{Component: "firmware"}}
		}, verify.ErrMalformed},
		{"requirement with a bad constraint", func(m *verify.Manifest) {
			m.Requires = []verify.Requirement{{Component: "firmware", Version: ">=one"}}
		}, verify.ErrMalformed},
		{"requirement with a long constraint", func(m *verify.Manifest) {
			m.Requires = []verify.Requirement{{Component: "firmware", Version: ">=1.0.0" + strings.Repeat(", >=1.0.0", 40)}}
		}, verify.ErrMalformed},
		{"requirement on its own component", func(m *verify.Manifest) {
			m.Requires = []verify.Requirement{{Component: m.Component, Version: ">=1.0.0"}}
		}, verify.ErrMalformed},
		{"component required twice", func(m *verify.Manifest) {
			m.Requires = []verify.Requirement{{Component: "firmware", Version: ">=1.4"}, {Component: "firmware", Version: "<2"}}
		}, verify.ErrMalformed},
		{"floor above version", func(m *verify.Manifest) { m.Floor = "2.1.1" }, verify.ErrMalformed},
		{"bad floor", func(m *verify.Manifest) { m.Floor = "two" }, verify.ErrMalformed},
		{"no issued", func(m *verify.Manifest) { m.Issued = time.Time{} }, verify.ErrMalformed},
		{"no expires", func(m *verify.Manifest) { m.Expires = time.Time{} }, verify.ErrMalformed},
		{"expires when issued", func(m *verify.Manifest) { m.Expires = m.Issued }, verify.ErrMalformed},
		{"expires before issued", func(m *verify.Manifest) { m.Expires = m.Issued.Add(-time.Second) }, verify.ErrMalformed},
		{"bad artifact", func(m *verify.Manifest) { m.Artifact.Size++ }, verify.ErrMalformed},
		{"artifact too large", func(m *verify.Manifest) { m.Artifact.Size = verify.MaxArtifactSize + 1 }, verify.ErrTooLarge},
		{"artifact without a name", func(m *verify.Manifest) { m.Artifact.Name = "" }, verify.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest(t)
			tt.edit(m)
			err := m.Validate()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// A manifest that names no category and no requirements encodes without
// those fields, so terminals whose strict decoders predate them still
// accept it, and manifests signed before them still verify.
func TestManifestWithoutCatalogFieldsEncodesAsBefore(t *testing.T) {
	data, err := json.Marshal(validManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"category"`, `"requires"`} {
		if bytes.Contains(data, []byte(field)) {
			t.Errorf("manifest without %s encodes it: %s", field, data)
		}
	}
	m, err := verify.ParseManifest(data)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if m.Category != "" || m.Requires != nil {
		t.Errorf("Category %q, Requires %v; want none", m.Category, m.Requires)
	}
}

func TestManifestCatalogFieldsRoundTrip(t *testing.T) {
	in := validManifest(t)
	in.Category = verify.CategorySecurity
	in.Requires = []verify.Requirement{{Component: "firmware", Version: ">=1.4"}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"category":"security"`)) ||
		!bytes.Contains(data, []byte(`"requires":[{"component":"firmware","version":"\u003e=1.4"}]`)) {
		t.Errorf("encoding: %s", data)
	}
	m, err := verify.ParseManifest(data)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if m.Category != verify.CategorySecurity || len(m.Requires) != 1 || m.Requires[0] != in.Requires[0] {
		t.Errorf("round trip: %q %v", m.Category, m.Requires)
	}
	if got := m.Requires[0].String(); got != "firmware >=1.4" {
		t.Errorf("Requirement.String() = %q", got)
	}
}

func TestCategoryValid(t *testing.T) {
	for _, c := range []verify.Category{verify.CategorySecurity, verify.CategoryFeature, verify.CategoryMaintenance} {
		if !c.Valid() {
			t.Errorf("%q not valid", c)
		}
	}
	for _, c := range []verify.Category{"", "Security", "bugfix"} {
		if c.Valid() {
			t.Errorf("%q valid", c)
		}
	}
}

func TestManifestID(t *testing.T) {
	m := validManifest(t)
	if got := m.ID(); got != "payment-app@2.1.0" {
		t.Errorf("ID() = %q", got)
	}
}

func TestKindValid(t *testing.T) {
	for _, k := range []verify.Kind{verify.KindFirmware, verify.KindApplication, verify.KindParameters} {
		if !k.Valid() {
			t.Errorf("%q not valid", k)
		}
	}
	for _, k := range []verify.Kind{"", "Firmware", "os"} {
		if k.Valid() {
			t.Errorf("%q valid", k)
		}
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"a", true},
		{"A920", true},
		{"payment-app", true},
		{"rev_b.2", true},
		{"9lives", true},
		{"", false},
		{"-a", false},
		{"_a", false},
		{".a", false},
		{"a b", false},
		{"a/b", false},
		{"é", false},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
	}
	for _, tt := range tests {
		err := verify.CheckName("model", tt.in)
		if tt.ok != (err == nil) {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err != nil && !errors.Is(err, verify.ErrMalformed) {
			t.Errorf("CheckName(%q) = %v, want ErrMalformed", tt.in, err)
		}
	}
}

func TestParseManifest(t *testing.T) {
	valid, err := json.Marshal(validManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"valid", valid, nil},
		{"valid, indented with whitespace around", append(append([]byte("\n "), indent(t, valid)...), "\n\t"...), nil},
		{"unknown field", bytes.Replace(valid, []byte(`{"schema"`), []byte(`{"extra":1,"schema"`), 1), verify.ErrMalformed},
		{"trailing value", append(append([]byte{}, valid...), "{}"...), verify.ErrMalformed},
		{"trailing garbage", append(append([]byte{}, valid...), 'x'), verify.ErrMalformed},
		{"wrong type", bytes.Replace(valid, []byte(`"schema":1`), []byte(`"schema":"1"`), 1), verify.ErrMalformed},
		{"invalid content", bytes.Replace(valid, []byte(`"schema":1`), []byte(`"schema":2`), 1), verify.ErrMalformed},
		{"not an object", []byte(`[]`), verify.ErrMalformed},
		{"null", []byte(`null`), verify.ErrMalformed},
		{"empty", nil, verify.ErrMalformed},
		{"too large", bytes.Repeat([]byte(" "), verify.MaxManifestSize+1), verify.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := verify.ParseManifest(tt.data)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ParseManifest() = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (m.ID() != "payment-app@2.1.0" || len(m.Artifact.Chunks) != 4 || !m.Issued.Equal(t0.Add(-day))) {
				t.Errorf("parsed %+v", m)
			}
		})
	}
}

func indent(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		name           string
		v, installed   string
		floor          string
		allowDowngrade bool
		wantErr        error
	}{
		{"first install", "1.0.0", "", "", false, nil},
		{"upgrade", "1.1.0", "1.0.0", "", false, nil},
		{"same version", "1.0.0", "1.0.0", "", false, nil},
		{"build metadata is ignored", "1.0.0+b2", "1.0.0+b1", "", false, nil},
		{"release above its prerelease", "1.0.0", "1.0.0-rc.1", "", false, nil},
		{"downgrade refused", "1.0.0", "1.1.0", "", false, verify.ErrDowngrade},
		{"prerelease below the release", "1.0.0-rc.1", "1.0.0", "", false, verify.ErrDowngrade},
		{"downgrade allowed", "1.0.0", "1.1.0", "", true, nil},
		{"downgrade allowed down to the floor", "1.0.0", "1.1.0", "1.0.0", true, nil},
		{"allowed downgrade still refused below the floor", "0.9.0", "1.1.0", "1.0.0", true, verify.ErrDowngrade},
		{"below the floor", "1.0.0", "", "1.0.1", false, verify.ErrDowngrade},
		{"at the floor", "1.0.1", "1.0.0", "1.0.1", false, nil},
		{"above the floor", "2.0.0", "1.0.0", "1.0.1", false, nil},
		{"bad version", "one", "1.0.0", "", false, verify.ErrMalformed},
		{"bad installed version", "1.0.0", "one", "", false, verify.ErrMalformed},
		{"bad floor", "1.0.0", "", "one", false, verify.ErrMalformed},
		{"bad installed version, downgrade allowed", "1.0.0", "one", "", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify.CheckVersion(tt.v, tt.installed, tt.floor, tt.allowDowngrade)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CheckVersion(%q, %q, %q, %v) = %v, want %v",
					tt.v, tt.installed, tt.floor, tt.allowDowngrade, err, tt.wantErr)
			}
		})
	}
}
