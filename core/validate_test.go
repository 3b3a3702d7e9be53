package core

import (
	"errors"
	"testing"
)

// Ids and other strings must be valid UTF-8: "raw\xff" as a serviceId made
// services-delta.json and leases.json carry a raw 0xFF byte in a JSON key.
func TestValidateRefusesInvalidUTF8(t *testing.T) {
	for name, edit := range map[string]func(*Instance){
		"serviceId":      func(i *Instance) { i.ServiceID = "raw\xff" },
		"instanceId":     func(i *Instance) { i.InstanceID = "dup\xfe" },
		"zoneId":         func(i *Instance) { i.ZoneID = "\xc3" },
		"url":            func(i *Instance) { i.URL = "http://x/\x80" },
		"metadata key":   func(i *Instance) { i.Metadata = map[string]string{"\xff": "v"} },
		"metadata value": func(i *Instance) { i.Metadata = map[string]string{"k": "\xed\xa0\x80"} }, // a surrogate
	} {
		inst := testInstance("svc", "i")
		edit(inst)
		if err := inst.Validate("default"); !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("%s: unexpected error %v; want ErrInvalidInstance", name, err)
		}
	}
	ok := testInstance("svc-\u212a\ufffd", "i-日本")
	ok.Metadata = map[string]string{"ключ": "значение"}
	if err := ok.Validate("default"); err != nil {
		t.Fatalf("valid UTF-8 refused: %v", err)
	}
}
