package store

import (
	"encoding/json"
	"testing"
)

// FuzzLogFilter: matching any body never panics, and a row written with a
// field matches a filter on that field's value in another case.
func FuzzLogFilter(f *testing.F) {
	f.Add([]byte(`{"instanceId":"A","complete":true}`), "instanceId", "a")
	f.Add([]byte(`{"groupId":12345678901234567}`), "groupId", "12345678901234567")
	f.Add([]byte(`not json`), "x", "y")
	f.Fuzz(func(t *testing.T, body []byte, field, value string) {
		q := compileLogQuery(LogQuery{Kind: KindGroup, Filters: map[string]string{field: value}})
		q.matchBody(body)
		if field == "" || value == "" {
			return
		}
		e := LogEntry{Kind: KindGroup, Fields: map[string]any{field: value}}
		enc, err := e.encodeBody(1)
		if err != nil {
			t.Fatalf("cannot encode: %v", err)
		}
		if _, indexed := map[string]bool{"operation": true, "operatorid": true, "serviceid": true, "complete": true}[foldService(field)]; indexed {
			return
		}
		var probe map[string]any
		if json.Unmarshal(enc, &probe) != nil || probe[field] != value {
			return // the field collides with a common one, or is not valid UTF-8
		}
		if !q.matchBody(enc) && trimmedEqual(value) {
			t.Fatalf("row %s does not match its own field %q=%q", enc, field, value)
		}
	})
}

// trimmedEqual reports whether v survives the filter's trimming unchanged
// (the filter trims, the stored value does not).
func trimmedEqual(v string) bool {
	return len(v) > 0 && v[0] != ' ' && v[len(v)-1] != ' ' && v[0] != '\t' && v[len(v)-1] != '\t' &&
		v[0] != '\n' && v[len(v)-1] != '\n' && v[0] != '\r' && v[len(v)-1] != '\r'
}

// FuzzNaturalKey: distinct folded key tuples never share a natural key.
func FuzzNaturalKey(f *testing.F) {
	f.Add("a", "b", "a", "b")
	f.Add("a\"", "b", "a", "\"b")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		if joinKey(a, b) == joinKey(c, d) && (joinKey(a) != joinKey(c) || joinKey(b) != joinKey(d)) {
			t.Fatalf("distinct tuples (%q, %q) and (%q, %q) share a key", a, b, c, d)
		}
	})
}
