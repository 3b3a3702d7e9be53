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

// FuzzLowerInto holds the eight-bytes-at-a-time lowerInto to the plain
// byte loop, on any bytes and any alignment of what precedes them.
func FuzzLowerInto(f *testing.F) {
	f.Add("", "MyService-ABC:8080/Z[@`{")
	f.Add("x", "\xc3\x89\xff\x80AZaz@[`{\x00")
	f.Fuzz(func(t *testing.T, prefix, s string) {
		var want []byte
		want = append(want, prefix...)
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			want = append(want, c)
		}
		if got := lowerInto([]byte(prefix), s); string(got) != string(want) {
			t.Fatalf("lowerInto(%q) = %q; want %q", s, got, want)
		}
	})
}
