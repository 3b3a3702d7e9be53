package management

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/artemis-go/artemis/core"
	"github.com/artemis-go/artemis/store"
)

// Discovery with management filters: 100k instances (1,000 services of 100)
// with 10k active instance pull-outs (10 per service), beside the same
// registry without pull-outs and without any filter. Lookups read cached
// snapshots, so the filter's cost shows only in BenchmarkRebuild.

const (
	benchServices    = 1000
	benchPerService  = 100
	benchPullsPerSvc = 10
)

type benchEnv struct {
	reg *core.Registry
	ids []string
}

func newBenchEnv(b *testing.B, pullouts bool, filtered bool) *benchEnv {
	b.Helper()
	r, err := core.New(core.Config{Region: region, Zone: "z1"})
	if err != nil {
		b.Fatalf("cannot create registry: %v", err)
	}
	b.Cleanup(r.Close)
	e := &benchEnv{reg: r}
	batch := make([]*core.Instance, 0, benchPerService)
	for s := range benchServices {
		id := fmt.Sprintf("service-%04d", s)
		e.ids = append(e.ids, id)
		batch = batch[:0]
		for i := range benchPerService {
			batch = append(batch, inst(id, fmt.Sprintf("inst-%03d", i), fmt.Sprintf("10.%d.%d.%d", s/256, s%256, i), "z1", ""))
		}
		r.Register(batch, nil)
	}
	if !filtered {
		for _, id := range e.ids {
			r.Service(id) // build every snapshot, as the filtered cases do
		}
		return e
	}
	st := store.NewMemory(store.Config{})
	b.Cleanup(func() { st.Close() })
	if pullouts {
		_, err := st.Update(context.Background(), func(tx *store.Tx) error {
			for _, id := range e.ids {
				for i := range benchPullsPerSvc {
					op := &store.InstanceOperation{InstanceKey: store.InstanceKey{RegionID: region, ServiceID: id, InstanceID: fmt.Sprintf("inst-%03d", i*7)},
						Operation: "pullout", OperatorID: "bench"}
					if _, err := store.Put(tx, op); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("cannot store pull-outs: %v", err)
		}
	}
	m, err := New(context.Background(), Config{Store: st, Registry: r, Region: region})
	if err != nil {
		b.Fatalf("cannot create manager: %v", err)
	}
	b.Cleanup(m.Close)
	r.SetFilters(m.Filter())
	want := benchPerService
	if pullouts {
		want -= benchPullsPerSvc
	}
	for _, id := range e.ids {
		if n := r.Service(id).Records.Len(); n != want {
			b.Fatalf("unexpected visible instances of %s; got %d; want %d", id, n, want)
		}
	}
	return e
}

var benchCases = []struct {
	name               string
	pullouts, filtered bool
}{
	{"n=100000/filter=none", false, false},
	{"n=100000/pullouts=0", false, true},
	{"n=100000/pullouts=10000", true, true},
}

// BenchmarkLookup reads a service's cached snapshot and copies its JSON, as
// lookup.json and service.json do.
func BenchmarkLookup(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			e := newBenchEnv(b, c.pullouts, c.filtered)
			var next atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 64<<10)
				for pb.Next() {
					id := e.ids[next.Add(1)%benchServices]
					buf = e.reg.Service(id).AppendJSON(buf[:0])
				}
			})
		})
	}
}

// BenchmarkRebuild invalidates one 100-instance service and rebuilds its
// snapshot: the filter's cost, paid once per change, not per read.
func BenchmarkRebuild(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			e := newBenchEnv(b, c.pullouts, c.filtered)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := e.ids[i%benchServices]
				e.reg.Invalidate(id)
				if e.reg.Service(id) == nil {
					b.Fatalf("no snapshot")
				}
			}
		})
	}
}
