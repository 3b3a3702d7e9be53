package server

import (
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/artemis-go/artemis/console"
)

// mountConsole serves the web console under /console/ and redirects GET /
// there (the NoRoute handler answers every other unknown path). The
// console reads the registry for its summary; everything else it shows it
// reads from this node's public API, from the browser.
func (s *Server) mountConsole(e *route.Engine) {
	console.Register(e, console.Options{Registry: s.reg})
}
