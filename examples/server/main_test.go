package main

import (
	"strings"
	"testing"

	"github.com/upkeephq/upkeep/update/server"
)

func TestParseOperators(t *testing.T) {
	tests := []struct {
		name, file string
		want       map[string]server.Operator
		bad        bool
	}{
		{"empty", "", map[string]server.Operator{}, false},
		{"two", "# who may do what\nalice admin tok-a\n\n  vic viewer tok-v  \n",
			map[string]server.Operator{"tok-a": {Name: "alice", Role: server.RoleAdmin}, "tok-v": {Name: "vic", Role: server.RoleViewer}}, false},
		{"unknown role", "root superuser tok\n", nil, true},
		{"missing token", "alice admin\n", nil, true},
		{"token twice", "alice admin tok\nbob viewer tok\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOperators(strings.NewReader(tt.file), "ops")
			if (err != nil) != tt.bad {
				t.Fatalf("err = %v, want error %v", err, tt.bad)
			}
			if tt.bad {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for tok, op := range tt.want {
				if got[tok] != op {
					t.Errorf("token %s: %+v, want %+v", tok, got[tok], op)
				}
			}
		})
	}
}
