package core

import (
	"crypto/sha256"
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
// service. Populated registries are cached across runs of one size, and no
// benchmark leaves them bigger than n: the size in a name is the size the
// benchmark measured at.
//
// Concurrent paths use b.RunParallel, so ns/op depends on -cpu: with
// -cpu 1 it is the cost of one call, with -cpu 2 (or more) it is wall time
// over all goroutines' operations, the inverse of throughput. Results in
// results/ give both. BenchmarkCalibration is a fixed workload that does not
// depend on this code, to compare runs of different days and machines.

var benchSizes = []int{1_000, 100_000, 1_000_000}

const instancesPerService = 100

// realisticInstance fills inst as a typical client registers it.
// registerRealistic registers realistic instances 0..n-1 on r, one a
// call, through one reused Instance (the registry copies what it keeps).
func registerRealistic(r *Registry, n int) {
	var inst Instance
	batch := []*Instance{&inst}
	for i := range n {
		realisticInstance(&inst, i)
		r.Register(batch, nil)
	}
}

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

// fresh points k.inst at a key no fixture holds (instance "new-<i>") in an
// existing service of a fixture of services services, so registering it adds
// an instance without adding a service.
func (k *keyBuf) fresh(i, services int) *Instance {
	svc := strconv.AppendInt(append(k.svc[:0], "service-"...), int64(i%services), 10)
	id := strconv.AppendInt(append(k.id[:0], "new-"...), int64(i), 10)
	k.inst = Instance{RegionID: "default", ZoneID: "zone-1", ServiceID: unsafe.String(&svc[0], len(svc)),
		InstanceID: unsafe.String(&id[0], len(id)), IP: "10.2.0.1", Port: 8080, URL: "http://10.2.0.1:8080/api", Status: StatusUp}
	return &k.inst
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
	// Leases outlive the whole benchmark run; the clock is read as the node
	// reads it (cmd/artemis: registry.clockResolution).
	r, err := New(Config{LeaseTTL: time.Hour, ClockResolution: 10 * time.Millisecond})
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

// BenchmarkHeartbeat: key=random (a random instance of n per call, the
// headline: at 1e6 the table slot and the lease are cache misses) beside its
// RWMutex-map baseline; key=one renews the same instance every call (cache
// hot, so n cannot matter: it is the floor, not the headline).
func BenchmarkHeartbeat(b *testing.B) {
	for _, n := range benchSizes {
		f := fixture(b, n)
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
		b.Run(fmt.Sprintf("n=%d/impl=sharded/key=one", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var k keyBuf
				one := k.key(n / 2)
				for pb.Next() {
					if failed := f.reg.Heartbeat(one, nil); len(failed) != 0 {
						b.Fatalf("unexpected heartbeat failure: %v", failed[0].Err)
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

// registerRound is how many new instances BenchmarkRegister registers
// (timed) before it unregisters them again (not timed): the registry holds
// between n and n+registerRound instances while it is measured.
const registerRound = 1000

// BenchmarkRegister registers new instances (new keys, realistic fields) of
// existing services into a registry of n, one call at a time: rounds of registerRound timed
// registrations, each followed by the untimed unregistration of the round,
// so every run measures at n whatever b.N is.
func BenchmarkRegister(b *testing.B) {
	for _, n := range benchSizes {
		f := fixture(b, n)
		next, services := 0, n/instancesPerService
		meta := map[string]string{"version": "1.4.2", "env": "prod", "hostname": "host"}
		// batch fills insts with new instances (keys no fixture holds,
		// realistic fields) of the fixture's existing services.
		batch := func(insts []Instance) {
			for i := range insts {
				realisticInstance(&insts[i], next)
				insts[i].ServiceID = "service-" + strconv.Itoa(next%services)
				insts[i].InstanceID = "new-" + strconv.Itoa(next)
				insts[i].Metadata = meta
				next++
			}
		}
		b.Run(fmt.Sprintf("n=%d/impl=sharded", n), func(b *testing.B) {
			b.ReportAllocs()
			insts := make([]Instance, registerRound)
			one := make([]*Instance, 1)
			for done := 0; done < b.N; {
				b.StopTimer()
				round := insts[:min(registerRound, b.N-done)]
				batch(round)
				b.StartTimer()
				for i := range round {
					one[0] = &round[i]
					f.reg.Register(one, nil)
				}
				b.StopTimer()
				for i := range round {
					one[0] = &round[i]
					f.reg.Unregister(one, nil)
				}
				done += len(round)
				b.StartTimer()
			}
			b.StopTimer()
			if got := f.reg.Stats().Instances; got != int64(n) {
				b.Fatalf("the registry holds %d instances after the benchmark; want %d", got, n)
			}
		})
		b.Run(fmt.Sprintf("n=%d/impl=rwmutex-map", n), func(b *testing.B) {
			b.ReportAllocs()
			insts := make([]Instance, registerRound)
			for done := 0; done < b.N; {
				b.StopTimer()
				round := insts[:min(registerRound, b.N-done)]
				batch(round)
				b.StartTimer()
				for i := range round {
					f.base.register(&round[i])
				}
				b.StopTimer()
				for i := range round {
					f.base.unregister(&round[i])
				}
				done += len(round)
				b.StartTimer()
			}
			b.StopTimer()
			if got := f.base.size(); got != n {
				b.Fatalf("the baseline holds %d instances after the benchmark; want %d", got, n)
			}
		})
	}
}

// BenchmarkRegisterUnregister is register contention: each op registers a
// new instance of an existing service and unregisters it, on every goroutine at once, so the
// registry stays at n (plus one instance per goroutine).
func BenchmarkRegisterUnregister(b *testing.B) {
	for _, n := range benchSizes {
		f := fixture(b, n)
		var next atomic.Int64
		b.Run(fmt.Sprintf("n=%d/impl=sharded", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var k keyBuf
				one := make([]*Instance, 1)
				for pb.Next() {
					one[0] = k.fresh(int(next.Add(1)), n/instancesPerService)
					if failed := f.reg.Register(one, nil); len(failed) != 0 {
						b.Fatalf("unexpected register failure: %v", failed[0].Err)
					}
					f.reg.Unregister(one, nil)
				}
			})
			if got := f.reg.Stats().Instances; got != int64(n) {
				b.Fatalf("the registry holds %d instances after the benchmark; want %d", got, n)
			}
		})
	}
}

// BenchmarkCalibration is a fixed workload that depends on nothing in this
// repository: its ns/op, from the same run, says how fast the machine was
// when the other figures were taken. work=key is the benchmarks' own cost
// of making a heartbeat's key (included in BenchmarkHeartbeat's ns/op).
func BenchmarkCalibration(b *testing.B) {
	b.Run("work=sha256-1KiB", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 1024)
		b.SetBytes(int64(len(buf)))
		b.RunParallel(func(pb *testing.PB) {
			var sum [sha256.Size]byte
			for pb.Next() {
				sum = sha256.Sum256(buf)
			}
			_ = sum
		})
	})
	b.Run("work=key", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
			var k keyBuf
			var sink int
			for pb.Next() {
				sink += len(k.key(rnd.IntN(1_000_000))[0].InstanceID)
			}
			_ = sink
		})
	})
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
				perInstance = heapPerInstance(b, n, nil)
			}
			b.ReportMetric(perInstance, "heap-B/instance")
		})
	}
}

// heapPerInstance registers n realistic instances in a new registry, builds
// every snapshot and returns the live heap per instance; with the registry
// still populated it then calls during (when not nil).
func heapPerInstance(b *testing.B, n int, during func()) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	registerRealistic(r, n)
	for i := 0; i < n; i += instancesPerService {
		r.Service("service-" + strconv.Itoa(i/instancesPerService))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := r.Stats().Instances; got != int64(n) {
		b.Fatalf("unexpected instance count %d; want %d", got, n)
	}
	if during != nil {
		during()
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

func (m *mutexRegistry) unregister(inst *Instance) {
	key, svc := mutexKey(inst), strings.ToLower(inst.ServiceID)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.leases, key)
	delete(m.services[svc], key)
}

func (m *mutexRegistry) size() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.leases)
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

// BenchmarkGCWithInstances reports the wall time of one forced collection
// (runtime.GC) with n realistic instances registered and every service's
// snapshot built, as ns/op, beside the live heap per instance. The cost of
// a collection grows with the objects and pointers it must mark, not with
// the bytes, so this is what the registry's layout costs every GC cycle.
// Run it with -cpu 1 and -cpu 2 (GOMAXPROCS): the collector's mark workers
// are bounded by it.
func BenchmarkGCWithInstances(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			fixturesMu.Lock()
			for k, f := range fixtures {
				f.reg.Close()
				delete(fixtures, k)
			}
			fixturesMu.Unlock()
			perInstance := heapPerInstance(b, n, func() {
				b.ResetTimer()
				for range b.N {
					runtime.GC()
				}
				b.StopTimer()
			})
			b.ReportMetric(perInstance, "heap-B/instance")
		})
	}
}
