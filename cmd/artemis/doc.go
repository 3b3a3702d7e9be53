// Command artemis runs the Artemis service registry and its tools.
//
//	artemis server [flags]     run a registry node
//	artemis loadtest [flags]   seed a registry and load it (vegeta)
//	artemis noop [flags]       the no-op server load tests compare against
//	artemis service list|get    read services
//	artemis instance register|unregister|heartbeat
//	artemis watch SERVICE...   stream instance changes
//	artemis version            print the version
//
// The server's configuration (flags, ARTEMIS_* variables, a YAML file) is in
// config.go; flags are parsed here only, never in the packages it wires.
package main
