package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"time"
)

// maxRefusalBody bounds how much of an HTTP error answer is read.
const maxRefusalBody = 64 << 10

type status struct {
	Status    string `json:"status"`
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// envelope is the part every Artemis answer has; answers embed it.
type envelope struct {
	ResponseStatus status `json:"responseStatus"`
}

func (e *envelope) inBand() status { return e.ResponseStatus }

// answer is a pointer to a decoded Artemis answer (a struct embedding envelope).
type answer interface{ inBand() status }

// verdict is what one attempt on one node means for the call.
type verdict int

const (
	// verdictFinal: the node answered for good, with success or a
	// permanent error (bad-request, no-permission, data-not-found, ...)
	// that every node would give. Not retried.
	verdictFinal verdict = iota
	// verdictUnavailable: a transport error, HTTP 408 or 5xx, an answer
	// that is not JSON, or service-unavailable (a starting or draining
	// node). Another node is tried; this one is avoided for nodeDownFor.
	verdictUnavailable
	// verdictRateLimited: rate-limited (in-band or HTTP 429). Another node
	// is tried; this one is avoided for limitedFor.
	verdictRateLimited
)

// inBandVerdict classifies an answer's responseStatus: service-unavailable
// and rate-limited mean "try another node", as in the Java client.
func inBandVerdict(s status) (verdict, error) {
	switch s.ErrorCode {
	case "service-unavailable":
		return verdictUnavailable, fmt.Errorf("%w: %s", ErrServiceUnavailable, s.Message)
	case "rate-limited":
		return verdictRateLimited, fmt.Errorf("%w: %s", ErrRateLimited, s.Message)
	}
	return verdictFinal, nil
}

// call POSTs req as JSON to path and decodes the answer into resp, trying
// nodes until one answers for good.
//
// The policy: at most retries+1 attempts (4). An attempt is bounded by
// attemptTimeout (5 s) and ends in one of three verdicts (see verdict). A
// final answer (success, or a permanent error such as bad-request,
// no-permission or data-not-found, in-band or as HTTP 4xx) is returned at
// once and never retried: call returns nil and the caller reads
// resp.ResponseStatus (or an error when a 4xx carries no responseStatus).
// On any other verdict the node is avoided for a while and the next attempt
// goes at once to the first node, in order, this call has not tried yet. When
// every node has failed this call, it waits a jittered backoff (a random
// duration between half and all of backoff, doubling up to maxWait) and goes
// round the nodes again. The caller's context ends the call at any point.
// When every attempt failed, the error wraps ErrNoNode and the last failure
// (ErrServiceUnavailable, ErrRateLimited, ...).
func (n *nodes) call(ctx context.Context, path string, req any, resp answer) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("client: cannot encode the request of %s: %w", path, err)
	}
	attempts := max(n.o.retries, 0) + 1
	wait := n.o.backoff
	var tried []string
	var last error
	for range attempts {
		u := n.next(tried)
		if u == "" {
			if err := sleep(ctx, jitter(wait)); err != nil {
				return fmt.Errorf("client: %s: %w (last failure: %w)", path, err, last)
			}
			wait = min(wait*2, n.o.maxWait)
			tried = tried[:0]
			u = n.next(nil)
		}
		tried = append(tried, u)
		v, err := n.post(ctx, u+path, body, resp)
		if v == verdictFinal {
			n.answered(u)
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("client: %s: %w", path, ctx.Err())
		}
		n.avoidAfter(u, v)
		last = err
		n.o.log.Warn("artemis node failed", "node", u, "path", path, "err", err)
	}
	return fmt.Errorf("%w: %s, %d attempts: %w", ErrNoNode, path, attempts, last)
}

// post makes one attempt: it POSTs body to url and decodes the answer into
// resp (zeroed first, so nothing of an earlier attempt's answer remains).
func (n *nodes) post(ctx context.Context, url string, body []byte, resp answer) (verdict, error) {
	timeout := n.o.attemptTimeout
	if timeout <= 0 {
		timeout = defaultAttemptTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return verdictUnavailable, err // a malformed node URL: try the others
	}
	req.Header.Set("Content-Type", "application/json")
	r, err := n.o.httpClient.Do(req)
	if err != nil {
		return verdictUnavailable, err
	}
	defer r.Body.Close()
	if v, err := httpVerdict(r.StatusCode); v != verdictFinal {
		io.Copy(io.Discard, io.LimitReader(r.Body, maxRefusalBody))
		return v, err
	}
	reflect.ValueOf(resp).Elem().SetZero()
	if r.StatusCode >= 400 {
		// A refusal every node would give (bad-request, no-permission):
		// final, with its responseStatus when it has one.
		err := json.NewDecoder(io.LimitReader(r.Body, maxRefusalBody)).Decode(resp)
		if err != nil || resp.inBand().ErrorCode == "" {
			return verdictFinal, fmt.Errorf("client: %s refused: HTTP %d", url, r.StatusCode)
		}
	} else if err := json.NewDecoder(r.Body).Decode(resp); err != nil {
		return verdictUnavailable, fmt.Errorf("cannot decode the answer: %w", err)
	}
	return inBandVerdict(resp.inBand())
}

// httpVerdict classifies an HTTP status; verdictFinal means "read the body".
func httpVerdict(code int) (verdict, error) {
	switch {
	case code == http.StatusTooManyRequests:
		return verdictRateLimited, fmt.Errorf("%w: HTTP %d", ErrRateLimited, code)
	case code == http.StatusServiceUnavailable:
		return verdictUnavailable, fmt.Errorf("%w: HTTP %d", ErrServiceUnavailable, code)
	case code == http.StatusRequestTimeout || code >= 500:
		return verdictUnavailable, fmt.Errorf("HTTP %d", code)
	case code < 200 || 300 <= code && code < 400:
		return verdictUnavailable, fmt.Errorf("unexpected HTTP %d", code)
	}
	return verdictFinal, nil
}

// dialVerdict classifies a failed WebSocket handshake (r is nil when no
// HTTP answer came).
func dialVerdict(r *http.Response) verdict {
	if r != nil && r.StatusCode == http.StatusTooManyRequests {
		return verdictRateLimited
	}
	return verdictUnavailable
}

// jitter returns a random duration between d/2 and d.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
