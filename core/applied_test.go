package core

import (
	"strings"
	"testing"
)

// The *Each calls report the record of every instance they applied, and
// only those: what a replicator forwards.
func TestAppliedRecords(t *testing.T) {
	r := newTestRegistry(t, Config{Region: "default"})
	defer r.Close()
	var got []string
	applied := func(rec *Record) { got = append(got, rec.InstanceID()+"@"+versionOf(rec)) }
	check := func(what string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: unexpected applied records %v; want %v", what, got, want)
		}
		got = got[:0]
	}
	a, b := testInstance("svc", "a"), testInstance("svc", "b")
	bad := testInstance("svc", "")
	other := testInstance("svc", "c")
	other.RegionID = "elsewhere"
	r.RegisterEach([]*Instance{a, nil, bad, other, b}, nil, applied)
	check("register", "a@1.2.3", "b@1.2.3")
	r.RegisterEach([]*Instance{a}, nil, applied) // a renewal reports the record too
	check("identical re-register", "a@1.2.3")
	a2 := *a
	a2.Metadata = map[string]string{"version": "2.0"}
	r.RegisterEach([]*Instance{&a2}, nil, applied)
	check("changed re-register", "a@2.0")
	r.HeartbeatEach([]*Instance{a, testInstance("svc", "unknown"), other}, nil, applied)
	check("heartbeat", "a@2.0")
	r.UnregisterEach([]*Instance{b, testInstance("svc", "unknown"), other}, nil, applied)
	check("unregister", "b@1.2.3")
	r.HeartbeatEach([]*Instance{b}, nil, applied)
	check("heartbeat after unregister")
}

// versionOf is the value of the record's "version" metadata.
func versionOf(r *Record) string {
	for i := range r.MetadataLen() {
		if k, v := r.Metadata(i); k == "version" {
			return v
		}
	}
	return ""
}
