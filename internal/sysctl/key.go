package sysctl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnsupported is returned by Read and Write on platforms other than
// Linux, which have no /proc/sys.
var ErrUnsupported = errors.New("sysctl: only supported on Linux")

// ErrBadKey is wrapped by every error about a malformed key or component.
var ErrBadKey = errors.New("sysctl: bad key")

// Family is the address family of a per-interface network parameter, the
// second component of net.<family>.conf.<interface>.<name>.
type Family string

// Families. The zero value is invalid.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Scopes that stand in for an interface name in net.<family>.conf: "all"
// applies to (or, for some parameters, is combined with) every interface,
// "default" is copied to interfaces created later.
const (
	All     = "all"
	Default = "default"
)

// Key names one parameter under /proc/sys. The zero value is invalid: Read
// and Write refuse it. Keys are comparable.
type Key struct {
	// path is relative to /proc/sys, components joined by "/"; every
	// component was validated when the Key was made.
	path string
}

// New returns the key made of the given components, taken literally: a dot
// inside a component is part of the name (an interface eth0.100), never a
// separator. It fails, wrapping ErrBadKey, on no components, an empty
// component, ".", "..", or a component containing "/", a NUL or white space.
func New(components ...string) (Key, error) {
	if len(components) == 0 {
		return Key{}, fmt.Errorf("%w: no components", ErrBadKey)
	}
	for _, c := range components {
		if err := validComponent(c); err != nil {
			return Key{}, err
		}
	}
	return Key{path: strings.Join(components, "/")}, nil
}

// Conf returns the key net.<family>.conf.<iface>.<name>, where iface is an
// interface name (dots allowed) or All or Default.
func Conf(family Family, iface, name string) (Key, error) {
	switch family {
	case IPv4, IPv6:
	default:
		return Key{}, fmt.Errorf("%w: address family %q (want ipv4 or ipv6)", ErrBadKey, string(family))
	}
	if len(iface) >= 16 {
		return Key{}, fmt.Errorf("%w: interface name %q is longer than 15 bytes", ErrBadKey, iface)
	}
	return New("net", string(family), "conf", iface, name)
}

// Parse reads a key in either notation of sysctl(8). If the first separator
// in s is a dot, dots separate components and a slash stands for a dot
// inside a component (net.ipv4.conf.eth0/100.rp_filter). If it is a slash,
// slashes separate components and dots are literal
// (net/ipv4/conf/eth0.100/rp_filter). A leading "/proc/sys/" is accepted in
// the slash notation. Errors wrap ErrBadKey and quote s.
func Parse(s string) (Key, error) {
	orig := s
	var parts []string
	i := strings.IndexAny(s, "./")
	if i >= 0 && s[i] == '/' {
		s = strings.TrimPrefix(s, "/proc/sys/")
		parts = strings.Split(s, "/")
	} else {
		parts = strings.Split(s, ".")
		for j, p := range parts {
			parts[j] = strings.ReplaceAll(p, "/", ".")
		}
	}
	k, err := New(parts...)
	if err != nil {
		return Key{}, fmt.Errorf("%w (in %q)", err, orig)
	}
	return k, nil
}

// MustParse is Parse for keys known at compile time; it panics on error.
func MustParse(s string) Key {
	k, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return k
}

// IsValid reports whether k was made by New, Conf or Parse.
func (k Key) IsValid() bool { return k.path != "" }

// Components returns the components of k.
func (k Key) Components() []string {
	if !k.IsValid() {
		return nil
	}
	return strings.Split(k.path, "/")
}

// String returns k in the dotted notation of sysctl(8), a dot inside a
// component written as a slash: net.ipv4.conf.eth0/100.rp_filter. The
// result parses back to k. A key whose first component has a dot (no real
// one has) prints as its Path instead, because Parse would read the dotted
// form differently. The zero Key prints as "".
func (k Key) String() string {
	parts := k.Components()
	if len(parts) > 0 && strings.Contains(parts[0], ".") {
		return k.Path()
	}
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}

// Path returns the file of k: /proc/sys/net/ipv4/conf/eth0.100/rp_filter.
func (k Key) Path() string { return root + "/" + k.path }

// MarshalText encodes k as String does, so keys in JSON read like sysctl(8).
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a key written in either notation Parse accepts; an
// empty text is the zero Key.
func (k *Key) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*k = Key{}
		return nil
	}
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

func validComponent(c string) error {
	if c == "" || c == "." || c == ".." {
		return fmt.Errorf("%w: component %q", ErrBadKey, c)
	}
	for _, r := range c {
		if r == '/' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: component %q contains %q", ErrBadKey, c, r)
		}
	}
	return nil
}

// root is where the keys live; tests point it elsewhere.
var root = "/proc/sys"

// ParseInt parses a parameter value as read from /proc/sys, naming k in the
// error.
func ParseInt(k Key, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("sysctl %s: %q is not a number", k, v)
	}
	return n, nil
}
