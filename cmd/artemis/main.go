package main

import (
	"fmt"
	"io"
	"os"
)

// version is stamped by the Makefile with -ldflags -X main.version=...
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "server":
		return runServer(args[1:], stdout, stderr)
	case "loadtest":
		return runLoadtest(args[1:], stdout, stderr)
	case "noop":
		return runNoop(args[1:], stderr)
	case "service":
		return runService(args[1:], stdout, stderr)
	case "instance":
		return runInstance(args[1:], stdout, stderr)
	case "watch":
		return runWatch(args[1:], stdout, stderr)
	case "health":
		return runHealth(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "artemis", version)
		return 0
	case "help", "-h", "--help", "-help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "artemis: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: artemis <command> [flags]

Commands:
  server    run a registry node (artemis server --help for its flags)
  loadtest  seed a registry and load it with vegeta (artemis loadtest --help)
  noop      run the no-op Hertz server load tests compare against
  service   list | get SERVICE_ID         (--server URL, --json)
  instance  register | unregister | heartbeat --service S --id I [--url U ...]
  watch     SERVICE...  stream instance changes until interrupted
  health    --url U [--up]  exit 0 when the node is alive (with --up: serving)
  version   print the version
`)
}
