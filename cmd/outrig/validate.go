package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/outrig/outrig/components"
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
	reg := newRegistry(nil)
	for _, dir := range fs.Args() {
		set, err := config.LoadDir(dir)
		for _, e := range config.Errors(err) {
			fmt.Fprintln(stdout, e)
			bad++
		}
		if set != nil {
			// A type this build lacks would be rejected by the sidecar when
			// the configuration arrives; say so here.
			valid := len(set.Components)
			for _, name := range slices.Sorted(maps.Keys(set.Components)) {
				c := set.Components[name]
				if !reg.Has(c.GetType(), c.GetVersion()) {
					fmt.Fprintf(stdout, "%s: component %q: spec.type: %q version %q: %v\n", dir, name, c.GetType(), cmp.Or(c.GetVersion(), "v1"), components.ErrUnknownType)
					bad++
					valid--
				}
			}
			fmt.Fprintf(stdout, "%s: %d components, %d subscriptions, %d policies valid\n", dir,
				valid, len(set.Subscriptions), len(set.Policies))
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d error(s)", bad)
	}
	return nil
}
