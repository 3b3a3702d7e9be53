package core

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzRecord: a record's accessors give back exactly the instance it was
// encoded from, its JSON decodes to that instance, and so do the record and
// the encoded change of a change log entry (whose copy of the record has
// the change's envelope spliced in before the JSON, see writeEntry).
func FuzzRecord(f *testing.F) {
	f.Add("svc", "id-1", "10.0.0.1", "http://x/", "up", 8080, "k", "v", "k2", "")
	f.Add("s\"v\\c", "i\x01d", "\u2028", "http://é/", "", 0, "", "", "\x7f", "\t\n")
	f.Add("x", "y", "", "u", "down", 65535, "a", "\x00\x1f", "b", "\"}")
	f.Fuzz(func(t *testing.T, svc, id, ip, url, status string, port int, k1, v1, k2, v2 string) {
		inst := &Instance{RegionID: "default", ZoneID: "z" + k1, GroupID: v2, ServiceID: svc, InstanceID: id,
			MachineName: v1, IP: ip, Port: port, Protocol: k2, URL: url, HealthCheckURL: url + id, Status: status,
			Metadata: map[string]string{k1: v1, k2: v2}}
		if k1 == k2 {
			delete(inst.Metadata, k2)
			inst.Metadata[k1] = v1
		}
		if inst.Validate("default") != nil || strings0(inst.ServiceID, inst.InstanceID) {
			return
		}
		rec := NewRecord(inst)
		checkRecord(t, "record", rec, inst)

		r := newTestRegistry(t, Config{Shards: 1, ChangeLogSize: 4})
		r.Register([]*Instance{inst}, nil)
		changes, _, err := r.ChangesSince(r.Version()-1, nil)
		if err != nil || len(changes) != 1 {
			t.Fatalf("unexpected changes %d, %v", len(changes), err)
		}
		ch := changes[0]
		checkRecord(t, "change record", ch.Record, inst)
		want := append(appendChangeHead(nil, ChangeNew, ch.Time), rec.JSON()...)
		want = append(want, '}')
		if !bytes.Equal(ch.JSON(), want) {
			t.Fatalf("unexpected change JSON\n%s\nwant\n%s", ch.JSON(), want)
		}
		if ch.ServiceID != inst.ServiceID {
			t.Fatalf("unexpected change service %q; want %q", ch.ServiceID, inst.ServiceID)
		}
		checkRecord(t, "registry record", r.Service(inst.ServiceID).Records.At(0), inst)
	})
}

// strings0 reports whether a key field is blank (Validate refuses those
// after trimming; this only skips the empty ones it accepted otherwise).
func strings0(s ...string) bool {
	for _, v := range s {
		if v == "" {
			return true
		}
	}
	return false
}

// checkRecord fails t unless rec holds exactly inst and its JSON decodes
// to inst.
func checkRecord(t *testing.T, what string, rec *Record, inst *Instance) {
	t.Helper()
	want := *inst
	if len(want.Metadata) == 0 {
		want.Metadata = nil
	}
	if diff := cmp.Diff(want, rec.Instance()); diff != "" {
		t.Fatalf("unexpected %s accessors (-want +got):\n%s", what, diff)
	}
	if !utf8.Valid(rec.JSON()) || !json.Valid(rec.JSON()) {
		t.Fatalf("unexpected %s JSON, invalid: %q", what, rec.JSON())
	}
	var got Instance
	if err := json.Unmarshal(rec.JSON(), &got); err != nil {
		t.Fatalf("unexpected %s JSON %q: %v", what, rec.JSON(), err)
	}
	if len(got.Metadata) == 0 {
		got.Metadata = nil
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("unexpected %s JSON %s (-want +got):\n%s", what, rec.JSON(), diff)
	}
	if int(rec.size)%8 != 0 || strconv.Itoa(rec.Port()) != strconv.Itoa(inst.Port) {
		t.Fatalf("unexpected %s size %d or port %d", what, rec.size, rec.Port())
	}
}

// TestWideRecords: records too large for narrow spans (escaped values near
// the limits) use wide ones, on both sides of narrowMax, and keep every
// value through the registry, its snapshot and a change log entry.
func TestWideRecords(t *testing.T) {
	var narrow, wide bool
	for k := 0; k <= MaxMetadataBytes; k += 256 {
		inst := &Instance{RegionID: "default", ServiceID: "big", InstanceID: "one", URL: "http://x/",
			MachineName: strings.Repeat("\x01", MaxFieldLen), Metadata: map[string]string{"k": strings.Repeat("\x02", k)}}
		inst.HealthCheckURL = strings.Repeat("\x03", MaxFieldLen)
		for _, f := range []*string{&inst.ZoneID, &inst.GroupID, &inst.IP, &inst.Protocol, &inst.Status} {
			*f = strings.Repeat("\x04", MaxFieldLen)
		}
		rec := NewRecord(inst)
		if size := int(rec.size); size <= narrowMax-1024 || size > narrowMax+4096 {
			continue // far from the boundary
		}
		narrow = narrow || rec.wide == 0
		wide = wide || rec.wide != 0
		if (rec.wide != 0) != (int(rec.size) > narrowMax) {
			t.Fatalf("unexpected wide=%d for a blob of %d bytes (narrowMax %d)", rec.wide, rec.size, narrowMax)
		}
		checkRecord(t, "record", rec, inst)
		r := newTestRegistry(t, Config{Shards: 1, ChangeLogSize: 4})
		r.Register([]*Instance{inst}, nil)
		checkRecord(t, "registry record", r.Service("big").Records.At(0), inst)
		changes, _, err := r.ChangesSince(r.Version()-1, nil)
		if err != nil || len(changes) != 1 {
			t.Fatalf("unexpected changes %d, %v", len(changes), err)
		}
		checkRecord(t, "change record", changes[0].Record, inst)
	}
	if !narrow || !wide {
		t.Fatalf("unexpected sizes: narrow records near the boundary %v, wide ones %v; want both", narrow, wide)
	}
}
