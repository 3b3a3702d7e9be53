package core

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// Benchmarks sweep the registry size; each has a single-RWMutex-map
// baseline (mutexRegistry) in the same run. Instances are grouped 100 to a
// service. Populated registries are cached across runs of one size.

var benchSizes = []int{1_000, 100_000, 1_000_000}

const instancesPerService = 100

// realisticInstance fills inst as a typical client registers it.
func realisticInstance(inst *Instance, i int) {
	svc := "service-" + strconv.Itoa(i/instancesPerService)
	id := "10.1." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) + ":8080"
	ip := id[:len(id)-5]
	*inst = Instance{
		RegionID: "default", ZoneID: "zone-1", GroupID: "default", ServiceID: svc, InstanceID: id,
		MachineName: "host-" + strconv.Itoa(i), IP: ip, Port: 8080, Protocol: "http",
		URL: "http://" + id + "/api", HealthCheckURL: "http://" + id + "/health", Status: StatusUp,
		Metadata: map[string]string{"version": "1.4.2", "env": "prod", "hostname": "host-" + strconv.Itoa(i)},
	}
}

// keyBuf holds the key strings of one benchmark heartbeat.
type keyBuf struct {
	inst  Instance
	batch [1]*Instance
	svc   [32]byte
	id    [32]byte
}

// key points k.inst at the key of instance i, built in k's own buffers: like
// a decoded request, the key is hot in cache, so the benchmark measures the
// registry's memory traffic and not that of a table of test keys.
func (k *keyBuf) key(i int) []*Instance {
	svc := strconv.AppendInt(append(k.svc[:0], "service-"...), int64(i/instancesPerService), 10)
	id := append(k.id[:0], "10.1."...)
	id = strconv.AppendInt(id, int64(i>>8&0xff), 10)
	id = append(id, '.')
	id = strconv.AppendInt(id, int64(i&0xff), 10)
	id = append(id, ":8080"...)
	k.inst = Instance{RegionID: "default", ServiceID: unsafe.String(&svc[0], len(svc)), InstanceID: unsafe.String(&id[0], len(id))}
	k.batch[0] = &k.inst
	return k.batch[:]
}

type benchFixture struct {
	reg  *Registry
	base *mutexRegistry
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[int]*benchFixture{}
)

func fixture(b *testing.B, n int) *benchFixture {
	b.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f := fixtures[n]; f != nil {
		return f
	}
	for k, f := range fixtures { // keep one size in memory at a time
		f.reg.Close()
		delete(fixtures, k)
	}
	r, err := New(Config{LeaseTTL: time.Hour}) // outlive the whole benchmark run
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{reg: r, base: newMutexRegistry()}
	var inst Instance
	for i := range n {
		realisticInstance(&inst, i)
		r.Register([]*Instance{&inst}, nil)
		f.base.register(&inst)
	}
	for i := 0; i < n; i += instancesPerService {
		r.Service("service-" + strconv.Itoa(i/instancesPerService)) // build snapshots
	}
	fixtures[n] = f
	return f
}

func BenchmarkHeartbeat(b *testing.B) {
	for _, n := range benchSizes {
		f := fixture(b, n)
		b.Run(fmt.Sprintf("n=%d/impl=sharded/key=one", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var k keyBuf
				one := k.key(n / 2)
				for pb.Next() {
					f.reg.Heartbeat(one, nil)
				}
			})
		})
		b.Run(fmt.Sprintf("n=%d/impl=sharded/key=random", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
				var k keyBuf
				for pb.Next() {
					if failed := f.reg.Heartbeat(k.key(rnd.IntN(n)), nil); len(failed) != 0 {
						b.Fatalf("unexpected heartbeat failure: %v", failed[0].Err)
					}
				}
			})
		})
		b.Run(fmt.Sprintf("n=%d/impl=rwmutex-map/key=random", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
				var k keyBuf
				for pb.Next() {
					if !f.base.heartbeat(k.key(rnd.IntN(n))[0]) {
						b.Fatalf("unexpected heartbeat failure")
					}
				}
			})
		})
	}
}

func BenchmarkServiceLookup(b *testing.B) {
	for _, n := range benchSizes {
		f := fixture(b, n)
		services := n / instancesPerService
		ids := make([]string, services)
		for i := range ids {
			ids[i] = "service-" + strconv.Itoa(i)
		}
		b.Run(fmt.Sprintf("n=%d/impl=sharded", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rnd := rand.New(rand.NewPCG(rand.Uint64(), 2))
				buf := make([]byte, 0, 64<<10)
				for pb.Next() {
					buf = f.reg.Service(ids[rnd.IntN(services)]).AppendJSON(buf[:0])
				}
			})
		})
		b.Run(fmt.Sprintf("n=%d/impl=rwmutex-map", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rnd := rand.New(rand.NewPCG(rand.Uint64(), 2))
				for pb.Next() {
					f.base.lookup(ids[rnd.IntN(services)])
				}
			})
		})
	}
}

func BenchmarkRegister(b *testing.B) {
	for _, n := range benchSizes {
		f := fixture(b, n)
		next := n
		// pending builds b.N new instances up front, so the timed loop
		// measures registration, not the making of test data.
		pending := func(b *testing.B) ([]Instance, *atomic.Int64) {
			b.StopTimer()
			defer b.StartTimer()
			insts := make([]Instance, b.N)
			meta := map[string]string{"version": "1.4.2", "env": "prod", "hostname": "host"}
			for i := range insts {
				realisticInstance(&insts[i], next)
				insts[i].Metadata = meta
				next++
			}
			return insts, new(atomic.Int64)
		}
		b.Run(fmt.Sprintf("n=%d/impl=sharded", n), func(b *testing.B) {
			b.ReportAllocs()
			insts, idx := pending(b)
			b.RunParallel(func(pb *testing.PB) {
				batch := make([]*Instance, 1)
				for pb.Next() {
					batch[0] = &insts[idx.Add(1)-1]
					f.reg.Register(batch, nil)
				}
			})
		})
		b.Run(fmt.Sprintf("n=%d/impl=rwmutex-map", n), func(b *testing.B) {
			b.ReportAllocs()
			insts, idx := pending(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f.base.register(&insts[idx.Add(1)-1])
				}
			})
		})
	}
}

// BenchmarkMemoryPerInstance reports the live heap per registered instance
// (realistic fields: ip, url, healthCheckUrl, 3 metadata entries), discovery
// snapshots built.
func BenchmarkMemoryPerInstance(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			fixturesMu.Lock()
			for k, f := range fixtures {
				f.reg.Close()
				delete(fixtures, k)
			}
			fixturesMu.Unlock()
			var perInstance float64
			for range b.N {
				perInstance = heapPerInstance(b, n)
			}
			b.ReportMetric(perInstance, "heap-B/instance")
		})
	}
}

func heapPerInstance(b *testing.B, n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var inst Instance
	batch := []*Instance{&inst}
	for i := range n {
		realisticInstance(&inst, i)
		r.Register(batch, nil)
	}
	for i := 0; i < n; i += instancesPerService {
		r.Service("service-" + strconv.Itoa(i/instancesPerService))
	}
	inst = Instance{}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := r.Stats().Instances; got != int64(n) {
		b.Fatalf("unexpected instance count %d; want %d", got, n)
	}
	runtime.KeepAlive(r)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// mutexRegistry is the baseline: one RWMutex over maps, encoding/json on read.
type mutexRegistry struct {
	mu       sync.RWMutex
	leases   map[string]*mutexLease
	services map[string]map[string]*mutexLease
}

type mutexLease struct {
	inst    Instance
	renewed atomic.Int64
}

func newMutexRegistry() *mutexRegistry {
	return &mutexRegistry{leases: map[string]*mutexLease{}, services: map[string]map[string]*mutexLease{}}
}

func mutexKey(inst *Instance) string {
	return strings.ToLower(inst.RegionID + "\x00" + inst.ServiceID + "\x00" + inst.InstanceID)
}

func (m *mutexRegistry) register(inst *Instance) {
	l := &mutexLease{inst: *inst}
	l.inst.Metadata = make(map[string]string, len(inst.Metadata))
	for k, v := range inst.Metadata {
		l.inst.Metadata[k] = v
	}
	key, svc := mutexKey(inst), strings.ToLower(inst.ServiceID)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases[key] = l
	if m.services[svc] == nil {
		m.services[svc] = map[string]*mutexLease{}
	}
	m.services[svc][key] = l
}

func (m *mutexRegistry) heartbeat(inst *Instance) bool {
	key := mutexKey(inst)
	m.mu.RLock()
	defer m.mu.RUnlock()
	l := m.leases[key]
	if l != nil {
		l.renewed.Add(1)
	}
	return l != nil
}

func (m *mutexRegistry) lookup(serviceID string) []byte {
	m.mu.RLock()
	insts := make([]Instance, 0, instancesPerService)
	for _, l := range m.services[strings.ToLower(serviceID)] {
		insts = append(insts, l.inst)
	}
	m.mu.RUnlock()
	b, _ := json.Marshal(struct {
		ServiceID string     `json:"serviceId"`
		Instances []Instance `json:"instances"`
	}{serviceID, insts})
	return b
}
