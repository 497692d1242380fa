package smc

import (
	"fmt"
	"strings"
)

// contextError is an error of this package that adds where it happened
// ("step 3 (t=0.7 -> s=0.6)") to an underlying error. Its message carries
// the package prefix once: a leading "smc: " of the underlying message is
// dropped, so it reads "smc: step 3 (…): reward of final particle 0 is
// NaN", not "smc: step 3 (…): smc: reward …". errors.Is and errors.As see
// the underlying error.
type contextError struct {
	context string
	err     error
}

// wrapf returns err with the context fmt.Sprintf(format, args...), as
// contextError describes.
func wrapf(err error, format string, args ...any) error {
	return &contextError{context: fmt.Sprintf(format, args...), err: err}
}

// Error returns "smc: context: message" with message the underlying error's
// message less a leading "smc: ".
func (e *contextError) Error() string {
	return "smc: " + e.context + ": " + strings.TrimPrefix(e.err.Error(), "smc: ")
}

// Unwrap returns the underlying error.
func (e *contextError) Unwrap() error { return e.err }
