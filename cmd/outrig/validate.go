package main

import (
	"context"
	"fmt"
	"io"

	"github.com/outrig/outrig/config"
)

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", "validate DIR [DIR...]", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	bad := 0
	for _, dir := range fs.Args() {
		set, err := config.LoadDir(dir)
		for _, e := range config.Errors(err) {
			fmt.Fprintln(stdout, e)
			bad++
		}
		if set != nil {
			fmt.Fprintf(stdout, "%s: %d components, %d subscriptions, %d policies valid\n", dir,
				len(set.Components), len(set.Subscriptions), len(set.Policies))
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d error(s)", bad)
	}
	return nil
}
