package store

import (
	"context"
	"sync"
	"time"
)

// watchers fans the store version out to Watch channels. A poller (and,
// on PostgreSQL, a LISTEN loop) feeds it through observe.
type watchers struct {
	mu      sync.Mutex
	last    int64                      // highest version observed; guarded by mu
	subs    map[chan int64]func() bool // channel -> stop of its context watch; guarded by mu
	closed  bool                       // guarded by mu
	kick    chan struct{}              // asks the poller to poll now
	done    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Once
}

func newWatchers() *watchers {
	return &watchers{subs: make(map[chan int64]func() bool), kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// watch registers a channel closed when ctx ends or the watchers close.
func (w *watchers) watch(ctx context.Context) <-chan int64 {
	ch := make(chan int64, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		close(ch)
		return ch
	}
	w.subs[ch] = context.AfterFunc(ctx, func() { w.unsubscribe(ch) })
	return ch
}

func (w *watchers) unsubscribe(ch chan int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.subs[ch]; ok {
		delete(w.subs, ch)
		close(ch)
	}
}

// observe records version v and, if it is new, sends it to every watcher.
func (w *watchers) observe(v int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v <= w.last {
		return
	}
	w.last = v
	for ch := range w.subs {
		sendLatest(ch, v)
	}
}

// sendLatest puts v in ch (capacity 1), replacing an unread older version.
// Only observe sends, under w.mu, so the drain-then-send cannot lose v.
func sendLatest(ch chan int64, v int64) {
	select {
	case ch <- v:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- v:
	default:
	}
}

// poke asks the poller to read the version now (after a local commit or a
// NOTIFY) instead of at its next tick.
func (w *watchers) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// poll runs version every interval (and when poked) until close, feeding
// observe. Errors are ignored: the store may be away; the next tick retries.
func (w *watchers) poll(interval time.Duration, version func(context.Context) (int64, error)) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*interval+time.Second)
			if v, err := version(ctx); err == nil {
				w.observe(v)
			}
			cancel()
			select {
			case <-w.done:
				return
			case <-t.C:
			case <-w.kick:
			}
		}
	}()
}

// close closes every watcher channel and stops the poller.
func (w *watchers) close() {
	w.closeMu.Do(func() {
		close(w.done)
		w.mu.Lock()
		w.closed = true
		for ch, stop := range w.subs {
			stop()
			close(ch)
		}
		w.subs = nil
		w.mu.Unlock()
		w.wg.Wait()
	})
}
