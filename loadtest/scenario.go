package loadtest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Targets are built once per run: every URL and body exists before the
// attack starts, and the targeter only picks one (an atomic add and, for
// random picks, a PCG draw). Nothing is formatted per request.

// churnPool is the number of extra instances churn registers and removes.
const churnPool = 4096

var jsonHeader = http.Header{"Content-Type": []string{"application/json"}}

// targetSet is a list of prebuilt targets picked round-robin.
type targetSet struct {
	targets []vegeta.Target
	next    atomic.Uint64
}

func (s *targetSet) pick(t *vegeta.Target) {
	*t = s.targets[(s.next.Add(1)-1)%uint64(len(s.targets))]
}

// post builds a POST target; url is shared by every target of a set.
func post(url string, body []byte) vegeta.Target {
	return vegeta.Target{Method: "POST", URL: url, Body: body, Header: jsonHeader}
}

// bodyArena hands out request bodies cut from large shared chunks. A
// million targets then hold a few hundred allocations instead of a million,
// so the generator's own garbage collections (which would stall requests
// and show up as server latency) have little to mark.
type bodyArena struct{ chunk []byte }

const arenaChunk = 4 << 20

// add copies b into the arena and returns the copy (capacity = length, so
// nothing appended to it can reach a neighbour).
func (a *bodyArena) add(b []byte) []byte {
	if len(b) > arenaChunk/8 {
		return b
	}
	if cap(a.chunk)-len(a.chunk) < len(b) {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	off := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[off:len(a.chunk):len(a.chunk)]
}

func heartbeatTargets(base string, cfg Config) *targetSet {
	n := (cfg.Instances + cfg.HeartbeatBatch - 1) / cfg.HeartbeatBatch
	s := &targetSet{targets: make([]vegeta.Target, n)}
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n) // spread over shards and services
	url := base + "/api/registry/heartbeat.json"
	var arena bodyArena
	var buf []byte
	for k, j := range perm {
		from := j * cfg.HeartbeatBatch
		buf = appendInstancesBody(buf[:0], from, min(from+cfg.HeartbeatBatch, cfg.Instances), cfg.Services, true)
		s.targets[k] = post(url, arena.add(buf))
	}
	return s
}

func serviceTargets(base string, cfg Config) *targetSet {
	s := &targetSet{targets: make([]vegeta.Target, cfg.Services)}
	perm := rand.New(rand.NewPCG(3, 4)).Perm(cfg.Services)
	for k, j := range perm {
		s.targets[k] = vegeta.Target{Method: "GET", URL: base + "/api/discovery/service.json?serviceId=" + serviceID(j)}
	}
	return s
}

// lookupTargets asks for three services per request, as an SDK watching a
// few dependencies does.
func lookupTargets(base string, cfg Config) *targetSet {
	rnd := rand.New(rand.NewPCG(5, 6))
	s := &targetSet{targets: make([]vegeta.Target, cfg.Services)}
	url := base + "/api/discovery/lookup.json"
	for k := range s.targets {
		body := []byte(`{"regionId":"default","zoneId":"default","discoveryConfigs":[`)
		for j := range 3 {
			if j > 0 {
				body = append(body, ',')
			}
			body = append(body, `{"serviceId":"`...)
			body = append(body, serviceID(rnd.IntN(cfg.Services))...)
			body = append(body, `","regionId":"default"}`...)
		}
		s.targets[k] = post(url, append(body, `]}`...))
	}
	return s
}

func deltaTargets(base string, version int64) *targetSet {
	body := []byte(`{"regionId":"default","zoneId":"default","version":` + strconv.FormatInt(version, 10) + `}`)
	return &targetSet{targets: []vegeta.Target{post(base+"/api/discovery/services-delta.json", body)}}
}

// churnTargets alternates registering and unregistering extra instances
// (ids past the seeded ones), so the registry's size stays put.
func churnTargets(base string, cfg Config) *targetSet {
	s := &targetSet{targets: make([]vegeta.Target, 2*churnPool)}
	register, unregister := base+"/api/registry/register.json", base+"/api/registry/unregister.json"
	var arena bodyArena
	for k := range churnPool {
		i := cfg.Instances + k
		s.targets[2*k] = post(register, arena.add(instancesBody(i, i+1, cfg.Services, true)))
		s.targets[2*k+1] = post(unregister, arena.add(instancesBody(i, i+1, cfg.Services, false)))
	}
	return s
}

// targeter builds the targeter of a scenario against base.
func targeter(scenario, base string, cfg Config, version int64) (vegeta.Targeter, error) {
	var s *targetSet
	switch scenario {
	case "heartbeat":
		s = heartbeatTargets(base, cfg)
	case "service":
		s = serviceTargets(base, cfg)
	case "lookup":
		s = lookupTargets(base, cfg)
	case "delta":
		s = deltaTargets(base, version)
	case "churn":
		s = churnTargets(base, cfg)
	case "noop":
		s = &targetSet{targets: []vegeta.Target{{Method: "GET", URL: base + "/health"}}}
	case "mixed":
		return mixedTargeter(base, cfg), nil
	default:
		return nil, fmt.Errorf("cannot build targets of scenario %q", scenario)
	}
	return func(t *vegeta.Target) error { s.pick(t); return nil }, nil
}

// mixedTargeter sends 80 % heartbeats, 15 % service reads and 5 % churn,
// interleaved deterministically (16 : 3 : 1 out of every 20 requests).
func mixedTargeter(base string, cfg Config) vegeta.Targeter {
	hb, svc, churn := heartbeatTargets(base, cfg), serviceTargets(base, cfg), churnTargets(base, cfg)
	var seq atomic.Uint64
	return func(t *vegeta.Target) error {
		switch n := (seq.Add(1) - 1) % 20; {
		case n < 16:
			hb.pick(t)
		case n < 19:
			svc.pick(t)
		default:
			churn.pick(t)
		}
		return nil
	}
}
