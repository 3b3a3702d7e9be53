package server

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/cloudwego/hertz/pkg/app"
)

// json is the sonic configuration for requests and responses: it matches
// field names case-insensitively and does not copy strings out of the body,
// so decoded strings alias request memory and must not outlive the handler
// (the core copies what it keeps).
var json = sonic.ConfigDefault

// jsonSorted encodes responses with map keys sorted, so answers are stable.
var jsonSorted = sonic.Config{SortMapKeys: true}.Froze()

const contentTypeJSON = "application/json; charset=utf-8"

// apiError is a request the server refuses as a whole: HTTP status plus a
// fail responseStatus whose errorCode is errCode (bad-request when empty).
type apiError struct {
	code    int
	errCode string
	msg     string
}

func (e *apiError) Error() string { return e.msg }

var errEmptyBody = errors.New("empty body")

// body returns the request body, inflated when it is gzip-encoded, and a
// release function to call once the body (and anything decoded from it) is
// no longer used.
func (s *Server) body(c *app.RequestContext) ([]byte, func(), *apiError) {
	raw := c.Request.Body()
	if len(raw) > s.cfg.MaxBodyBytes {
		return nil, nil, &apiError{code: 413, msg: fmt.Sprintf("body of %d bytes exceeds the limit of %d", len(raw), s.cfg.MaxBodyBytes)}
	}
	enc := c.Request.Header.Peek("Content-Encoding")
	if len(enc) == 0 || bytes.EqualFold(enc, []byte("identity")) {
		return raw, noRelease, nil
	}
	if !bytes.EqualFold(enc, []byte("gzip")) && !bytes.EqualFold(enc, []byte("x-gzip")) {
		return nil, nil, &apiError{code: 400, msg: fmt.Sprintf("unsupported Content-Encoding %q; use gzip or none", enc)}
	}
	return s.inflate(raw)
}

func noRelease() {}

// decode reads the (possibly gzip) body into v. An empty body decodes to the
// zero value when allowEmpty is set. On failure it has answered the request
// and returns false. Call the returned release when done with v.
func (s *Server) decode(c *app.RequestContext, v any, allowEmpty bool) (func(), bool) {
	b, release, aerr := s.body(c)
	if aerr != nil {
		writeError(c, aerr)
		return nil, false
	}
	if !decodeBody(c, b, v, allowEmpty) {
		release()
		return nil, false
	}
	return release, true
}

// decodeBody decodes the request body b (already inflated) into v, as
// decode does; on failure it has answered the request and returns false.
func decodeBody(c *app.RequestContext, b []byte, v any, allowEmpty bool) bool {
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return true
		}
		writeError(c, &apiError{code: 400, msg: "cannot decode request: " + errEmptyBody.Error()})
		return false
	}
	// UnmarshalFromString over a no-copy view: sonic's Unmarshal would copy
	// the whole body first. Decoded strings alias b, which lives until the
	// body's release.
	if err := json.UnmarshalFromString(b2s(b), v); err != nil {
		writeError(c, &apiError{code: 400, msg: "cannot decode request: " + shortError(err)})
		return false
	}
	return true
}

// shortError flattens sonic's multi-line error messages, which quote the
// input, to one short line.
func shortError(err error) string {
	msg := strings.NewReplacer(`\n`, " ", `\t`, " ").Replace(strings.Trim(err.Error(), `"`)) // sonic quotes its input escaped
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}

func writeError(c *app.RequestContext, e *apiError) {
	code := e.errCode
	if code == "" {
		code = codeBadRequest
	}
	writeJSON(c, e.code, statusOnly{failStatus(code, e.msg)})
}

// writeJSON encodes v as the response body.
func writeJSON(c *app.RequestContext, code int, v any) { writeBytes(c, code, mustMarshal(v)) }

// mustMarshal encodes a response. Every response type is a plain struct, so
// failing to encode one is a bug.
func mustMarshal(v any) []byte {
	b, err := jsonSorted.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot encode %T: %v", v, err))
	}
	return b
}

// writeBytes sets b (copied) as the JSON response body.
func writeBytes(c *app.RequestContext, code int, b []byte) {
	c.SetStatusCode(code)
	c.Response.Header.SetContentType(contentTypeJSON)
	c.Response.SetBody(b)
}

// writeBodyRaw sets b as the JSON response body without copying it: b must
// never change once written (a package-level answer, or one encoded for
// this request alone).
func writeBodyRaw(c *app.RequestContext, code int, b []byte) {
	c.SetStatusCode(code)
	c.Response.Header.SetContentType(contentTypeJSON)
	c.Response.SetBodyRaw(b)
}

// bodyBuffer returns the response body buffer to append JSON to directly.
func bodyBuffer(c *app.RequestContext) *[]byte {
	c.Response.Header.SetContentType(contentTypeJSON)
	return &c.Response.BodyBuffer().B
}

// b2s views b as a string without copying; the string must not outlive b.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func stack() string { return string(debug.Stack()) }
