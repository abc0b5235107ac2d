// Package jsonwire decodes JSON from untrusted sources strictly: a size
// limit, no unknown fields, exactly one value.
package jsonwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/upkeephq/upkeep/internal/bounded"
)

// ErrTooLarge reports input longer than the limit.
var ErrTooLarge = errors.New("input too large")

// ErrMalformed reports input that is not exactly one JSON value of the
// expected shape.
var ErrMalformed = errors.New("malformed JSON")

// Decode reads at most limit bytes from r into v, strictly.
func Decode(r io.Reader, limit int64, v any) error {
	data, err := bounded.Read(r, limit, "JSON input", ErrTooLarge)
	if err != nil {
		return err
	}
	return Unmarshal(data, v)
}

// Unmarshal decodes data into v, refusing unknown fields and trailing data.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the value", ErrMalformed)
	}
	return nil
}
