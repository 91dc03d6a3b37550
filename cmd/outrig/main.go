// Command outrig is the one binary of Outrig: the sidecar, the control
// plane, the demo and the configuration validator.
//
// main parses flags, builds the component registry and calls Run of the
// part asked for; nothing else lives here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"sidecar", "run a sidecar for one app (or several with --mode host)", runSidecar},
		{"control-plane", "serve configuration and the app registry over delta xDS", runControlPlane},
		{"demo", "run the end-to-end demo: control plane, two sidecars, two apps", runDemo},
		{"validate", "check component, subscription and policy YAML in a folder", runValidate},
		{"version", "print the version and the component types of this build", func(_ context.Context, _ []string, out, _ io.Writer) error {
			_, err := fmt.Fprintf(out, "outrig %s\ncomponents: %s\n", version, strings.Join(newRegistry(nil).Types(), " "))
			return err
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: outrig <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nrun 'outrig <command> --help' for the flags of a command.")
}

// errUsage marks an error already reported with usage.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "outrig %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "outrig: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// newFlagSet returns a flag set whose --help lists every flag with its default.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: outrig %s\n\nflags:\n", synopsis)
		printFlags(fs)
	}
	return fs
}

// printFlags lists every flag with its default, empty ones included
// (flag.PrintDefaults leaves zero defaults out).
func printFlags(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		def := f.DefValue
		if _, isString := f.Value.(interface{ IsBoolFlag() bool }); !isString && (name == " string" || name == " value") {
			def = fmt.Sprintf("%q", def)
		}
		fmt.Fprintf(fs.Output(), "  --%s%s\n    \t%s (default %s)\n", f.Name, name, usage, def)
	})
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 && fs.Name() != "validate" {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
