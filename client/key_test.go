package client

import (
	"testing"

	"github.com/artemis-go/artemis/core"
)

func TestSameKey(t *testing.T) {
	f := func(a, b string, want bool) {
		t.Helper()
		if got := sameKey(a, b); got != want {
			t.Fatalf("unexpected sameKey(%q, %q); got %v; want %v", a, b, got, want)
		}
	}
	f("", "", true)
	f("kafka", "KAFKA", true)
	f("Kafka", "kAFKA", true)
	f("kafka", kelvinKafka, false)
	f(kelvinKafka, kelvinKafka, true)
	f("kafka", "kafk", false)
	f("straße", "STRASSE", false)
	f("é", "É", false) // non-ASCII compares exactly
	f("a\x00b", "A\x00B", true)
	f("[", "{", false) // '[' + 0x20 == '{': only letters fold
}

func TestSameKeyAgreesWithFoldKey(t *testing.T) {
	keys := []string{"", "kafka", "KAFKA", "Kafka", kelvinKafka, "straße", "STRASSE", "é", "É", "[", "{", "@", "`", "Z", "z"}
	for _, a := range keys {
		for _, b := range keys {
			if got, want := sameKey(a, b), core.FoldKey(a) == core.FoldKey(b); got != want {
				t.Fatalf("unexpected sameKey(%q, %q); got %v; want %v (core.FoldKey)", a, b, got, want)
			}
		}
	}
}
