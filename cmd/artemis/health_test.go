package main

import (
	"bytes"
	"testing"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/server"
	"github.com/artemis-go/artemis/server/servertest"
)

func TestHealthCommand(t *testing.T) {
	n := servertest.Start(t, core.Config{}, server.Config{})
	f := func(want int, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		if got := run(append([]string{"health"}, args...), &out, &errb); got != want {
			t.Fatalf("artemis health %v exited %d (%s%s); want %d", args, got, out.String(), errb.String(), want)
		}
	}
	f(0, "--url", n.URL)
	f(0, "--url", n.URL, "--up")
	f(1, "--url", "http://"+freeAddr(t))
	f(1, "--url", "http://"+freeAddr(t), "--up")
}
