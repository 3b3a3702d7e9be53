package client

import "github.com/artemis-go/artemis/core"

// Keys (service ids, instance keys) fold as the registry folds them:
// core.FoldKey lower-cases ASCII letters only, so "\u212Aafka" (KELVIN SIGN)
// and "kafka" are different services here as they are on the server. Never
// use strings.ToLower or strings.EqualFold on a key: they fold Unicode.

// instanceKey is the folded InstanceKey (regionId, serviceId, instanceId).
func instanceKey(i Instance) string {
	return core.FoldKey(i.RegionID + "\x00" + i.ServiceID + "\x00" + i.InstanceID)
}

// sameKey reports whether a and b are the same key: equal once their ASCII
// letters are lower-cased (core.FoldKey's rule), without allocating.
func sameKey(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
