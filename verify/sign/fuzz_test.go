package sign_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/upkeephq/upkeep/verify/sign"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// FuzzParsePrivateKey checks that ParsePrivateKey never panics and that
// whatever it accepts is a valid key that encodes and parses back to
// itself.
func FuzzParsePrivateKey(f *testing.F) {
	k := mustKey(f, 1)
	valid, err := sign.MarshalPrivateKey(k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(bytes.ReplaceAll(valid, []byte("\n"), nil))
	f.Add([]byte(`{"keyid":"","algorithm":"ed25519","private":""}`))
	f.Add([]byte(`{"keyid":"00","algorithm":"ed25519","private":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := sign.ParsePrivateKey(data)
		if err != nil {
			return
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("accepted key does not validate: %v", err)
		}
		b, err := sign.MarshalPrivateKey(k)
		if err != nil {
			t.Fatalf("accepted key does not encode: %v", err)
		}
		k2, err := sign.ParsePrivateKey(b)
		if err != nil {
			t.Fatalf("re-encoded key does not parse: %v\n%s", err, b)
		}
		if k2.ID != k.ID || !bytes.Equal(k2.Key, k.Key) {
			t.Fatalf("round trip changed the key: %s -> %s", k.ID, k2.ID)
		}
	})
}
