package cluster

import (
	"context"
	"net"
	"time"
)

// lookupHost resolves host with a bounded wait.
func lookupHost(host string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupHost(ctx, host)
}
