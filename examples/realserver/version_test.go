package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dsrlb/dsrlb/internal/version"
)

func TestVersion(t *testing.T) {
	want := "realserver " + version.Get().String() + "\n"
	for _, arg := range []string{"-version", "--version", "version"} {
		t.Run(arg, func(t *testing.T) {
			var out, errb bytes.Buffer
			assert.Equal(t, exitOK, run(context.Background(), []string{arg}, &out, &errb))
			assert.Equal(t, want, out.String())
			assert.Empty(t, errb.String())
		})
	}
	var out, errb bytes.Buffer
	assert.Equal(t, exitUsage, run(context.Background(), []string{"-version", "extra"}, &out, &errb), "only alone")
}
