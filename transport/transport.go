package transport

import (
	"context"
	"io"
	"time"
)

// Client is the protocol as a terminal calls it. Implementations carry the
// device's credentials and must be safe for concurrent use. Every method
// returns ctx.Err() promptly when ctx is done; protocol failures are
// [*Error]s.
type Client interface {
	// Register enrolls the terminal. On success the client uses the
	// returned token for every later call.
	Register(ctx context.Context, req *RegisterRequest) (*RegisterResponse, error)
	Heartbeat(ctx context.Context, req *HeartbeatRequest) (*HeartbeatResponse, error)
	Check(ctx context.Context, req *CheckRequest) (*CheckResponse, error)
	// OpenArtifact returns a reader of the requested bytes. It yields
	// exactly the bytes asked for: a body that ends early is an error
	// (io.ErrUnexpectedEOF), never a short success. The caller closes it.
	OpenArtifact(ctx context.Context, req ArtifactRequest) (io.ReadCloser, error)
	Report(ctx context.Context, req *ReportRequest) (*ReportResponse, error)
}

// ArtifactBody is what the reader [Client.OpenArtifact] returns can tell
// besides the bytes, when it implements it (both upkeep clients do).
type ArtifactBody interface {
	io.ReadCloser
	// ETag is the server's validator of what it served, "" if it sent none;
	// give it back as ArtifactRequest.IfRange.
	ETag() string
	// Whole reports that the server ignored the Range asked for (or, with
	// IfRange, that the file changed) and sent the whole artifact: the
	// reader skipped to the offset asked for, so the bytes are still the
	// ones asked for, but the ones before them were fetched for nothing.
	Whole() bool
}

// Service is the protocol as a server implements it. Requests reach it
// validated; deviceID is the identity [Service.Authenticate] returned for
// the caller's token. Methods return [*Error] (or a sentinel of this
// package) for protocol errors; anything else is sent as CodeInternal.
type Service interface {
	Register(ctx context.Context, req *RegisterRequest) (*RegisterResponse, error)
	// Authenticate maps a device token to a device ID, or returns an error
	// matching [ErrUnauthorized].
	Authenticate(ctx context.Context, token string) (deviceID string, err error)
	Heartbeat(ctx context.Context, deviceID string, req *HeartbeatRequest) (*HeartbeatResponse, error)
	Check(ctx context.Context, deviceID string, req *CheckRequest) (*CheckResponse, error)
	// Artifact returns the artifact with the given digest.
	Artifact(ctx context.Context, deviceID, digest string) (*ArtifactContent, error)
	Report(ctx context.Context, deviceID string, req *ReportRequest) (*ReportResponse, error)
}

// ArtifactContent is an artifact as a Service hands it to the handler. If
// Content is an io.Closer the handler closes it when done.
type ArtifactContent struct {
	Content io.ReadSeeker
	Size    int64
	ModTime time.Time
	// ETag identifies this exact content, for If-Range; a quoted string.
	ETag string
}
