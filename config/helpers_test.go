package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
)

// wantErr is one expected *Error: its line, its field and a piece of its
// message.
type wantErr struct {
	line  int
	field string
	msg   string
}

// checkErrs asserts that err holds exactly the want errors, in order, each an
// *Error of file whose text starts with "file:line: field: ".
func checkErrs(t *testing.T, err error, file string, want []wantErr) {
	t.Helper()
	got := Errors(err)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, g := range got {
		var e *Error
		if !errors.As(g, &e) {
			t.Errorf("error %d is %T, want *config.Error: %v", i, g, g)
			continue
		}
		w := want[i]
		if e.File != file || e.Line != w.line || e.Field != w.field || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d = {File:%q Line:%d Field:%q Msg:%q}, want {%q %d %q msg containing %q}",
				i, e.File, e.Line, e.Field, e.Msg, file, w.line, w.field, w.msg)
		}
		prefix := fmt.Sprintf("%s:%d: %s: ", file, w.line, w.field)
		switch {
		case w.line == 0:
			prefix = file + ": "
		case w.field == "":
			prefix = fmt.Sprintf("%s:%d: ", file, w.line)
		}
		if !strings.HasPrefix(e.Error(), prefix) {
			t.Errorf("error %d text %q does not start with %q", i, e.Error(), prefix)
		}
	}
}

// checkFields asserts that err (from a Validate function) holds exactly
// errors for the given fields, in order, each message containing msgs[i].
func checkFields(t *testing.T, err error, want []wantErr) {
	t.Helper()
	got := Errors(err)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, g := range got {
		var e *Error
		text := e2text(want[i].field, g)
		if !errors.As(g, &e) || e.Field != want[i].field || !strings.Contains(e.Msg, want[i].msg) ||
			e.File != "" || e.Line != 0 || g.Error() != text {
			t.Errorf("error %d = %v, want field %q and message containing %q", i, g, want[i].field, want[i].msg)
		}
	}
}

// e2text is the text of a Validate error: "field: msg", or just msg.
func e2text(field string, err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return ""
	}
	if field == "" {
		return e.Msg
	}
	return field + ": " + e.Msg
}

func dur(s string) *durationpb.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return durationpb.New(d)
}

func diff(want, got any) string { return cmp.Diff(want, got, protocmp.Transform()) }
