package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is one configuration error. Error() reads "file:line: field: msg";
// the parts that are unknown (no file for objects that came over xDS, no field
// for a YAML syntax error) are left out.
type Error struct {
	// File is the file as given to ParseBytes/ParseFile/LoadDir; empty when the
	// object did not come from a file.
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Field is the field path as written in YAML, e.g. spec.metadata[2].name.
	Field string
	// Msg says what is wrong, including the bad value.
	Msg string

	cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line))
	case e.File != "":
		b.WriteString(e.File)
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, if any (for example the fs error of a
// file that could not be read).
func (e *Error) Unwrap() error { return e.cause }

// Errors flattens err, which may be a tree of errors.Join results, into its
// leaf errors in order. It returns nil for a nil err.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	return []error{err}
}

// errorList collects *Error values of one validation or one document.
type errorList []*Error

func (l *errorList) add(field, format string, args ...any) {
	*l = append(*l, &Error{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// join returns the errors joined, or nil when there are none.
func (l errorList) join() error {
	if len(l) == 0 {
		return nil
	}
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errors.Join(errs...)
}
