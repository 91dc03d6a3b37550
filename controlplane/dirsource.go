package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/config"
)

// dirSource watches a resources directory (recursively) and publishes the
// union of its files' objects after every change.
//
// Each file is parsed on its own with config.ParseFile, which is all or
// nothing per file. A file that fails keeps serving its last good objects
// (its errors are logged with file, line and field) while other files'
// changes apply. A file whose objects would take a name another file already
// serves is held back the same way (last good content keeps serving) and is
// retried on every later change, so it goes live once the conflict is gone;
// at start, files are taken in lexical order, as config.LoadDir does.
//
// Names starting with "." are skipped (editor temp files, Kubernetes
// ConfigMap mounts' hidden directories); only *.yaml and *.yml are read;
// symbolic links to directories are not followed.
//
// Changes are debounced: the directory is re-read once no event arrived for
// the debounce delay (and at least every 10 delays during a stream of
// events), re-parsing only the paths that had events.
type dirSource struct {
	dir      string
	debounce time.Duration
	log      *slog.Logger
	publish  func(*config.Set) // called from run's goroutine (and load's)
	onErrors func(files int)   // number of files currently failing

	files   map[string]*fileState
	watcher *fsnotify.Watcher
}

type fileState struct {
	serving *config.Set // objects the file contributes now
	pending *config.Set // parsed cleanly but held back by a name conflict
	failing bool        // the last parse failed (serving is stale)
}

func newDirSource(dir string, debounce time.Duration, log *slog.Logger, publish func(*config.Set), onErrors func(int)) *dirSource {
	return &dirSource{dir: dir, debounce: debounce, log: log, publish: publish, onErrors: onErrors, files: map[string]*fileState{}}
}

// load starts watching and reads the whole directory once, publishing the
// result before returning, so that the first clients get the full set.
func (d *dirSource) load() error {
	fi, err := os.Stat(d.dir)
	if err != nil {
		return fmt.Errorf("resources dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("resources dir %s: not a directory", d.dir)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", d.dir, err)
	}
	d.watcher = w
	dirty := map[string]struct{}{}
	if err := d.addTree(d.dir, dirty); err != nil {
		_ = w.Close()
		return err
	}
	d.apply(dirty)
	return nil
}

// run handles file events until ctx ends, then closes the watcher.
func (d *dirSource) run(ctx context.Context) {
	defer d.watcher.Close()
	dirty := map[string]struct{}{}
	var (
		timer   *time.Timer
		fire    <-chan time.Time
		firstEv time.Time
	)
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
		}
	}
	defer stopTimer()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-d.watcher.Events:
			if !ok {
				return
			}
			if skipName(filepath.Base(ev.Name)) {
				continue
			}
			dirty[ev.Name] = struct{}{}
			now := time.Now()
			if len(dirty) == 1 {
				firstEv = now
			}
			wait := d.debounce
			if maxWait := 10 * d.debounce; now.Sub(firstEv)+wait > maxWait {
				wait = max(0, maxWait-now.Sub(firstEv))
			}
			stopTimer()
			timer = time.NewTimer(wait)
			fire = timer.C
		case err, ok := <-d.watcher.Errors:
			if !ok {
				return
			}
			// An overflow loses events: re-read everything.
			d.log.Warn("resources dir watch error; rescanning", "dir", d.dir, "error", err)
			for p := range d.files {
				dirty[p] = struct{}{}
			}
			_ = d.addTree(d.dir, dirty)
			stopTimer()
			timer = time.NewTimer(d.debounce)
			fire = timer.C
		case <-fire:
			fire = nil
			d.apply(dirty)
			dirty = map[string]struct{}{}
		}
	}
}

func skipName(base string) bool { return strings.HasPrefix(base, ".") }

func isYAML(p string) bool { return strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") }

// addTree watches dir and its subdirectories and marks their YAML files dirty.
func (d *dirSource) addTree(root string, dirty map[string]struct{}) error {
	return filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return fmt.Errorf("resources dir %s: %w", p, err)
			}
			d.log.Warn("cannot read in resources dir", "path", p, "error", err)
			return nil
		}
		if p != d.dir && skipName(de.Name()) {
			if de.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if de.IsDir() {
			if err := d.watcher.Add(p); err != nil {
				if p == root {
					return fmt.Errorf("watch %s: %w", p, err)
				}
				d.log.Warn("cannot watch directory", "path", p, "error", err)
			}
			return nil
		}
		if de.Type().IsRegular() && isYAML(p) {
			dirty[p] = struct{}{}
		}
		return nil
	})
}

// apply re-reads the dirty paths, resolves name conflicts and publishes
// the union.
func (d *dirSource) apply(dirty map[string]struct{}) {
	paths := make([]string, 0, len(dirty))
	for p := range dirty {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			d.forget(p)
		case err != nil:
			d.log.Warn("cannot stat in resources dir", "path", p, "error", err)
		case fi.IsDir():
			sub := map[string]struct{}{}
			_ = d.addTree(p, sub)
			for sp := range sub {
				if _, seen := dirty[sp]; !seen {
					d.parse(sp)
				}
			}
		case fi.Mode().IsRegular() && isYAML(p):
			d.parse(p)
		default:
			d.forget(p) // renamed to a non-YAML name, or no longer a regular file
		}
	}
	d.resolve()
	failing := 0
	for _, f := range d.files {
		if f.failing || f.pending != nil {
			failing++
		}
	}
	d.onErrors(failing)
	d.publish(d.union())
}

// forget drops a removed file, or every file under a removed directory.
func (d *dirSource) forget(p string) {
	prefix := p + string(filepath.Separator)
	for fp := range d.files {
		if fp == p || strings.HasPrefix(fp, prefix) {
			delete(d.files, fp)
			d.log.Info("resources file removed", "file", fp)
		}
	}
}

func (d *dirSource) parse(p string) {
	f := d.files[p]
	if f == nil {
		f = &fileState{}
		d.files[p] = f
	}
	set, err := config.ParseFile(p)
	if err != nil {
		f.failing = true
		f.pending = nil // a held-back older parse must not go live later
		for _, e := range config.Errors(err) {
			d.log.Error("resources file rejected; its last good objects keep serving", "file", p, "error", e.Error())
		}
		return
	}
	f.failing = false
	f.pending = set
}

// resolve moves each pending set into service unless it takes a name
// another file serves (files in lexical order, so the first definer wins).
func (d *dirSource) resolve() {
	paths := make([]string, 0, len(d.files))
	for p := range d.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := d.files[p]
		if f.pending == nil {
			continue
		}
		conflicts := d.conflicts(p, f.pending)
		if len(conflicts) > 0 {
			for _, c := range conflicts {
				d.log.Error("resources file held back; its last good objects keep serving", "file", p, "error", c)
			}
			continue
		}
		f.serving, f.pending = f.pending, nil
	}
}

// conflicts lists the names of set that another file serves.
func (d *dirSource) conflicts(p string, set *config.Set) []string {
	var out []string
	for op, of := range d.files {
		if op == p || of.serving == nil {
			continue
		}
		for name := range set.Components {
			if _, dup := of.serving.Components[name]; dup {
				out = append(out, fmt.Sprintf("Component %q is already defined in %s", name, op))
			}
		}
		for name := range set.Subscriptions {
			if _, dup := of.serving.Subscriptions[name]; dup {
				out = append(out, fmt.Sprintf("Subscription %q is already defined in %s", name, op))
			}
		}
		for name := range set.Policies {
			if _, dup := of.serving.Policies[name]; dup {
				out = append(out, fmt.Sprintf("Policy %q is already defined in %s", name, op))
			}
		}
	}
	sort.Strings(out)
	return out
}

func (d *dirSource) union() *config.Set {
	u := &config.Set{
		Components:    map[string]*configv1.Component{},
		Subscriptions: map[string]*configv1.Subscription{},
		Policies:      map[string]*configv1.Policy{},
	}
	for _, f := range d.files {
		if f.serving == nil {
			continue
		}
		for k, v := range f.serving.Components {
			u.Components[k] = v
		}
		for k, v := range f.serving.Subscriptions {
			u.Subscriptions[k] = v
		}
		for k, v := range f.serving.Policies {
			u.Policies[k] = v
		}
	}
	return u
}
