package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// command is a subcommand of the binary.
type command struct {
	name, summary, example string
}

var commands = []command{
	{"serve", "run the hub (the default command)", "presencehub serve --http-addr 0.0.0.0:8080 --domain pbx.example.com"},
	{"token", "mint a token with the hub's HS256 secret", "presencehub token --sub 1001 --ttl 8h"},
	{"publish", "publish an extension's call state over WebSocket, like a PBX", "presencehub publish --as 1001 --state early --remote 2001"},
	{"healthcheck", "exit 0 when the local hub is ready to serve (/readyz), 1 otherwise (the container HEALTHCHECK)", "presencehub healthcheck"},
	{"bench", "load generator: PUBLISH throughput and PUBLISH-to-NOTIFY latency", "presencehub bench -smoke"},
	{"version", "print the version and build information", "presencehub version"},
}

func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) int {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	getenv := func(k string) string { return env[k] }
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			overview(stdout)
			return 0
		case "-version", "--version":
			cmd = "version"
		}
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, getenv, environ, stdout, stderr)
	case "token":
		err = token(args, getenv, stdout)
	case "publish":
		err = publish(ctx, args, getenv, stdout)
	case "healthcheck":
		err = healthcheck(ctx, args, getenv, stdout)
	case "bench":
		err = bench(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
	case "help":
		if len(args) > 0 && args[0] != "help" {
			return run(ctx, []string{args[0], "-h"}, environ, stdout, stderr)
		}
		overview(stdout)
	default:
		fmt.Fprintf(stderr, "presencehub: unknown command %q; the commands are %s (presencehub -h for help)\n", cmd, commandNames())
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "presencehub:", err)
		return 1
	}
	return 0
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// overview is presencehub -h: the commands, then the hub's flags.
func overview(w io.Writer) {
	fmt.Fprintf(w, "presencehub: presence and BLF lamps for WebRTC softphones (SIP over WebSocket).\n\nUsage: presencehub [command] [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun presencehub <command> -h for a command's flags and an example.\n\n")
	fs := flag.NewFlagSet("presencehub serve", flag.ContinueOnError)
	new(config).bind(fs)
	fmt.Fprintln(w, "Flags of serve:")
	printFlags(w, fs)
}

// printUsage is a command's -h: what it does, an example, its flags.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	name := strings.TrimPrefix(fs.Name(), "presencehub ")
	fmt.Fprintf(w, "Usage: %s [flags]\n", fs.Name())
	for _, c := range commands {
		if c.name == name {
			fmt.Fprintf(w, "\n%s.\n\nExample:\n  %s\n", strings.ToUpper(c.summary[:1])+c.summary[1:], c.example)
		}
	}
	fmt.Fprintln(w, "\nFlags:")
	printFlags(w, fs)
}

// printFlags lists fs's flags with their variables and defaults.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ := "string"
		if g, ok := f.Value.(flag.Getter); ok {
			switch g.Get().(type) {
			case bool:
				typ = ""
			case int, int64:
				typ = "int"
			case float64:
				typ = "float"
			default:
				typ = strings.TrimPrefix(fmt.Sprintf("%T", g.Get()), "time.")
				typ = strings.ToLower(typ)
			}
		} else if _, ok := f.Value.(*jwksFlag); ok {
			typ = "list"
		}
		fmt.Fprintf(w, "  --%s\n      %s", strings.TrimSpace(f.Name+" "+typ), f.Usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  [%s]\n", envName(f.Name))
	})
}

// buildVersion is set by the image build (-ldflags "-X main.buildVersion=…"),
// which has no VCS information to record.
var buildVersion string

// version is the build information the Go toolchain records.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "presencehub " + buildVersion + " (no build information)"
	}
	v := bi.Main.Version
	if buildVersion != "" {
		v = buildVersion
	}
	s := "presencehub " + v + " " + bi.GoVersion
	settings := map[string]string{}
	for _, kv := range bi.Settings {
		settings[kv.Key] = kv.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		s += " revision " + rev
		if t := settings["vcs.time"]; t != "" {
			s += " " + t
		}
		if settings["vcs.modified"] == "true" {
			s += " (modified)"
		}
	}
	s += " " + settings["GOOS"] + "/" + settings["GOARCH"]
	if settings["CGO_ENABLED"] == "1" {
		s += " cgo"
	}
	return s
}
