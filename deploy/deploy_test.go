package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The Kubernetes manifests parse, and hold what the README promises: a
// StatefulSet behind a headless Service that publishes starting pods, peers
// by DNS, readiness on node status up, non-root, and a disruption budget.
func TestKubernetesManifests(t *testing.T) {
	b, err := os.ReadFile("kubernetes/artemis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("cannot parse the manifests: %v", err)
		}
		name := doc["metadata"].(map[string]any)["name"].(string)
		kinds[doc["kind"].(string)+"/"+name] = doc
	}
	for _, want := range []string{"Service/artemis-peers", "Service/artemis", "StatefulSet/artemis", "PodDisruptionBudget/artemis", "Secret/artemis-cluster"} {
		if kinds[want] == nil {
			t.Fatalf("the manifests lack %s", want)
		}
	}
	headless := kinds["Service/artemis-peers"]["spec"].(map[string]any)
	if headless["clusterIP"] != "None" || headless["publishNotReadyAddresses"] != true {
		t.Fatalf("the peers Service is not headless with not-ready addresses published: %v", headless)
	}
	text := string(b)
	for _, want := range []string{"ARTEMIS_CLUSTER_PEERS", "http://artemis-peers:8080", "ARTEMIS_SERVER_NODEURL", "--up", "runAsNonRoot: true", "ARTEMIS_CLUSTER_TOKEN"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the manifests lack %q", want)
		}
	}
}

// The Dockerfile builds a static binary and runs it as non-root with a
// health check.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER 65532", "HEALTHCHECK", "AS build", "\"health\""} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("the Dockerfile lacks %q", want)
		}
	}
}

// cluster.sh is valid shell.
func TestClusterScript(t *testing.T) {
	if out, err := exec.Command("bash", "-n", "cluster.sh").CombinedOutput(); err != nil {
		t.Fatalf("cluster.sh: %v\n%s", err, out)
	}
}
