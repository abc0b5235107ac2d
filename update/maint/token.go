package maint

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

const (
	// MaxTokenSize is the longest token Verify reads, in bytes; a longer
	// one is refused before it is parsed.
	MaxTokenSize = 4 << 10
	// DefaultMaxLifetime is the longest lifetime (ExpiresAt − IssuedAt) a
	// [TokenVerifier] accepts by default.
	DefaultMaxLifetime = 24 * time.Hour
	// DefaultReplayCapacity is how many unexpired tokens a [ReplayGuard]
	// remembers by default.
	DefaultReplayCapacity = 1024

	// tokenContext prefixes what is signed, so that a signature made for
	// anything else (a release manifest) is never a token's, even under
	// the same key.
	tokenContext = "upkeep maintenance token v1\n"
	maxField     = 64
	minNonce     = 16
	maxUnix      = 1 << 40 // far beyond any real date; keeps time arithmetic sane
)

var b64 = base64.RawURLEncoding.Strict()

// Claims are what a technician token says: which technician may open the
// maintenance menu of which terminal, and when.
//
// Technician and KeyID hold 1 to 64 of the characters A–Z a–z 0–9 . _ -
// (and @ for Technician); Serial 1 to 64 printable ASCII characters other
// than space; Nonce 16 to 64 of A–Z a–z 0–9 _ -. Times are kept to the
// second.
type Claims struct {
	// Technician identifies the technician the token was issued to.
	Technician string
	// Serial is the serial number of the one terminal the token opens.
	// Required: there is no token for any terminal.
	Serial string
	// IssuedAt is when the token was issued. IssueToken fills a zero one
	// with the current time.
	IssuedAt time.Time
	// ExpiresAt is when the token stops being valid. Required.
	ExpiresAt time.Time
	// Nonce makes each token unique, for a [ReplayGuard]. IssueToken fills
	// an empty one with 16 random bytes.
	Nonce string
	// KeyID names the key that signed the token: IssueToken sets it to its
	// keyID argument, Verify returns it.
	KeyID string
}

// wireClaims is the claims' JSON, signed as it is encoded in the token.
type wireClaims struct {
	KeyID      string `json:"kid"`
	Technician string `json:"tech"`
	Serial     string `json:"serial"`
	IssuedAt   int64  `json:"iat"`
	ExpiresAt  int64  `json:"exp"`
	Nonce      string `json:"nonce"`
}

// IssueToken signs claims with priv, the private half of the key the
// terminals know as keyID, and returns the token: the claims' JSON and the
// Ed25519 signature, each base64url-encoded without padding, joined by a
// dot. The server issues tokens; it uses only the standard library. Claims
// a verifier would refuse as malformed are refused with [ErrMalformed];
// the verifier's own limit on the lifetime is not known here.
func IssueToken(priv ed25519.PrivateKey, keyID string, claims Claims) (string, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("maint: private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	if claims.IssuedAt.IsZero() {
		claims.IssuedAt = time.Now()
	}
	if claims.Nonce == "" {
		var n [16]byte
		rand.Read(n[:])
		claims.Nonce = b64.EncodeToString(n[:])
	}
	w := wireClaims{
		KeyID:      keyID,
		Technician: claims.Technician,
		Serial:     claims.Serial,
		IssuedAt:   claims.IssuedAt.Unix(),
		ExpiresAt:  claims.ExpiresAt.Unix(),
		Nonce:      claims.Nonce,
	}
	if claims.ExpiresAt.IsZero() {
		w.ExpiresAt = 0
	}
	if err := w.validate(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	body, err := json.Marshal(w)
	if err != nil {
		return "", err
	}
	payload := b64.EncodeToString(body)
	sig := ed25519.Sign(priv, signed(payload))
	return payload + "." + b64.EncodeToString(sig), nil
}

func signed(payload string) []byte {
	return append([]byte(tokenContext), payload...)
}

// TokenVerifier accepts the technician tokens issued for one terminal.
// Its zero value accepts nothing: a token is accepted only if signed by
// one of Keys, for Serial, valid now and within MaxLifetime. It is safe
// for concurrent use as long as its fields are not changed.
type TokenVerifier struct {
	// Keys are the servers' public keys, by key ID. A key of the wrong
	// size is as unknown as a missing one.
	Keys map[string]ed25519.PublicKey
	// Serial is this terminal's serial number. Empty refuses every token.
	Serial string
	// MaxLifetime is the longest lifetime a token may have, whatever it
	// says. Zero (or negative) means [DefaultMaxLifetime].
	MaxLifetime time.Duration
	// Leeway is the clock skew allowed at either end of a token's life.
	// Zero means none.
	Leeway time.Duration
	// Replay, if not nil, accepts each token only once. Nil accepts a
	// token as often as it is presented during its life.
	Replay *ReplayGuard
}

// Verify checks token and returns its claims. It fails with an error
// matching [ErrMalformed], [ErrUnknownKey], [ErrSignature],
// [ErrWrongDevice], [ErrExpired] or [ErrReplay]. Nothing of a token larger
// than [MaxTokenSize] is parsed.
func (v *TokenVerifier) Verify(token string) (Claims, error) {
	return v.verify(token, time.Now())
}

// Authorize verifies token and returns its [Authorization], whose
// Credential is "token:<technician>/<key ID>". ctx is looked at before
// anything else.
func (v *TokenVerifier) Authorize(ctx context.Context, token string) (Authorization, error) {
	if err := ctx.Err(); err != nil {
		return Authorization{}, err
	}
	now := time.Now()
	c, err := v.verify(token, now)
	if err != nil {
		return Authorization{}, err
	}
	return Authorization{Method: MethodToken, Credential: "token:" + c.Technician + "/" + c.KeyID, At: now}, nil
}

func (v *TokenVerifier) verify(token string, now time.Time) (Claims, error) {
	w, payload, sig, err := parseToken(token)
	if err != nil {
		return Claims{}, err
	}
	key, ok := v.Keys[w.KeyID]
	if !ok || len(key) != ed25519.PublicKeySize {
		return Claims{}, fmt.Errorf("%w: %q", ErrUnknownKey, w.KeyID)
	}
	if !ed25519.Verify(key, signed(payload), sig) {
		return Claims{}, fmt.Errorf("%w: key %q", ErrSignature, w.KeyID)
	}
	if w.Serial != v.Serial {
		return Claims{}, fmt.Errorf("%w: issued for %q", ErrWrongDevice, w.Serial)
	}
	c := w.claims()
	maxLife := v.MaxLifetime
	if maxLife <= 0 {
		maxLife = DefaultMaxLifetime
	}
	leeway := max(v.Leeway, 0)
	switch life := c.ExpiresAt.Sub(c.IssuedAt); {
	case life > maxLife:
		return Claims{}, fmt.Errorf("%w: lifetime %v is above the maximum %v", ErrExpired, life, maxLife)
	case now.Add(leeway).Before(c.IssuedAt):
		return Claims{}, fmt.Errorf("%w: issued at %s, in the future", ErrExpired, c.IssuedAt.Format(time.RFC3339))
	case !now.Before(c.ExpiresAt.Add(leeway)):
		return Claims{}, fmt.Errorf("%w: expired at %s", ErrExpired, c.ExpiresAt.Format(time.RFC3339))
	}
	if v.Replay != nil {
		if err := v.Replay.use(w.KeyID+"/"+w.Nonce, c.ExpiresAt.Add(leeway), now); err != nil {
			return Claims{}, err
		}
	}
	return c, nil
}

// parseToken splits and decodes a token, checking its form but not its
// signature: the claims, the signed payload and the signature.
func parseToken(token string) (w wireClaims, payload string, sig []byte, err error) {
	if len(token) > MaxTokenSize {
		return w, "", nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(token), MaxTokenSize)
	}
	payload, sigText, ok := strings.Cut(token, ".")
	if !ok {
		return w, "", nil, fmt.Errorf("%w: no signature", ErrMalformed)
	}
	body, err := b64.DecodeString(payload)
	if err != nil {
		return w, "", nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	sig, err = b64.DecodeString(sigText)
	if err != nil {
		return w, "", nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return w, "", nil, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(sig))
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return w, "", nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if _, err := d.Token(); err == nil {
		return w, "", nil, fmt.Errorf("%w: data after the claims", ErrMalformed)
	}
	if err := w.validate(); err != nil {
		return w, "", nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return w, payload, sig, nil
}

func (w *wireClaims) validate() error {
	switch {
	case !validField(w.KeyID, 1, isIDChar):
		return fmt.Errorf("key ID %q", w.KeyID)
	case !validField(w.Technician, 1, func(c byte) bool { return isIDChar(c) || c == '@' }):
		return fmt.Errorf("technician %q", w.Technician)
	case !validField(w.Serial, 1, func(c byte) bool { return c > ' ' && c < 0x7f }):
		return fmt.Errorf("serial %q", w.Serial)
	case !validField(w.Nonce, minNonce, func(c byte) bool { return isIDChar(c) && c != '.' }):
		return fmt.Errorf("nonce %q", w.Nonce)
	case w.IssuedAt <= 0 || w.IssuedAt >= maxUnix:
		return fmt.Errorf("issued at %d", w.IssuedAt)
	case w.ExpiresAt <= w.IssuedAt || w.ExpiresAt >= maxUnix:
		return fmt.Errorf("expires at %d, issued at %d", w.ExpiresAt, w.IssuedAt)
	}
	return nil
}

func validField(s string, minLen int, ok func(byte) bool) bool {
	if len(s) < minLen || len(s) > maxField {
		return false
	}
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

func (w *wireClaims) claims() Claims {
	return Claims{
		Technician: w.Technician,
		Serial:     w.Serial,
		IssuedAt:   time.Unix(w.IssuedAt, 0).UTC(),
		ExpiresAt:  time.Unix(w.ExpiresAt, 0).UTC(),
		Nonce:      w.Nonce,
		KeyID:      w.KeyID,
	}
}

// ReplayGuard remembers the tokens a [TokenVerifier] accepted until they
// expire, so that each is accepted once. It remembers in memory only: a
// reboot forgets, and a token's short life bounds what that allows. Its
// zero value is ready to use; it must not be copied after first use. It
// is safe for concurrent use.
type ReplayGuard struct {
	// Capacity is how many unexpired tokens it remembers at most. A token
	// it has no room for is refused with [ErrReplay]: only tokens that
	// verified take room, so only the server's keys can fill it. Zero
	// means [DefaultReplayCapacity].
	Capacity int

	mu   sync.Mutex
	seen map[string]time.Time // token key → when it can be forgotten
}

// use records key until forget, refusing a key already recorded.
func (g *ReplayGuard) use(key string, forget, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.seen[key]; ok {
		return ErrReplay
	}
	capacity := g.Capacity
	if capacity <= 0 {
		capacity = DefaultReplayCapacity
	}
	if len(g.seen) >= capacity {
		for k, t := range g.seen {
			if !now.Before(t) {
				delete(g.seen, k)
			}
		}
		if len(g.seen) >= capacity {
			return fmt.Errorf("%w: %d unexpired tokens remembered, no room for another", ErrReplay, len(g.seen))
		}
	}
	if g.seen == nil {
		g.seen = make(map[string]time.Time)
	}
	g.seen[key] = forget
	return nil
}
