package management

import (
	"encoding/json"
	"testing"

	"github.com/artemis-go/artemis/core"
)

// FuzzExtensions: any extensions value decodes to text the log can store,
// and a JSON string decodes to its value.
func FuzzExtensions(f *testing.F) {
	for _, s := range []string{``, `null`, `"{}"`, `{"a":"b"}`, `"x"`, `" "`, `[1,2]`, `"\u0000"`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a := Audit{Extensions: raw}
		got := a.extensions()
		if got == "" {
			t.Fatalf("unexpected empty extensions for %q; want at least {}", raw)
		}
		var s string
		if json.Unmarshal(raw, &s) == nil && !blank(s) && got != s {
			t.Fatalf("unexpected extensions for string %q; got %q; want %q", raw, got, s)
		}
	})
}

// FuzzKeys: the filter's lookup keys fold ASCII case and nothing else, and
// distinct folded parts never share a key.
func FuzzKeys(f *testing.F) {
	f.Add("Region", "Svc/Zone", "a", "b")
	f.Add("r\x00", "", "r", "\x00")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		k1 := fkey(a, b)
		if k1 != fkey(core.FoldKey(a), core.FoldKey(b)) {
			t.Fatalf("unexpected case-sensitive key for %q, %q", a, b)
		}
		var buf [8]byte
		if string(appendKey(buf[:0], a, b)) != k1 {
			t.Fatalf("appendKey differs from fkey for %q, %q", a, b)
		}
		same := core.FoldKey(trimSpace(a)) == core.FoldKey(trimSpace(c)) && core.FoldKey(trimSpace(b)) == core.FoldKey(trimSpace(d))
		if !same && k1 == fkey(c, d) && !containsNUL(a, b, c, d) {
			t.Fatalf("distinct keys collide: (%q, %q) and (%q, %q)", a, b, c, d)
		}
	})
}

func containsNUL(ss ...string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				return true
			}
		}
	}
	return false
}
