package transporttest

import "errors"

// ErrUnknownArtifact reports a knob aimed at an artifact the server does
// not hold.
var ErrUnknownArtifact = errors.New("transporttest: unknown artifact")
