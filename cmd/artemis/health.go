package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// runHealth checks a node, for container health checks and readiness
// probes where no shell or curl exists: exit 0 when /health answers OK
// (with --up: when the node reports status up), 1 otherwise.
func runHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("artemis health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the node to check")
	up := fs.Bool("up", false, "require the node's status to be up (ready to serve), not only alive")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c := &http.Client{Timeout: *timeout}
	base := strings.TrimRight(*url, "/")
	if !*up {
		resp, err := c.Get(base + "/health")
		if err != nil {
			fmt.Fprintln(stderr, "artemis health:", err)
			return 1
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			fmt.Fprintln(stderr, "artemis health: HTTP", resp.StatusCode)
			return 1
		}
		fmt.Fprintln(stdout, "alive")
		return 0
	}
	resp, err := c.Post(base+"/api/status/node.json", "application/json", strings.NewReader("{}"))
	if err != nil {
		fmt.Fprintln(stderr, "artemis health:", err)
		return 1
	}
	defer resp.Body.Close()
	var a struct{ NodeStatus struct{ Status string } }
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		fmt.Fprintln(stderr, "artemis health: cannot read the node status:", err)
		return 1
	}
	fmt.Fprintln(stdout, a.NodeStatus.Status)
	if a.NodeStatus.Status != "up" {
		return 1
	}
	return 0
}
