package sysctl

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Read returns the value of k in the calling thread's network namespace,
// without the trailing newline. An absent key gives an error that matches
// fs.ErrNotExist.
func Read(k Key) (string, error) {
	if !k.IsValid() {
		return "", fmt.Errorf("%w: zero Key", ErrBadKey)
	}
	b, err := os.ReadFile(k.Path())
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", k, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadInt reads k and parses it as a decimal integer.
func ReadInt(k Key) (int, error) {
	v, err := Read(k)
	if err != nil {
		return 0, err
	}
	return ParseInt(k, v)
}

// Write sets k to v in the calling thread's network namespace. It never
// creates a file: an absent key gives an error that matches fs.ErrNotExist.
func Write(k Key, v string) error {
	if !k.IsValid() {
		return fmt.Errorf("%w: zero Key", ErrBadKey)
	}
	f, err := os.OpenFile(k.Path(), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sysctl -w %s=%s: %w", k, v, err)
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sysctl -w %s=%s: %w", k, v, err)
	}
	return nil
}

// WriteInt sets k to the decimal v.
func WriteInt(k Key, v int) error { return Write(k, strconv.Itoa(v)) }
