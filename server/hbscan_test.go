package server

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scanSeeds are bodies the scanner accepts and bodies it must decline,
// the fuzz target's seeds and the unit tests' inputs.
var scanSeeds = []string{
	`{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i"}]}`,
	`{"Instances":[{"RegionId":"sha","ServiceId":"s","InstanceId":"i","IP":"10.0.0.1","Port":80}]}`,
	`{"instances":[` + instA + `,` + instB + `,null,{}]}`,
	` { "instances" : [ { "regionId" : "sha" , "serviceId" : "s" , "instanceId" : null } ] , "x" : [1,-2.5e+3,true,false,null,{"a":[{}]}] } `,
	`{"instances":[{"regionId":"sha","serviceId":"服务","instanceId":"i","metadata":{"k":"v\"\\\/\b\f\n\r\t\u00e9","键":"值"}}]}`,
	`{"instances":[],"other":{}}`,
	`{"instances":null}`,
	`{}`,
	`{"x":1}`,
	// Declined: the general decoder answers these.
	`{"instances":[{"regionI\u0064":"sha","serviceId":"s","instanceId":"i"}]}`,
	`{"instances":[{"regionId":"sh\u0061","serviceId":"s","instanceId":"i"}]}`,
	`{"instances":[{"regionId":"sha","regionid":"SHA","serviceId":"s","instanceId":"i"}]}`,
	`{"instances":[{"regionId":"sha"}],"INSTANCES":[]}`,
	`{"instances":[{"regionId":1,"serviceId":"s","instanceId":"i"}]}`,
	`{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i","port":01}]}`,
	`{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i\xff"}]}`,
	`{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i","url":"\xc3\x28"}]}`,
	`{"instances":[1]}`,
	`{"instances":{}}`,
	`[{"instances":[]}]`,
	`null`,
	``,
	`{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i"}]} x`,
	`{"instances":[{"regionId":"sha","serviceId":"s","instanceId":"i"},]}`,
	`{"instances":[{"ſerviceId":"s"}]}`,
	`{"instances":[{"regionId":"sha","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}]}`,
	`{"instances":[{"regionId":"sha","x":"\u12"}]}`,
	`{"instances":[{"regionId":"sha","x":tru}]}`,
	"{\"instances\":[{\"regionId\":\"a\tb\"}]}",
}

// FuzzHeartbeatScanner: on every input the scanner accepts, the general
// decoder succeeds and yields the same keys in the same order, so the
// registry is handed the same instances whichever decoded the body.
func FuzzHeartbeatScanner(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, ok := scanKeys(body, nil)
		if !ok {
			return
		}
		var want keysRequest
		if err := json.UnmarshalFromString(string(body), &want); err != nil {
			t.Fatalf("the scanner accepted what the general decoder refuses (%v): %q", err, body)
		}
		if len(keys) != len(want.Instances) || len(keys) > 0 && !cmp.Equal(keys, want.Instances) {
			t.Fatalf("unexpected keys of %q; got %+v; want %+v", body, keys, want.Instances)
		}
	})
}

func TestScanKeys(t *testing.T) {
	f := func(body string, want []instanceKey) {
		t.Helper()
		got, ok := scanKeys([]byte(body), nil)
		if !ok {
			t.Fatalf("the scanner declined %q", body)
		}
		if len(got) != len(want) || len(got) > 0 && !cmp.Equal(got, want) {
			t.Fatalf("unexpected keys of %q; got %+v; want %+v", body, got, want)
		}
	}
	k := func(r, s, i string) instanceKey { return instanceKey{RegionID: r, ServiceID: s, InstanceID: i} }
	f(scanSeeds[0], []instanceKey{k("sha", "s", "i")})
	f(scanSeeds[1], []instanceKey{k("sha", "s", "i")})
	f(scanSeeds[2], []instanceKey{k("sha", "Order-Service", "a"), k("SHA", "order-service", "b"), {}, {}})
	f(scanSeeds[3], []instanceKey{k("sha", "s", "")})
	f(scanSeeds[4], []instanceKey{k("sha", "服务", "i")})
	f(scanSeeds[5], nil)
	f(scanSeeds[6], nil)
	f(scanSeeds[7], nil)
	f(scanSeeds[8], nil)
}

// TestScanKeysDeclines: what the scanner does not fully understand goes to
// the general decoder.
func TestScanKeysDeclines(t *testing.T) {
	for _, body := range scanSeeds[9:] {
		if got, ok := scanKeys([]byte(body), make([]instanceKey, 0, 4)); ok {
			t.Fatalf("the scanner accepted %q: %+v", body, got)
		}
	}
}

// TestScanKeysReusesItsSlice: keys go into the slice passed, from its
// start, so a pooled batch allocates nothing once it has grown.
func TestScanKeysReusesItsSlice(t *testing.T) {
	buf := make([]instanceKey, 1, 4)
	buf[0] = instanceKey{RegionID: "stale"}
	got, ok := scanKeys([]byte(scanSeeds[0]), buf)
	if !ok || len(got) != 1 || &got[0] != &buf[0] || got[0].RegionID != "sha" {
		t.Fatalf("unexpected result; got %+v (ok %v); want one key in the slice passed", got, ok)
	}
}

// TestHeartbeatScannedOrNotAnswersAlike: a body the scanner reads and the
// same body made to go to the general decoder (an unknown key written with
// an escape, which the scanner declines and the decoder ignores) get the
// same answer, over HTTP and WebSocket, for success, partial failure (other
// region, unknown instance), null entries and every refusal.
func TestHeartbeatScannedOrNotAnswersAlike(t *testing.T) {
	s := newTestServer(t, Config{})
	if r := do(s, "POST", "/api/registry/register.json", `{"instances":[`+instA+`,`+instB+`]}`); r.code != 200 {
		t.Fatalf("cannot register: %s", r.body)
	}
	declined := func(body string) string {
		if body == "{}" {
			return `{"\u0078":1}`
		}
		return strings.Replace(body, "{", `{"\u0078":1,`, 1)
	}
	for _, body := range []string{
		`{"instances":[` + instA + `]}`,
		`{"instances":[` + instA + `,` + instB + `]}`,
		`{"instances":[{"regionId":"other","serviceId":"order-service","instanceId":"a"},{"regionId":"sha","serviceId":"order-service","instanceId":"nope"}]}`,
		`{"Instances":[null,{"RegionID":"SHA","ServiceID":"ORDER-SERVICE","InstanceID":"A"}]}`,
		`{"instances":[null]}`,
		`{"instances":[{}]}`,
		`{"instances":[]}`,
		`{"instances":null}`,
		`{}`,
	} {
		if _, ok := scanKeys([]byte(body), nil); !ok {
			t.Fatalf("the scanner declined %q", body)
		}
		if _, ok := scanKeys([]byte(declined(body)), nil); ok {
			t.Fatalf("the scanner accepted %q", declined(body))
		}
		fast := do(s, "POST", "/api/registry/heartbeat.json", body)
		slow := do(s, "POST", "/api/registry/heartbeat.json", declined(body))
		if fast.code != slow.code || fast.body != slow.body {
			t.Fatalf("unexpected answer to %q; got %d %s; want %d %s (the general decoder's)", body, fast.code, fast.body, slow.code, slow.body)
		}
		gone := strings.ReplaceAll(strings.ReplaceAll(body, `"a"`, `"gone"`), `"A"`, `"gone"`) // registered instances stay
		fast = do(s, "POST", "/api/registry/unregister.json", gone)
		slow = do(s, "POST", "/api/registry/unregister.json", declined(gone))
		if fast.code != slow.code || fast.body != slow.body {
			t.Fatalf("unexpected unregister answer to %q; got %d %s; want %d %s", body, fast.code, fast.body, slow.code, slow.body)
		}
		if got, want := string(s.wsHeartbeat([]byte(body))), string(s.wsHeartbeat([]byte(declined(body)))); got != want {
			t.Fatalf("unexpected WebSocket answer to %q; got %s; want %s", body, got, want)
		}
	}
}

// TestPlainASCII: the eight-at-a-time scan ends the run where a byte-wise
// scan does, for every byte value at every position of a word and its
// tail, and with a second stop byte after the first (borrows).
func TestPlainASCII(t *testing.T) {
	naive := func(b []byte) int {
		for i, c := range b {
			if c >= 0x80 || !plain[c] {
				return i
			}
		}
		return len(b)
	}
	for n := range 20 {
		for pos := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				if pos+1 < n {
					b[pos+1] = 0
				}
				if got, want := plainASCII(b), naive(b); got != want {
					t.Fatalf("unexpected run of %q; got %d; want %d", b, got, want)
				}
			}
		}
	}
}

// TestASCIIFoldEqual: the word-at-a-time comparison agrees with
// strings.EqualFold on ASCII for every byte value at every position of the
// names the scanner looks for (a word and a tail), and on lengths.
func TestASCIIFoldEqual(t *testing.T) {
	for _, name := range []string{"instances", "regionid", "serviceid", "instanceid"} {
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("name %q has a byte other than a-z: asciiFoldEqual would be wrong for it", name)
		}
		for pos := range len(name) {
			for c := range 128 {
				for _, base := range []string{name, strings.ToUpper(name)} {
					s := []byte(base)
					s[pos] = byte(c)
					if got, want := asciiFoldEqual(string(s), name), strings.EqualFold(string(s), name); got != want {
						t.Fatalf("asciiFoldEqual(%q, %q) = %v; want %v", s, name, got, want)
					}
				}
			}
		}
		if asciiFoldEqual(name[1:], name) || asciiFoldEqual(name+"s", name) {
			t.Fatalf("a name of another length matched %q", name)
		}
	}
}
