package management

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/store"
)

// Registry is what the manager needs of the core registry (*core.Registry
// satisfies it): re-filtering the services a change touches (deletes and
// news of the instances it takes down or brings back), reloading those
// whose route rules or logical instances changed, and finding the services
// that have an instance on a server.
type Registry interface {
	Refilter(serviceIDs ...string)
	Reload(serviceIDs ...string)
	Leases(ids []string, fn func(serviceID string, leases []core.LeaseInfo))
}

// Config configures a Manager. Zero fields take the named defaults.
type Config struct {
	// Store keeps the management state; required.
	Store store.Store
	// Registry is re-filtered on changes; nil when no discovery is served
	// (tests, tools).
	Registry Registry
	// Region is the node's region: the region of canary groups.
	Region string
	// AdminToken, when set, is never stored nor logged: a request token
	// equal to it is recorded as "".
	AdminToken string
	// RetryInterval is how often a failed reload from the store is retried;
	// defaultRetryInterval when zero.
	RetryInterval time.Duration
}

const defaultRetryInterval = time.Second

// Manager is the management service: it validates and applies the
// mutations of contract section 9 to the store, answers reads from an
// in-memory copy of the state, and provides the discovery filter of
// section 11. It is safe for concurrent use.
type Manager struct {
	cfg   Config
	state atomic.Pointer[state]

	syncMu sync.Mutex // serialises loading changes and swapping state

	cancel context.CancelFunc
	done   chan struct{}
}

// New loads the state from the store and starts following its changes.
// It fails when the store cannot be read (a node starts with its
// management state or not at all).
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("management: Config.Store is nil")
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = defaultRetryInterval
	}
	m := &Manager{cfg: cfg, done: make(chan struct{})}
	m.state.Store(emptyState())
	// Watch before the first load, so no change falls between them.
	wctx, cancel := context.WithCancel(context.Background())
	ch := cfg.Store.Watch(wctx)
	if err := m.Sync(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("cannot load the management state: %w", err)
	}
	m.cancel = cancel
	go m.follow(wctx, ch)
	return m, nil
}

// Close stops following the store; it does not close the store.
func (m *Manager) Close() {
	m.cancel()
	<-m.done
}

// Filter returns the discovery filter of contract section 11, for
// core.Registry.SetFilters. It reads the manager's state lock-free. It is a
// core.RecordFilter, so the core's change log (deltas, push) leaves out
// down instances as discovery does.
func (m *Manager) Filter() core.RecordFilter { return filter{m} }

// Version returns the store version the cached state reflects.
func (m *Manager) Version() int64 { return m.state.Load().version }

// follow applies the store's changes as it announces them, retrying a
// failed load every RetryInterval, until ctx is done.
func (m *Manager) follow(ctx context.Context, ch <-chan int64) {
	defer close(m.done)
	retry := time.NewTicker(m.cfg.RetryInterval)
	defer retry.Stop()
	failed := false
	for {
		select {
		case <-ctx.Done():
			return
		case v, ok := <-ch:
			if !ok {
				return
			}
			if v <= m.Version() {
				continue
			}
		case <-retry.C:
			if !failed {
				continue
			}
		}
		failed = m.Sync(ctx) != nil
	}
}

// Sync loads the changes made since the cached version, swaps in the new
// state and re-filters the services they touch (see refilter). Mutations
// call it before they return, so a change is visible on its node, and its
// deletes, news and reloads are in the change log, when answered; the
// follower calls it on every store notification, which brings other nodes'
// changes to this node's discovery and push the same way.
func (m *Manager) Sync(ctx context.Context) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	old := m.state.Load()
	d, err := m.cfg.Store.Changes(ctx, old.version)
	if err != nil {
		return err
	}
	if len(d.Rows) == 0 {
		if d.Version > old.version {
			n := *old
			n.version = d.Version
			m.state.Store(&n)
		}
		return nil
	}
	n, t, err := old.apply(d)
	if err != nil {
		return err
	}
	m.state.Store(n) // before refilter: the filter must answer from n
	m.refilter(old, n, t)
	return nil
}

// refilter re-filters the services t names, and the services with an
// instance or logical instance on a server t names: the core logs a delete
// for each registered instance n takes down and a new for each it brings
// back. Then it reloads those of them whose logical instances or route
// rules, as discovery publishes them, differ between old and n. Sync holds
// syncMu, so re-filters follow the order of the states.
func (m *Manager) refilter(old, n *state, t *touched) {
	r := m.cfg.Registry
	if r == nil {
		return
	}
	if len(t.servers) > 0 {
		for _, st := range []*state{old, n} {
			for _, si := range st.logic {
				if _, ok := t.servers[fkey(si.RegionID, si.IP)]; ok {
					t.service(si.ServiceID)
				}
			}
		}
		r.Leases(nil, func(serviceID string, leases []core.LeaseInfo) {
			var kb [keyBufLen]byte
			for _, l := range leases {
				if _, ok := t.servers[string(appendKey(kb[:0], l.Record.RegionID(), l.Record.IP()))]; ok {
					t.service(serviceID)
					return
				}
			}
		})
	}
	ids := make([]string, 0, len(t.services))
	var reload []string
	for key, id := range t.services {
		ids = append(ids, id)
		if viewChanged(old, n, key) {
			reload = append(reload, id)
		}
	}
	slices.Sort(ids)
	slices.Sort(reload)
	r.Refilter(ids...)
	if len(reload) > 0 {
		r.Reload(reload...)
	}
}

// update runs fn in a store transaction and, once committed, applies the
// change to the cache before returning.
func (m *Manager) update(ctx context.Context, fn func(tx *store.Tx) error) error {
	if _, err := m.cfg.Store.Update(ctx, fn); err != nil {
		return err
	}
	// The change is durable; if the store vanished just now, the follower
	// applies it when the store is back.
	m.Sync(ctx)
	return nil
}

// token returns the token to store and log: "" for the admin token.
func (m *Manager) token(t string) string {
	if m.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(t), []byte(m.cfg.AdminToken)) == 1 {
		return ""
	}
	return t
}

// ServiceView returns what discovery shows of serviceID given its
// registered records (which are not modified): down records removed,
// logical instances and route rules attached. The server uses it to answer
// for a service with no registered instance (recs nil) and for management's
// service.json.
func (m *Manager) ServiceView(serviceID string, recs []*core.Record) *core.ServiceView {
	v := &core.ServiceView{ServiceID: serviceID, Records: append([]*core.Record(nil), recs...)}
	filter{m}.FilterService(v)
	return v
}

// IsDown reports whether management takes rec out of discovery (section 11).
func (m *Manager) IsDown(rec *core.Record) bool {
	st := m.state.Load()
	var kb [keyBufLen]byte
	return st.down(st.plans[string(core.AppendFoldKey(kb[:0], rec.ServiceID()))], rec)
}
