package store

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// Memory is a Store held in process memory: nothing survives the process.
// It has the SQL stores' semantics (serialised updates, rollback on error,
// versions, tombstones) and is meant for tests and `--store memory`.
type Memory struct {
	cfg Config

	mu      sync.Mutex
	rows    map[int64]*memRow // guarded by mu; tombstones kept for Changes
	keys    map[memKey]int64  // live rows by natural key; guarded by mu
	logs    []LogEntry        // guarded by mu
	lastID  int64             // guarded by mu
	version int64             // guarded by mu
	closed  bool              // guarded by mu

	down atomic.Bool // SetAvailable(false) makes every call fail with ErrUnavailable
	w    *watchers
}

type memKey struct {
	kind Kind
	key  string
}

type memRow struct {
	Row
	key string
}

// NewMemory returns an empty Memory store.
func NewMemory(cfg Config) *Memory {
	m := &Memory{cfg: cfg.withDefaults(), rows: make(map[int64]*memRow), keys: make(map[memKey]int64), w: newWatchers()}
	return m
}

// SetAvailable simulates the database going away (false) and coming back
// (true): while away, every call fails with ErrUnavailable.
func (m *Memory) SetAvailable(ok bool) { m.down.Store(!ok) }

func (m *Memory) check() error {
	if m.down.Load() {
		return ErrUnavailable
	}
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Update implements Store.
func (m *Memory) Update(ctx context.Context, fn func(tx *Tx) error) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, unavailable("begin", err)
	}
	b := &memTx{m: m, rows: make(map[int64]*memRow), keys: make(map[memKey]int64), lastID: m.lastID}
	tx := &Tx{b: b, version: m.version + 1, now: m.cfg.Now().UnixMilli()}
	if err := fn(tx); err != nil {
		return 0, err
	}
	if err := m.check(); err != nil {
		return 0, err
	}
	m.version++
	for id, r := range b.rows {
		r.Version = m.version
		m.rows[id] = r
	}
	for k, id := range b.keys {
		if id == 0 {
			delete(m.keys, k)
		} else {
			m.keys[k] = id
		}
	}
	m.lastID = b.lastID
	m.logs = append(m.logs, b.logs...)
	v := m.version
	m.w.observe(v)
	return v, nil
}

// Changes implements Store.
func (m *Memory) Changes(ctx context.Context, since int64) (*Delta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	d := &Delta{Version: m.version}
	for _, r := range m.rows {
		if r.Version > since && !(since == 0 && r.Deleted) {
			row := r.Row
			row.Body = slices.Clone(r.Body)
			d.Rows = append(d.Rows, row)
		}
	}
	slices.SortFunc(d.Rows, func(a, b Row) int { return cmp.Compare(a.ID, b.ID) })
	return d, nil
}

// Version implements Store.
func (m *Memory) Version(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return 0, err
	}
	return m.version, nil
}

// Watch implements Store.
func (m *Memory) Watch(ctx context.Context) <-chan int64 { return m.w.watch(ctx) }

// Logs implements Store.
func (m *Memory) Logs(ctx context.Context, q LogQuery) ([]LogEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	f := compileLogQuery(q)
	var out []LogEntry
	for i := len(m.logs) - 1; i >= 0 && len(out) < f.limit; i-- {
		e := &m.logs[i]
		if e.Kind == q.Kind && f.matchIndexed(e.Operation, e.OperatorID, e.ServiceID, e.Complete) && f.matchBody(e.Body) {
			out = append(out, LogEntry{ID: e.ID, Kind: e.Kind, Operation: e.Operation, OperatorID: e.OperatorID,
				Token: e.Token, Complete: e.Complete, ServiceID: e.ServiceID, CreateTime: e.CreateTime, Body: e.Body})
		}
	}
	reverseLogs(out)
	return out, nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.w.close()
	return nil
}

// memTx buffers a transaction's writes over the committed state; Update
// applies them on success and drops them on error.
type memTx struct {
	m      *Memory
	rows   map[int64]*memRow // written rows (tombstones included)
	keys   map[memKey]int64  // written keys; 0 = removed
	logs   []LogEntry
	lastID int64
}

func (t *memTx) row(id int64) *memRow {
	if r, ok := t.rows[id]; ok {
		return r
	}
	return t.m.rows[id]
}

func (t *memTx) lookup(kind Kind, key string) (int64, []byte, error) {
	k := memKey{kind, key}
	id, ok := t.keys[k]
	if !ok {
		id = t.m.keys[k]
	}
	if id == 0 {
		return 0, nil, nil
	}
	return id, t.row(id).Body, nil
}

func (t *memTx) byID(kind Kind, id int64) ([]byte, error) {
	r := t.row(id)
	if r == nil || r.Deleted || r.Kind != kind {
		return nil, nil
	}
	return r.Body, nil
}

func (t *memTx) list(kind Kind) ([]Row, error) {
	var out []Row
	seen := make(map[int64]bool)
	for id, r := range t.rows {
		seen[id] = true
		if !r.Deleted && r.Kind == kind {
			out = append(out, r.Row)
		}
	}
	for id, r := range t.m.rows {
		if !seen[id] && !r.Deleted && r.Kind == kind {
			out = append(out, r.Row)
		}
	}
	slices.SortFunc(out, func(a, b Row) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (t *memTx) insert(kind Kind, key string, body []byte) (int64, error) {
	t.lastID++
	id := t.lastID
	t.rows[id] = &memRow{Row: Row{Kind: kind, ID: id, Body: body}, key: key}
	t.keys[memKey{kind, key}] = id
	return id, nil
}

func (t *memTx) update(kind Kind, id int64, key string, body []byte) error {
	old := t.row(id)
	if old == nil {
		return nil
	}
	t.rows[id] = &memRow{Row: Row{Kind: kind, ID: id, Body: body}, key: key}
	return nil
}

func (t *memTx) remove(kind Kind, id int64) (bool, error) {
	old := t.row(id)
	if old == nil || old.Deleted || old.Kind != kind {
		return false, nil
	}
	t.rows[id] = &memRow{Row: Row{Kind: kind, ID: id, Deleted: true, Body: old.Body}}
	t.keys[memKey{kind, old.key}] = 0
	return true, nil
}

func (t *memTx) appendLog(e *LogEntry, body []byte) error {
	t.lastID++
	t.logs = append(t.logs, LogEntry{ID: t.lastID, Kind: e.Kind, Operation: e.Operation, OperatorID: e.OperatorID,
		Token: e.Token, Complete: e.Complete, ServiceID: foldService(e.ServiceID), CreateTime: e.CreateTime, Body: body})
	return nil
}
