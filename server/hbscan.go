package server

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// A specialised scanner for the bodies of heartbeat and unregister
// ({"instances":[{...},...]}, over HTTP and WebSocket): it extracts the
// InstanceKey (regionId, serviceId, instanceId) of each instance and skips
// everything else, without reflection or allocation. It accepts only what
// it fully understands, and for that input yields exactly what the general
// decoder (sonic, into keysRequest) would: FuzzHeartbeatScanner holds the
// two to it. Anything else makes scanKeys decline, and the caller decodes
// the body with the general decoder, so every answer is the general
// decoder's. Declined:
//   - a key (of the body or of an instance) with an escape or a non-ASCII
//     byte, or one matching a wanted name twice (case-insensitively, as
//     sonic matches names);
//   - a wanted value that is not a string or null, or a string with an
//     escape, a control byte or invalid UTF-8;
//   - instances that is not an array or null, an element that is not an
//     object or null, a body that is not one object;
//   - in skipped values: invalid JSON, invalid UTF-8, nesting deeper than
//     maxScanDepth.
//
// The keys are views of body (no copy): they are valid while body is, and
// the core copies what it keeps.

// maxScanDepth bounds the nesting of skipped values the scanner follows;
// deeper bodies go to the general decoder.
const maxScanDepth = 32

// scanKeys appends the key of every instance of body to dst[:0] (a null
// element or an instance without key fields gives a zero key, as the
// general decoder's does) and reports whether it understood the whole body.
// When it did not, the slice returned holds what it had appended so far, for
// the caller to clear.
func scanKeys(body []byte, dst []instanceKey) ([]instanceKey, bool) {
	sc := keyScanner{b: body}
	keys, ok := sc.body(dst[:0])
	if ok {
		sc.space()
		ok = sc.i == len(sc.b)
	}
	return keys, ok
}

type keyScanner struct {
	b []byte
	i int
}

// body scans the top-level object.
func (sc *keyScanner) body(dst []instanceKey) ([]instanceKey, bool) {
	sc.space()
	if !sc.eat('{') {
		return dst, false
	}
	seen := false
	for first := true; ; first = false {
		sc.space()
		if first && sc.eat('}') {
			return dst, true
		}
		name, ok := sc.key()
		if !ok {
			return dst, false
		}
		if asciiFoldEqual(name, "instances") {
			if seen {
				return dst, false
			}
			seen = true
			if dst, ok = sc.instances(dst); !ok {
				return dst, false
			}
		} else if !sc.skip(1) {
			return dst, false
		}
		if !sc.next('}') {
			return dst, false
		}
		if sc.b[sc.i-1] == '}' {
			return dst, true
		}
	}
}

// instances scans the value of "instances".
func (sc *keyScanner) instances(dst []instanceKey) ([]instanceKey, bool) {
	sc.space()
	if sc.literal("null") {
		return dst, true
	}
	if !sc.eat('[') {
		return dst, false
	}
	for first := true; ; first = false {
		sc.space()
		if first && sc.eat(']') {
			return dst, true
		}
		dst = append(dst, instanceKey{})
		if !sc.literal("null") && !sc.instance(&dst[len(dst)-1]) {
			return dst, false
		}
		if !sc.next(']') {
			return dst, false
		}
		if sc.b[sc.i-1] == ']' {
			return dst, true
		}
	}
}

// Bits of the key fields an instance has set, to decline duplicates.
const (
	hasRegion = 1 << iota
	hasService
	hasInstance
)

// instance scans one instance object into k.
func (sc *keyScanner) instance(k *instanceKey) bool {
	if !sc.eat('{') {
		return false
	}
	var seen uint8
	for first := true; ; first = false {
		sc.space()
		if first && sc.eat('}') {
			return true
		}
		name, ok := sc.key()
		if !ok {
			return false
		}
		var field *string
		var bit uint8
		switch len(name) { // the three names differ in length
		case len("regionid"):
			if asciiFoldEqual(name, "regionid") {
				field, bit = &k.RegionID, hasRegion
			}
		case len("serviceid"):
			if asciiFoldEqual(name, "serviceid") {
				field, bit = &k.ServiceID, hasService
			}
		case len("instanceid"):
			if asciiFoldEqual(name, "instanceid") {
				field, bit = &k.InstanceID, hasInstance
			}
		}
		if field == nil {
			if !sc.skip(2) {
				return false
			}
		} else {
			if seen&bit != 0 {
				return false
			}
			seen |= bit
			sc.space()
			if !sc.literal("null") {
				v, ok := sc.plainString()
				if !ok {
					return false
				}
				*field = v
			}
		}
		if !sc.next('}') {
			return false
		}
		if sc.b[sc.i-1] == '}' {
			return true
		}
	}
}

// key reads an object key and its colon. Keys are plain ASCII.
func (sc *keyScanner) key() (string, bool) {
	if !sc.eat('"') {
		return "", false
	}
	start := sc.i
	j := start + plainASCII(sc.b[start:])
	if j == len(sc.b) || sc.b[j] != '"' {
		return "", false // an escape, a control or non-ASCII byte, or no end
	}
	sc.i = j + 1
	s := b2s(sc.b[start:j])
	sc.space()
	return s, sc.eat(':')
}

// next consumes the ',' between members or elements, or the closing
// delimiter end; the caller tells which by the byte before sc.i.
func (sc *keyScanner) next(end byte) bool {
	sc.space()
	if sc.i < len(sc.b) && (sc.b[sc.i] == ',' || sc.b[sc.i] == end) {
		sc.i++
		return true
	}
	return false
}

// plainString reads a string without escapes or control bytes, valid
// UTF-8, and returns a view of its contents.
func (sc *keyScanner) plainString() (string, bool) {
	if !sc.eat('"') {
		return "", false
	}
	start := sc.i
	j := start + plainASCII(sc.b[start:])
	if j < len(sc.b) && sc.b[j] >= utf8.RuneSelf { // not ASCII: check it whole
		for j < len(sc.b) && plain[sc.b[j]] {
			j++
		}
		if !utf8.Valid(sc.b[start:j]) {
			return "", false
		}
	}
	if j == len(sc.b) || sc.b[j] != '"' {
		return "", false // an escape, a control byte, or no end
	}
	sc.i = j + 1
	return b2s(sc.b[start:j]), true
}

// SWAR constants: a byte repeated in each of a word's eight.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainASCII returns the length of the run of plain ASCII bytes (not '"',
// '\\', a control byte or a byte >= 0x80) at the start of b, eight bytes at
// a time. In each test the lowest byte flagged is a true match (a borrow
// only flags bytes above one), so the lowest flag of their union is the
// first byte that ends the run.
func plainASCII(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		quote, backslash := v^('"'*ones), v^('\\'*ones)
		m := (v-0x20*ones)&^v | (quote-ones)&^quote | (backslash-ones)&^backslash | v
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c >= utf8.RuneSelf || !plain[c] {
			return i
		}
	}
	return i
}

// plain marks the bytes a string holds as they are: not '"', '\\' or a
// control byte.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isASCII[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// skip passes over one JSON value at nesting depth; it accepts only valid
// JSON with valid UTF-8 strings.
func (sc *keyScanner) skip(depth int) bool {
	sc.space()
	if sc.i >= len(sc.b) {
		return false
	}
	switch c := sc.b[sc.i]; {
	case c == '"':
		return sc.skipString()
	case c == '{' || c == '[':
		return sc.skipComposite(depth)
	case c == 't':
		return sc.literal("true")
	case c == 'f':
		return sc.literal("false")
	case c == 'n':
		return sc.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return sc.number()
	}
	return false
}

// skipComposite passes over an object or an array.
func (sc *keyScanner) skipComposite(depth int) bool {
	if depth >= maxScanDepth {
		return false
	}
	end := byte(']')
	object := sc.b[sc.i] == '{'
	if object {
		end = '}'
	}
	sc.i++
	for first := true; ; first = false {
		sc.space()
		if first && sc.eat(end) {
			return true
		}
		if object {
			if !sc.skipString() {
				return false
			}
			sc.space()
			if !sc.eat(':') {
				return false
			}
		}
		if !sc.skip(depth+1) || !sc.next(end) {
			return false
		}
		if sc.b[sc.i-1] == end {
			return true
		}
	}
}

// skipString passes over a string, escapes included (each checked), whose
// contents are valid UTF-8.
func (sc *keyScanner) skipString() bool {
	if !sc.eat('"') {
		return false
	}
	start := sc.i
	for j := start; j < len(sc.b); j++ {
		j += plainASCII(sc.b[j:])
		if j == len(sc.b) {
			return false
		}
		if plain[sc.b[j]] { // a byte >= 0x80: checked with the rest at the end
			continue
		}
		switch sc.b[j] {
		case '"':
			if v := sc.b[start:j]; !isASCII(v) && !utf8.Valid(v) {
				return false
			}
			sc.i = j + 1
			return true
		case '\\':
			if j+1 >= len(sc.b) {
				return false
			}
			switch sc.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+6 > len(sc.b) || !isHex4(sc.b[j+2:j+6]) {
					return false
				}
				j += 5
			default:
				return false
			}
		default: // a control byte
			return false
		}
	}
	return false
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number passes over a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *keyScanner) number() bool {
	sc.eat('-')
	switch {
	case sc.eat('0'):
	case sc.digits() == 0:
		return false
	}
	if sc.eat('.') && sc.digits() == 0 {
		return false
	}
	if sc.eat('e') || sc.eat('E') {
		if !sc.eat('+') {
			sc.eat('-')
		}
		if sc.digits() == 0 {
			return false
		}
	}
	return true
}

func (sc *keyScanner) digits() int {
	start := sc.i
	for sc.i < len(sc.b) && sc.b[sc.i] >= '0' && sc.b[sc.i] <= '9' {
		sc.i++
	}
	return sc.i - start
}

func (sc *keyScanner) space() {
	for sc.i < len(sc.b) && sc.b[sc.i] <= ' ' {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

func (sc *keyScanner) eat(c byte) bool {
	if sc.i < len(sc.b) && sc.b[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

func (sc *keyScanner) literal(lit string) bool {
	if len(sc.b)-sc.i >= len(lit) && string(sc.b[sc.i:sc.i+len(lit)]) == lit {
		sc.i += len(lit)
		return true
	}
	return false
}

// asciiFoldEqual reports whether the ASCII string s equals lower, a name
// of lower-case letters only, ignoring case. For such a name, c|0x20 equals
// its letter exactly when c is that letter in either case, so it compares
// eight bytes at a time.
func asciiFoldEqual(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if le64(s[i:])|0x2020202020202020 != le64(lower[i:]) {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// le64 reads the first eight bytes of s, little-endian (one load).
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
