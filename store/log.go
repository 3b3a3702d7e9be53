package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/artemis-go/artemis/core"
)

// DefaultLogLimit is the most log rows a query returns when LogQuery.Limit
// is zero: the newest ones, oldest first.
const DefaultLogLimit = 10000

// LogEntry is one operation log row. Every mutation writes its rows in the
// transaction of the change (Tx.Log).
//
// On write the caller fills Kind, Operation, OperatorID, Token, Complete,
// ServiceID and Fields (the kind's fields of contract section 9.5; the
// common ones are added by the store). On read the store fills ID, Kind,
// CreateTime and Body, the row as a JSON object without its id.
type LogEntry struct {
	ID         int64
	Kind       Kind
	Operation  string
	OperatorID string
	Token      string
	Complete   bool
	ServiceID  string         // the service the row concerns, if any; indexed for filters
	Fields     map[string]any // write only
	CreateTime int64          // epoch ms; set by the store
	Body       []byte         // read only
}

// MarshalJSON encodes a read row as its wire object: the id, then the body's
// fields.
func (e *LogEntry) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(e.Body)+24)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	if len(e.Body) > 2 {
		b = append(b, ',')
		b = append(b, e.Body[1:]...)
		return b, nil
	}
	return append(b, '}'), nil
}

// encodeBody returns the JSON object stored for e written at now (ms).
func (e *LogEntry) encodeBody(now int64) ([]byte, error) {
	m := make(map[string]any, len(e.Fields)+6)
	for k, v := range e.Fields {
		m[k] = v
	}
	m["operation"] = e.Operation
	m["operatorId"] = e.OperatorID
	m["token"] = e.Token
	m["createTime"] = now
	m["updateTime"] = now
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cannot encode %s log row: %w", e.Kind, err)
	}
	return b, nil
}

// LogQuery selects log rows of one kind.
type LogQuery struct {
	Kind Kind
	// Filters maps field names (as on the wire, matched case-insensitively)
	// to the value they must have, compared as text, case-insensitively.
	// Blank values do not filter.
	Filters map[string]string
	// Limit caps the rows returned, newest kept; 0 means DefaultLogLimit.
	Limit int
}

// logFilter is a compiled LogQuery: the indexed columns and the rest.
type logFilter struct {
	operation, operatorID, serviceID string // folded; "" = any
	complete                         int    // -1 any, 0 false, 1 true
	rest                             map[string]string
	limit                            int
}

func compileLogQuery(q LogQuery) logFilter {
	f := logFilter{complete: -1, limit: q.Limit}
	if f.limit <= 0 {
		f.limit = DefaultLogLimit
	}
	for k, v := range q.Filters {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		switch core.FoldKey(k) {
		case "operation":
			f.operation = core.FoldKey(v)
		case "operatorid":
			f.operatorID = core.FoldKey(v)
		case "serviceid":
			f.serviceID = core.FoldKey(v)
		case "complete":
			if b, err := strconv.ParseBool(v); err == nil {
				f.complete = 0
				if b {
					f.complete = 1
				}
				continue
			}
			f.add(k, v)
		default:
			f.add(k, v)
		}
	}
	return f
}

func (f *logFilter) add(k, v string) {
	if f.rest == nil {
		f.rest = make(map[string]string)
	}
	f.rest[core.FoldKey(k)] = v
}

// matchIndexed reports whether a row's indexed columns pass the filter.
func (f *logFilter) matchIndexed(operation, operatorID, serviceID string, complete bool) bool {
	if f.operation != "" && core.FoldKey(operation) != f.operation {
		return false
	}
	if f.operatorID != "" && core.FoldKey(operatorID) != f.operatorID {
		return false
	}
	if f.serviceID != "" && serviceID != f.serviceID {
		return false
	}
	if f.complete >= 0 && complete != (f.complete == 1) {
		return false
	}
	return true
}

// matchBody reports whether the row body has every remaining filter field.
func (f *logFilter) matchBody(body []byte) bool {
	if len(f.rest) == 0 {
		return true
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&m) != nil {
		return false
	}
	found := 0
	for k, v := range m {
		want, ok := f.rest[core.FoldKey(k)]
		if !ok {
			continue
		}
		if !core.EqualFoldKey(strings.TrimSpace(fmt.Sprint(v)), want) {
			return false
		}
		found++
	}
	return found == len(f.rest)
}

// reverseLogs turns newest-first rows into oldest-first.
func reverseLogs(es []LogEntry) {
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
}

// foldService folds a service id as the log's service column stores it.
func foldService(s string) string { return core.FoldKey(strings.TrimSpace(s)) }
