package server

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
)

// Error logs are rate-limited so a storm of one failure cannot flood the
// log: at most errLogRate a second (bursts of errLogBurst); the number
// suppressed is attached to the next one written.
const (
	errLogRate  = 10
	errLogBurst = 20
)

type rateLimitedLog struct {
	log        *slog.Logger
	lm         *limiter
	suppressed atomic.Int64
}

func newRateLimitedLog(log *slog.Logger) *rateLimitedLog {
	return &rateLimitedLog{log: log, lm: newLimiter(Limit{Rate: errLogRate, Burst: errLogBurst})}
}

// Error logs msg unless the budget is spent.
func (l *rateLimitedLog) Error(msg string, args ...any) {
	if !l.lm.allow() {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		args = append(args, "suppressedSinceLast", n)
	}
	l.log.Error(msg, args...)
}

// throttledWriter passes Hertz's own log lines (a client that aborts its
// request makes Hertz log an error) through the same budget as the
// server's error log, so a client cannot flood the log.
type throttledWriter struct {
	w          io.Writer
	lm         *limiter
	suppressed atomic.Int64
}

func newThrottledWriter(w io.Writer) *throttledWriter {
	return &throttledWriter{w: w, lm: newLimiter(Limit{Rate: errLogRate, Burst: errLogBurst})}
}

func (t *throttledWriter) Write(p []byte) (int, error) {
	if !t.lm.allow() {
		t.suppressed.Add(1)
		return len(p), nil
	}
	if n := t.suppressed.Swap(0); n > 0 {
		fmt.Fprintf(t.w, "(%d Hertz log lines suppressed)\n", n)
	}
	return t.w.Write(p)
}
