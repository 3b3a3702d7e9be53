package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"path"
	"strings"

	"github.com/cloudwego/hertz/pkg/app"
)

//go:embed assets
var files embed.FS

// Cache-Control values.
const (
	cacheImmutable  = "public, max-age=31536000, immutable" // a hashed name never changes content
	cacheRevalidate = "no-cache"                            // may be kept, but asked about each time
)

// hashed are the assets index.html links by a name carrying their content
// hash; each is also served under its plain name, revalidated.
var hashed = []string{"app.js", "app.css", "icon.svg"}

// asset is one file as served: its bytes, a gzipped copy when that is
// smaller, and its headers. Immutable after mustLoadAssets.
type asset struct {
	contentType string
	cache       string
	etag        string
	body        []byte
	gz          []byte // nil when gzip does not make it smaller
}

// mustLoadAssets reads the embedded files, names the linked ones by their
// hash and rewrites index.html to link those names. It panics on a missing
// file or link: the embedded assets are part of the binary.
func mustLoadAssets() map[string]*asset {
	out := make(map[string]*asset)
	index := mustRead("index.html")
	for _, name := range hashed {
		body := mustRead(name)
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:6])
		ext := path.Ext(name)
		hashedName := strings.TrimSuffix(name, ext) + "." + h + ext
		link := []byte(`"` + name + `"`)
		if !bytes.Contains(index, link) {
			panic("BUG: console index.html does not link " + name)
		}
		index = bytes.ReplaceAll(index, link, []byte(`"`+hashedName+`"`))
		out[hashedName] = newAsset(name, body, h, cacheImmutable)
		out[name] = newAsset(name, body, h, cacheRevalidate)
	}
	sum := sha256.Sum256(index)
	a := newAsset("index.html", index, hex.EncodeToString(sum[:6]), cacheRevalidate)
	out[""] = a
	out["index.html"] = a
	return out
}

func mustRead(name string) []byte {
	b, err := files.ReadFile("assets/" + name)
	if err != nil {
		panic("BUG: cannot read embedded console asset: " + err.Error())
	}
	return b
}

func newAsset(name string, body []byte, hash, cache string) *asset {
	a := &asset{contentType: contentType(name), cache: cache, etag: `"` + hash + `"`, body: body}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(body)
	zw.Close()
	if buf.Len() < len(body) {
		a.gz = buf.Bytes()
	}
	return a
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	panic("BUG: no content type for console asset " + name)
}

// serve answers with a, 304 when the client holds its ETag.
func (a *asset) serve(c *app.RequestContext) {
	h := &c.Response.Header
	h.Set("Cache-Control", a.cache)
	h.Set("ETag", a.etag)
	h.Set("Vary", "Accept-Encoding")
	if etagMatch(c.Request.Header.Peek("If-None-Match"), a.etag) {
		c.SetStatusCode(304)
		return
	}
	h.SetContentType(a.contentType)
	if a.gz != nil && acceptsGzip(c.Request.Header.Peek("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		c.Response.SetBody(a.gz)
		return
	}
	c.Response.SetBody(a.body)
}

// etagMatch reports whether an If-None-Match header names etag (or is *).
func etagMatch(header []byte, etag string) bool {
	for _, t := range strings.Split(string(header), ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip
// (a q=0 refuses it).
func acceptsGzip(header []byte) bool {
	for _, t := range strings.Split(string(header), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(t), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return !strings.HasPrefix(q, "q=0") || strings.HasPrefix(q, "q=0.") && strings.Trim(q[4:], "0") != ""
	}
	return false
}
