package loadtest

import (
	"strings"
	"testing"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// A cluster's requests go to its nodes in turn, each node's own targets.
func TestSpreadTargeter(t *testing.T) {
	cfg, err := Config{Instances: 30, Services: 3, HeartbeatBatch: 1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	bases := []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}
	tr, err := spreadTargeter("heartbeat", bases, cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i := range 30 {
		var tg vegeta.Target
		if err := tr(&tg); err != nil {
			t.Fatal(err)
		}
		want := bases[i%3]
		if !strings.HasPrefix(tg.URL, want+"/api/registry/heartbeat.json") {
			t.Fatalf("request %d went to %s; want %s", i, tg.URL, want)
		}
		counts[string(tg.Body)]++
	}
	if len(counts) < 10 {
		t.Fatalf("only %d distinct bodies in 30 requests; want the instances spread", len(counts))
	}
}
