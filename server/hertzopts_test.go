package server

import (
	"testing"

	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestTransportOptionsMatchNew: a twin served with TransportOptions is
// served as New serves the registry, but for the registry's own hooks.
func TestTransportOptionsMatchNew(t *testing.T) {
	for _, cfg := range []Config{{}, {Addr: "127.0.0.1:9999", MaxBodyBytes: 1 << 20, ReadTimeout: 3e9, IdleTimeout: 7e9}} {
		s := newTestServer(t, cfg)
		want := config.NewOptions(TransportOptions(s.cfg))
		hooks := cmpopts.IgnoreFields(config.Options{}, "OnAccept", "OnConnect", "Tracers", "TraceLevel",
			"TransporterNewer", "AltTransporterNewer", "Listener", "ListenConfig", "BindConfig", "CustomBinder",
			"CustomValidator", "ValidateConfig", "Registry", "RegistryInfo", "TLS")
		if diff := cmp.Diff(want, s.h.GetOptions(), hooks); diff != "" {
			t.Fatalf("unexpected difference between TransportOptions and New's options (-twin +registry):\n%s", diff)
		}
	}
}
