package jsonwire

import (
	"errors"
	"strings"
	"testing"
)

type msg struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		input string
		limit int64
		want  error
	}{
		{"ok", `{"name":"a","n":1}`, 100, nil},
		{"exactly the limit", `{"name":"a"}`, 12, nil},
		{"over the limit", `{"name":"a"}`, 11, ErrTooLarge},
		{"unknown field", `{"name":"a","extra":1}`, 100, ErrMalformed},
		{"trailing value", `{"name":"a"} {}`, 100, ErrMalformed},
		{"trailing garbage", `{"name":"a"}x`, 100, ErrMalformed},
		{"wrong type", `{"n":"one"}`, 100, ErrMalformed},
		{"empty", ``, 100, ErrMalformed},
		{"not an object", `[1,2]`, 100, ErrMalformed},
		{"trailing whitespace is fine", "{\"n\":2}\n\t ", 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m msg
			err := Decode(strings.NewReader(tt.input), tt.limit, &m)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}
