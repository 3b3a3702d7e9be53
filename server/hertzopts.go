package server

import (
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/config"
)

// TransportOptions returns the Hertz options that shape how a Server built
// with cfg is served: its listen address, body and header limits,
// timeouts, exit wait and routing behaviour. They are for a twin that must
// be served exactly so, the load generator's no-op server; they leave out
// what is the registry's own work per connection and request (connection
// tracking and the request-start tracer), which the twin must not pay.
//
// New serves with them and its own hooks; TestTransportOptionsMatchNew
// holds the two together.
func TransportOptions(cfg Config) []config.Option {
	cfg = cfg.withDefaults()
	return []config.Option{
		server.WithHostPorts(cfg.Addr),
		server.WithMaxRequestBodySize(cfg.MaxBodyBytes + bodySlack),
		server.WithMaxHeaderBytes(cfg.MaxHeaderBytes),
		server.WithReadTimeout(cfg.ReadTimeout),
		server.WithWriteTimeout(cfg.WriteTimeout),
		server.WithIdleTimeout(cfg.IdleTimeout),
		server.WithKeepAliveTimeout(cfg.IdleTimeout),
		server.WithExitWaitTime(defaultExitWait),
		server.WithDisablePrintRoute(true),
		server.WithHandleMethodNotAllowed(true),
		server.WithRedirectTrailingSlash(false),
		server.WithRedirectFixedPath(false),
	}
}
