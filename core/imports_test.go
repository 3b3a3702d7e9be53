package core

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStayStandard enforces that core depends on the standard library
// only: no net/http, Hertz, sonic or any other module.
func TestImportsStayStandard(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("cannot list dependencies: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/artemis-go/artemis/core" {
			t.Errorf("core depends on non-standard package %s", dep)
		}
	}
	out, err = exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("cannot list dependencies: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net/http" || strings.HasPrefix(dep, "net/http/") {
			t.Errorf("core depends on %s", dep)
		}
	}
}
