package heartbeat

import "errors"

var (
	// ErrInvalidConfig reports a [Config] or [RegistryConfig] that cannot be
	// used: a missing Sender, a negative duration, bounds that cross. Run
	// and NewRegistry return it at once, wrapped with the field at fault.
	ErrInvalidConfig = errors.New("heartbeat: invalid config")

	// ErrNoResponse reports a Sender that returned neither a response nor
	// an error. The beat is treated as failed.
	ErrNoResponse = errors.New("heartbeat: sender returned no response")
)
