package maint

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

const (
	testSerial = "SN-0001"
	testKID    = "tms-1"
	testNonce  = "nonce-0123456789"
)

func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

// testClaims are valid claims issued now for testSerial, for an hour.
func testClaims() Claims {
	now := time.Now()
	return Claims{Technician: "t-042", Serial: testSerial, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Nonce: testNonce}
}

func issue(t *testing.T, priv ed25519.PrivateKey, modify func(*Claims)) string {
	t.Helper()
	c := testClaims()
	if modify != nil {
		modify(&c)
	}
	tok, err := IssueToken(priv, testKID, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forge signs body as it is, valid or not, to test what the verifier makes
// of claims that IssueToken would never write.
func forge(priv ed25519.PrivateKey, body string) string {
	payload := b64.EncodeToString([]byte(body))
	return payload + "." + b64.EncodeToString(ed25519.Sign(priv, signed(payload)))
}

// body is the JSON of valid claims issued now, with replace's old, new
// pairs replaced.
func body(replace ...string) string {
	now := time.Now().Unix()
	w := `{"kid":"tms-1","tech":"t-042","serial":"SN-0001","iat":` + strconv.FormatInt(now, 10) +
		`,"exp":` + strconv.FormatInt(now+3600, 10) + `,"nonce":"nonce-0123456789"}`
	return strings.NewReplacer(replace...).Replace(w)
}

func TestVerify(t *testing.T) {
	pub, priv := testKey(1)
	_, other := testKey(2)
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		verify func(v *TokenVerifier)
		want   error
	}{
		{"valid", func(t *testing.T) string { return issue(t, priv, nil) }, nil, nil},
		{"forged valid body", func(t *testing.T) string { return forge(priv, body()) }, nil, nil},
		{"for another device", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.Serial = "SN-0002" })
		}, nil, ErrWrongDevice},
		{"verifier without a serial", func(t *testing.T) string { return issue(t, priv, nil) },
			func(v *TokenVerifier) { v.Serial = "" }, ErrWrongDevice},
		{"serials differ in case", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.Serial = "sn-0001" })
		}, nil, ErrWrongDevice},
		{"unknown key ID", func(t *testing.T) string { return forge(priv, body(`"tms-1"`, `"tms-9"`)) }, nil, ErrUnknownKey},
		{"no keys", func(t *testing.T) string { return issue(t, priv, nil) },
			func(v *TokenVerifier) { v.Keys = nil }, ErrUnknownKey},
		{"key of the wrong size", func(t *testing.T) string { return issue(t, priv, nil) },
			func(v *TokenVerifier) { v.Keys[testKID] = pub[:16] }, ErrUnknownKey},
		{"signed by another key", func(t *testing.T) string { return issue(t, other, nil) }, nil, ErrSignature},
		{"claims changed after signing", func(t *testing.T) string {
			good := issue(t, priv, nil)
			changed := b64.EncodeToString([]byte(body(`"t-042"`, `"t-043"`)))
			return changed + good[strings.IndexByte(good, '.'):]
		}, nil, ErrSignature},
		{"signed without the token context", func(t *testing.T) string {
			payload := b64.EncodeToString([]byte(body()))
			return payload + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(payload)))
		}, nil, ErrSignature},
		{"expired", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.IssuedAt, c.ExpiresAt = c.IssuedAt.Add(-2*time.Hour), c.IssuedAt.Add(-time.Second) })
		}, nil, ErrExpired},
		{"expiring now", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.IssuedAt, c.ExpiresAt = c.IssuedAt.Add(-time.Hour), c.IssuedAt })
		}, nil, ErrExpired},
		{"expired within the leeway", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.IssuedAt, c.ExpiresAt = c.IssuedAt.Add(-time.Hour), c.IssuedAt.Add(-time.Second) })
		}, func(v *TokenVerifier) { v.Leeway = time.Minute }, nil},
		{"issued in the future", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.IssuedAt, c.ExpiresAt = c.IssuedAt.Add(time.Second), c.ExpiresAt.Add(time.Second) })
		}, nil, ErrExpired},
		{"issued in the future within the leeway", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.IssuedAt, c.ExpiresAt = c.IssuedAt.Add(time.Minute), c.ExpiresAt.Add(time.Minute) })
		}, func(v *TokenVerifier) { v.Leeway = time.Minute }, nil},
		{"lifetime of 24h", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(24 * time.Hour) })
		}, nil, nil},
		{"lifetime above 24h", func(t *testing.T) string {
			return issue(t, priv, func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(24*time.Hour + time.Second) })
		}, nil, ErrExpired},
		{"lifetime above the verifier's maximum", func(t *testing.T) string { return issue(t, priv, nil) },
			func(v *TokenVerifier) { v.MaxLifetime = 30 * time.Minute }, ErrExpired},
		{"too large", func(t *testing.T) string {
			return forge(priv, body(`"t-042"`, `"t-042","x":"`+strings.Repeat("x", MaxTokenSize)+`"`))
		}, nil, ErrMalformed},
		{"empty", func(t *testing.T) string { return "" }, nil, ErrMalformed},
		{"no signature", func(t *testing.T) string {
			tok := issue(t, priv, nil)
			return tok[:strings.IndexByte(tok, '.')]
		}, nil, ErrMalformed},
		{"three parts", func(t *testing.T) string { return issue(t, priv, nil) + ".x" }, nil, ErrMalformed},
		{"padded", func(t *testing.T) string {
			payload := base64.URLEncoding.EncodeToString([]byte(body() + " "))
			return payload + "." + b64.EncodeToString(ed25519.Sign(priv, signed(payload)))
		}, nil, ErrMalformed},
		{"standard base64", func(t *testing.T) string {
			return forge(priv, body()) + "+/"
		}, nil, ErrMalformed},
		{"cut signature", func(t *testing.T) string {
			tok := issue(t, priv, nil)
			return tok[:len(tok)-4]
		}, nil, ErrMalformed},
		{"short signature", func(t *testing.T) string {
			tok := issue(t, priv, nil)
			return tok[:strings.IndexByte(tok, '.')+1] + b64.EncodeToString(make([]byte, ed25519.SignatureSize-1))
		}, nil, ErrMalformed},
		{"unknown claim", func(t *testing.T) string { return forge(priv, body(`"t-042"`, `"t-042","scope":"all"`)) }, nil, ErrMalformed},
		{"data after the claims", func(t *testing.T) string { return forge(priv, body()+"{}") }, nil, ErrMalformed},
		{"not an object", func(t *testing.T) string { return forge(priv, `[1]`) }, nil, ErrMalformed},
		{"no nonce", func(t *testing.T) string { return forge(priv, body(`,"nonce":"nonce-0123456789"`, ``)) }, nil, ErrMalformed},
		{"short nonce", func(t *testing.T) string { return forge(priv, body(`nonce-0123456789`, `nonce`)) }, nil, ErrMalformed},
		{"no serial", func(t *testing.T) string { return forge(priv, body(`"SN-0001"`, `""`)) }, nil, ErrMalformed},
		{"serial with a space", func(t *testing.T) string { return forge(priv, body(`"SN-0001"`, `"SN 0001"`)) }, nil, ErrMalformed},
		{"technician with a slash", func(t *testing.T) string { return forge(priv, body(`"t-042"`, `"t/042"`)) }, nil, ErrMalformed},
		{"technician with a newline", func(t *testing.T) string { return forge(priv, body(`"t-042"`, `"t-042\n"`)) }, nil, ErrMalformed},
		{"key ID too long", func(t *testing.T) string {
			return forge(priv, body(`"tms-1"`, `"`+strings.Repeat("k", maxField+1)+`"`))
		}, nil, ErrMalformed},
		{"expiry before issue", func(t *testing.T) string { return forge(priv, body(`"exp":`, `"exp":-`)) }, nil, ErrMalformed},
		{"times as strings", func(t *testing.T) string { return forge(priv, body(`"iat":`, `"iat":"`, `,"exp"`, `","exp"`)) }, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				v := &TokenVerifier{Keys: map[string]ed25519.PublicKey{testKID: pub}, Serial: testSerial}
				if tt.verify != nil {
					tt.verify(v)
				}
				tok := tt.token(t)
				c, err := v.Verify(tok)
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Fatalf("Verify: %v, want %v", err, tt.want)
				}
				if err != nil {
					return
				}
				if c.Technician != "t-042" || c.Serial != testSerial || c.KeyID != testKID || c.Nonce != testNonce ||
					c.IssuedAt.Location() != time.UTC || c.IssuedAt.Nanosecond() != 0 {
					t.Errorf("claims = %+v", c)
				}
			})
		})
	}
}

func TestIssueTokenRefuses(t *testing.T) {
	_, priv := testKey(1)
	tests := []struct {
		name   string
		priv   ed25519.PrivateKey
		kid    string
		modify func(*Claims)
	}{
		{"no key", nil, testKID, nil},
		{"short key", priv[:32], testKID, nil},
		{"no key ID", priv, "", nil},
		{"key ID with a slash", priv, "tms/1", nil},
		{"no technician", priv, testKID, func(c *Claims) { c.Technician = "" }},
		{"technician too long", priv, testKID, func(c *Claims) { c.Technician = strings.Repeat("t", maxField+1) }},
		{"no serial", priv, testKID, func(c *Claims) { c.Serial = "" }},
		{"no expiry", priv, testKID, func(c *Claims) { c.ExpiresAt = time.Time{} }},
		{"expiry at issue", priv, testKID, func(c *Claims) { c.ExpiresAt = c.IssuedAt }},
		{"nonce with a dot", priv, testKID, func(c *Claims) { c.Nonce = "nonce.0123456789" }},
		{"short nonce", priv, testKID, func(c *Claims) { c.Nonce = "0123456789" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClaims()
			if tt.modify != nil {
				tt.modify(&c)
			}
			if tok, err := IssueToken(tt.priv, tt.kid, c); err == nil {
				t.Errorf("IssueToken = %q, want an error", tok)
			}
		})
	}
}

func TestIssueTokenFills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv := testKey(1)
		v := &TokenVerifier{Keys: map[string]ed25519.PublicKey{testKID: pub}, Serial: testSerial}
		c := Claims{Technician: "t-042", Serial: testSerial, ExpiresAt: time.Now().Add(time.Hour)}
		var nonces []string
		for range 2 {
			tok, err := IssueToken(priv, testKID, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if !got.IssuedAt.Equal(time.Now()) || len(got.Nonce) != 22 {
				t.Errorf("claims = %+v, want issued now with a random nonce", got)
			}
			nonces = append(nonces, got.Nonce)
		}
		if nonces[0] == nonces[1] {
			t.Errorf("two tokens share the nonce %q", nonces[0])
		}
	})
}

func TestReplayGuard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv := testKey(1)
		v := &TokenVerifier{
			Keys:   map[string]ed25519.PublicKey{testKID: pub},
			Serial: testSerial,
			Leeway: time.Minute,
			Replay: &ReplayGuard{Capacity: 2},
		}
		short := issue(t, priv, func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(10 * time.Minute); c.Nonce = "nonce-aaaaaaaaaaaa" })
		long := issue(t, priv, func(c *Claims) { c.Nonce = "nonce-bbbbbbbbbbbb" })
		third := issue(t, priv, func(c *Claims) { c.Nonce = "nonce-cccccccccccc" })
		steps := []struct {
			wait  time.Duration
			token string
			want  error
		}{
			{0, short, nil},
			{0, short, ErrReplay},
			{0, long, nil},
			{0, long, ErrReplay},
			{0, third, ErrReplay}, // no room while short is unexpired
			{11 * time.Minute, short, ErrExpired},
			{0, third, nil}, // short was forgotten at its expiry plus the leeway
			{0, third, ErrReplay},
		}
		for i, s := range steps {
			time.Sleep(s.wait)
			_, err := v.Verify(s.token)
			if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
				t.Fatalf("step %d: %v, want %v", i, err, s.want)
			}
		}
		// A token that fails to verify takes no room.
		_, err := (&TokenVerifier{Keys: v.Keys, Serial: "SN-0002", Replay: v.Replay}).Verify(issue(t, priv, nil))
		if !errors.Is(err, ErrWrongDevice) || len(v.Replay.seen) != 2 {
			t.Errorf("a refused token: %v, %d remembered", err, len(v.Replay.seen))
		}
	})
}

func TestTokenAuthorize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv := testKey(1)
		v := &TokenVerifier{Keys: map[string]ed25519.PublicKey{testKID: pub}, Serial: testSerial}
		tok := issue(t, priv, nil)
		a, err := v.Authorize(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		want := Authorization{Method: MethodToken, Credential: "token:t-042/tms-1", At: time.Now()}
		if a != want {
			t.Errorf("Authorization = %+v, want %+v", a, want)
		}
		if _, err := v.Authorize(context.Background(), tok+"x"); !errors.Is(err, ErrMalformed) {
			t.Errorf("a bad token: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := v.Authorize(ctx, tok); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled: %v", err)
		}
	})
}
