package httptransport

import "errors"

var (
	// ErrConfig reports a [Config] or [HandlerConfig] that New or
	// NewHandler refuses, or a token set with [Client.SetToken] that
	// cannot be sent.
	ErrConfig = errors.New("httptransport: invalid configuration")

	// ErrBadResponse reports a response that breaks the protocol: a body
	// that does not decode or is larger than the limit, a partial response
	// for another range than the one asked, a register answer without a
	// usable token.
	ErrBadResponse = errors.New("httptransport: bad response")
)
