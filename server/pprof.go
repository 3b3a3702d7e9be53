package server

import (
	"context"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/adaptor"
	"github.com/cloudwego/hertz/pkg/route"
)

// Profiling rates set while pprof is served: one in 100 mutex contention
// events, and blocking events sampled about every 10 µs of blocking.
const (
	mutexProfileFraction = 100
	blockProfileRateNs   = 10_000
)

// servePprof mounts net/http/pprof under /debug/pprof/ through Hertz's
// adaptor, answering loopback clients only unless allowRemote is set.
func servePprof(e *route.Engine, allowRemote bool) {
	runtime.SetMutexProfileFraction(mutexProfileFraction)
	runtime.SetBlockProfileRate(blockProfileRateNs)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	h := adaptor.HertzHandler(mux)
	guard := func(ctx context.Context, c *app.RequestContext) {
		if !allowRemote && !isLoopback(c.RemoteAddr()) {
			writeJSON(c, 403, statusOnly{failStatus(codeNoPermission, "pprof answers loopback clients only")})
			return
		}
		h(ctx, c)
	}
	e.GET("/debug/pprof/*name", guard)
	e.POST("/debug/pprof/*name", guard)
}

func isLoopback(addr net.Addr) bool {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
