package core

import (
	"testing"
	"unsafe"
)

func TestFoldKey(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := FoldKey(in); got != want {
			t.Fatalf("unexpected FoldKey(%q); got %q; want %q", in, got, want)
		}
	}
	f("", "")
	f("kafka", "kafka")
	f("MyService.V1", "myservice.v1")
	f("\u212Aafka", "\u212Aafka") // KELVIN SIGN is not ASCII: not folded
	f("ÄBC", "Äbc")
	// The result owns its bytes even when nothing changes.
	buf := []byte("lower")
	got := FoldKey(unsafe.String(&buf[0], len(buf)))
	buf[0] = 'X'
	if got != "lower" {
		t.Fatalf("FoldKey aliases its input; got %q after the input changed", got)
	}
}
