package core

import (
	"encoding/binary"
	"hash/maphash"
)

// Keys compare ASCII case-insensitively: "MyService" and "myservice" name the
// same service. Non-ASCII bytes compare exactly.

// keyBufLen is the stack buffer used to lower-case a key before hashing;
// longer keys are hashed in pieces.
const keyBufLen = 256

// hasher hashes instance keys and service ids with per-registry random
// seeds, so that clients cannot pick colliding keys.
type hasher struct {
	seed1, seed2 maphash.Seed
}

func newHasher() hasher { return hasher{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()} }

// service hashes a service id.
func (h hasher) service(serviceID string) uint64 {
	var buf [keyBufLen]byte
	if len(serviceID) <= keyBufLen {
		return maphash.Bytes(h.seed1, lowerInto(buf[:0], serviceID))
	}
	var mh maphash.Hash
	mh.SetSeed(h.seed1)
	writeLower(&mh, &buf, serviceID)
	return mh.Sum64()
}

// instance returns the 128-bit hash (two independently seeded 64-bit hashes)
// of the InstanceKey (regionId, serviceId, instanceId), lower-cased.
func (h hasher) instance(region, service, instance string) (uint64, uint64) {
	var buf [keyBufLen]byte
	if n := len(region) + len(service) + len(instance) + 2; n <= keyBufLen {
		b := lowerInto(buf[:0], region)
		b = append(b, 0)
		b = lowerInto(b, service)
		b = append(b, 0)
		b = lowerInto(b, instance)
		return maphash.Bytes(h.seed1, b), maphash.Bytes(h.seed2, b)
	}
	var mh1, mh2 maphash.Hash
	mh1.SetSeed(h.seed1)
	mh2.SetSeed(h.seed2)
	for _, mh := range [2]*maphash.Hash{&mh1, &mh2} {
		writeLower(mh, &buf, region)
		mh.WriteByte(0)
		writeLower(mh, &buf, service)
		mh.WriteByte(0)
		writeLower(mh, &buf, instance)
	}
	return mh1.Sum64(), mh2.Sum64()
}

// writeLower writes s, lower-cased, to mh through buf.
func writeLower(mh *maphash.Hash, buf *[keyBufLen]byte, s string) {
	for len(s) > 0 {
		n := min(len(s), keyBufLen)
		mh.Write(lowerInto(buf[:0], s[:n]))
		s = s[n:]
	}
}

// lowerInto appends s to dst with ASCII letters lower-cased, eight bytes
// at a time where it can.
func lowerInto(dst []byte, s string) []byte {
	n := len(dst)
	dst = append(dst, s...)
	b := dst[n:]
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		binary.LittleEndian.PutUint64(b[i:], lowerWord(w))
	}
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return dst
}

// lowerWord lower-cases the ASCII letters of eight bytes: for each byte
// under 0x80, in 'A'..'Z', it sets bit 0x20; other bytes are unchanged.
func lowerWord(w uint64) uint64 {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	t := w &^ high                // the low seven bits of each byte
	ge := t + (0x80-'A')*ones     // high bit set where the byte is >= 'A'
	gt := t + (0x80-'Z'-1)*ones   // high bit set where the byte is > 'Z'
	upper := ge &^ gt &^ w & high // ASCII (high bit clear) and in 'A'..'Z'
	return w | upper>>2
}

// asciiEqualFold reports whether a and b are equal under ASCII case folding.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// FoldKey returns s with ASCII letters lower-cased: the one case folding of
// every key in Artemis (service ids, instance keys, subscriptions), on the
// server and in the SDK. Non-ASCII bytes are kept as they are, so "\u212Aafka"
// (KELVIN SIGN) and "kafka" are different services, as they are to the core.
// The result always owns its bytes, even when s is already lower case: it
// may be kept while s aliases a buffer that is reused.
func FoldKey(s string) string {
	if s == "" {
		return ""
	}
	return string(lowerInto(make([]byte, 0, len(s)), s))
}

// AppendFoldKey appends s, folded as FoldKey folds it, to dst: for lookups
// that must not allocate (m[string(AppendFoldKey(buf[:0], id))]).
func AppendFoldKey(dst []byte, s string) []byte { return lowerInto(dst, s) }

// EqualFoldKey reports whether a and b name the same key under FoldKey's
// folding (ASCII letters only).
func EqualFoldKey(a, b string) bool { return asciiEqualFold(a, b) }
