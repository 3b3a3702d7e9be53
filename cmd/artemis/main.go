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
		if len(args) > 1 && isPullVerb(args[1]) {
			return runServerOp(args[1], args[2:], stdout, stderr)
		}
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
	case "zone":
		return runZone(args[1:], stdout, stderr)
	case "canary":
		return runCanary(args[1:], stdout, stderr)
	case "ops":
		return runOps(args[1:], stdout, stderr)
	case "log":
		return runLog(args[1:], stdout, stderr)
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

Management (--server URL, --token T or $ARTEMIS_ADMIN_TOKEN, --operator NAME, --json):
  instance  pull-out | pull-in --service S --id I [--region R] --reason TEXT
  server    pull-out | pull-in --ip IP [--region R] --reason TEXT
  zone      pull-out | pull-in --service S --zone Z [--region R] --reason TEXT
  canary    set --service S --app A --ip IP[,IP...]
  ops       [--region R] [--service S]  what is pulled out now
  log       [--kind K] [--service S --id I --ip IP ...]  the operation log
`)
}
