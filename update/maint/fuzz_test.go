package maint

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds the token parser anything. It must not panic, must
// fail with one of its sentinels, and must accept only tokens that are
// the one spelling of what was signed (no padding, no spare bits, nothing
// after the signature) and whose claims hold.
func FuzzVerify(f *testing.F) {
	pub, priv := testKey(1)
	now := time.Unix(946684800, 0)
	c := Claims{Technician: "t-042", Serial: testSerial, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Nonce: testNonce}
	good, err := IssueToken(priv, testKID, c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good + "x")
	f.Add(good[:len(good)/2])
	f.Add("")
	f.Add(".")
	f.Add("e30.")
	f.Add(forge(priv, `{"kid":"tms-1","tech":"t-042","serial":"SN-0001","iat":946684800,"exp":946688400,"nonce":"nonce-0123456789","x":1}`))
	f.Add(forge(priv, `{"kid":"tms-1","kid":"tms-1","tech":"t-042","serial":"SN-0001","iat":946684800,"exp":946688400,"nonce":"nonce-0123456789"}`))
	f.Add(forge(priv, ` {"tech":"t-042","kid":"tms-1","serial":"SN-0001","iat":946684800,"exp":946688400,"nonce":"nonce-0123456789"}`))
	v := &TokenVerifier{Keys: map[string]ed25519.PublicKey{testKID: pub}, Serial: testSerial}
	f.Fuzz(func(t *testing.T, token string) {
		got, err := v.verify(token, now.Add(time.Minute))
		if err != nil {
			for _, want := range []error{ErrMalformed, ErrUnknownKey, ErrSignature, ErrWrongDevice, ErrExpired} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("Verify(%q): %v matches no sentinel", token, err)
		}
		payload, sig, _ := strings.Cut(token, ".")
		for _, part := range []string{payload, sig} {
			b, err := b64.DecodeString(part)
			if err != nil || b64.EncodeToString(b) != part {
				t.Fatalf("token %q verified with a part spelled %q", token, part)
			}
		}
		if got.Serial != testSerial || got.KeyID != testKID || got.ExpiresAt.Sub(got.IssuedAt) > DefaultMaxLifetime ||
			now.Add(time.Minute).Before(got.IssuedAt) || !now.Add(time.Minute).Before(got.ExpiresAt) {
			t.Fatalf("token %q verified with claims %+v", token, got)
		}
	})
}

// FuzzParseState feeds the password file parser anything. It must not
// panic, and what it accepts must have parameters within bounds and read
// back the same once written.
func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version":1,"alg":"argon2id","argon2_version":19,"time":1,"memory_kib":64,"threads":1,` +
		`"salt":"AAAAAAAAAAAAAAAAAAAAAA==","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","failures":3,` +
		`"locked_until":"2000-01-01T00:00:30Z"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"alg":"argon2id","argon2_version":19,"time":1,"memory_kib":4294967295,"threads":255}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState(b)
		if err != nil {
			return
		}
		if err := st.params().validate(); err != nil || st.Failures < 0 {
			t.Fatalf("accepted %+v: %v", st, err)
		}
		out, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := parseState(out)
		if err != nil {
			t.Fatalf("%s does not read back: %v", out, err)
		}
		if out2, _ := json.Marshal(st2); string(out2) != string(out) {
			t.Fatalf("read back as %s, was %s", out2, out)
		}
	})
}
