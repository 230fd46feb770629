//go:build !linux || !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package xdp

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLoadUnsupported(t *testing.T) {
	_, err := Load(nil)
	assert.ErrorIs(t, err, ErrUnsupported)
}
