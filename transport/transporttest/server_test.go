package transporttest

import (
	"testing"

	"github.com/upkeephq/upkeep/transport"
)

func TestInMemoryClient(t *testing.T) {
	TestClient(t, func(t *testing.T, srv *Server) transport.Client { return srv.Client() })
}
